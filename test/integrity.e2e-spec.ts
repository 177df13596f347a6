import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, Headers, Subjects } from '@orderflow/contracts';
import { orderflow } from './support/cli';
import { order, Stack, waitFor } from './support/stack';

/**
 * What arrives is checked, not trusted: headers a publisher chooses cannot suppress an order, a reply
 * that contradicts the saga's command is dead-lettered instead of applied, and participants refuse commands that
 * contradict their records. The forgeries are published as any client could on an unauthenticated broker (which is
 * what the broker's permissions now prevent; these checks hold behind them).
 */
describe('integrity of what arrives', () => {
  let stack: Stack;
  const uniq = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    // The largest messages the work streams may take, so a body near the server's max_payload reaches a consumer.
    stack = await Stack.start({ STREAM_MAX_MSG_SIZE: String(1024 * 1024) });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** The dead letter of `subject` whose error matches; it must carry `code` as its `Dlq-Error-Code`. */
  const deadLetterOf = async (subject: string, code: ErrorCode, match: RegExp) => {
    let found: Awaited<ReturnType<Stack['deadLetters']>>[number] | undefined;
    await waitFor(async () => {
      found = (await stack.deadLetters()).find(
        (d) => d.subject === Subjects.deadLetter(subject) && match.test(d.headers[Headers.Dlq.Error]),
      );
      return !!found;
    });
    expect(found!.headers[Headers.Dlq.ErrorCode]).toBe(code);
    return found!;
  };

  it('a different order that reuses a Nats-Msg-Id after the duplicate window runs its own saga', async () => {
    const [sku, customer] = [uniq('INK'), uniq('ann')];
    await stack.restock(sku, 10);
    await stack.deposit(customer, 10_000);
    // A 2-minute duplicate window is too long to sit out in a test: shrink this namespace's ORDER stream's.
    const name = stack.ns.stream('ORDER');
    const { config } = await stack.jsm.streams.info(name);
    await stack.jsm.streams.update(name, { ...config, duplicate_window: 100_000_000 });
    const a = order(customer, [{ sku, quantity: 1, unitPrice: 100 }]);
    const b = order(customer, [{ sku, quantity: 2, unitPrice: 100 }]);

    await stack.publish(Subjects.OrderCreated, a, 'client-msg-0001');
    expect(await stack.outcome(a.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    await new Promise((r) => setTimeout(r, 300));
    await stack.publish(Subjects.OrderCreated, b, 'client-msg-0001');

    expect(await stack.outcome(b.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
  });

  it('an order.created with a forged Replay-Of runs its own saga', async () => {
    const [sku, customer] = [uniq('PAD'), uniq('ben')];
    await stack.restock(sku, 10);
    await stack.deposit(customer, 10_000);
    const a = order(customer, [{ sku, quantity: 1, unitPrice: 100 }]);
    const b = order(customer, [{ sku, quantity: 1, unitPrice: 100 }]);
    const aId = randomUUID();

    await stack.publish(Subjects.OrderCreated, a, aId);
    expect(await stack.outcome(a.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    await stack.publish(Subjects.OrderCreated, b, randomUUID(), { [Headers.ReplayOf]: aId });

    expect(await stack.outcome(b.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
  });

  it('the same order.created again is one saga; the same orderId with another body is idempotency_key_reused', async () => {
    const [sku, customer] = [uniq('CUP'), uniq('cat')];
    await stack.restock(sku, 10);
    await stack.deposit(customer, 10_000);
    const a = order(customer, [{ sku, quantity: 1, unitPrice: 100 }]);

    await stack.publish(Subjects.OrderCreated, a);
    await stack.publish(Subjects.OrderCreated, a);
    expect(await stack.outcome(a.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    await stack.publish(Subjects.OrderCreated, { ...a, items: [{ sku, quantity: 5, unitPrice: 100 }] });

    await deadLetterOf(Subjects.OrderCreated, 'idempotency_key_reused', new RegExp(`idempotency_key_reused: order ${a.orderId}`));
    expect(await stack.sagas(a.orderId)).toHaveLength(1);
  });

  it('a payment.evt.charged of another amount is dead-lettered unexpected_reply; the saga goes on with the real reply', async () => {
    const [sku, customer] = [uniq('MUG'), uniq('dan')];
    await stack.restock(sku, 10);
    await stack.deposit(customer, 100);
    await stack.stopApp('payment');
    const o = order(customer, [{ sku, quantity: 1, unitPrice: 5000 }]);
    try {
      await stack.publish(Subjects.OrderCreated, o);
      let sagaId = '';
      await waitFor(async () => {
        const [s] = await stack.sagas(o.orderId);
        sagaId = s?.id ?? '';
        return s?.history.some((h: any) => h.name === 'chargePayment' && h.status === 'RUNNING') ?? false;
      });
      await stack.publish(Subjects.PaymentCharged, { orderId: o.orderId, amount: 0, currency: 'USD' }, randomUUID(), {
        [Headers.SagaId]: sagaId,
        [Headers.CorrelationId]: o.orderId,
      });

      const dead = await deadLetterOf(Subjects.PaymentCharged, 'unexpected_reply', /unexpected_reply/);
      expect(dead.headers[Headers.Dlq.Error]).toMatch(
        /^UnexpectedReplyError: unexpected_reply: payment.evt.charged of 0 USD; saga .* charged 5000 USD$/,
      );
      expect((await stack.sagas(o.orderId))[0].status).toBe('RUNNING');
    } finally {
      await stack.startApp('payment');
    }
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'insufficient_funds' });
  });

  it('participants refuse commands that contradict their records (another order, another customer)', async () => {
    const [sku, customer] = [uniq('PEN'), uniq('eve')];
    await stack.restock(sku, 10);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [{ sku, quantity: 2, unitPrice: 100 }]);
    await stack.publish(Subjects.OrderCreated, o);
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    const [{ id: sagaId }] = await stack.sagas(o.orderId);

    await stack.publish(Subjects.InventoryRelease, { orderId: randomUUID(), sagaId });
    await stack.publish(Subjects.PaymentRefund, { orderId: o.orderId, sagaId, customerId: uniq('mallory') });

    await deadLetterOf(
      Subjects.InventoryRelease,
      'contradicts_records',
      new RegExp(`^ContradictsRecordsError: contradicts_records: saga ${sagaId} holds the reservation of order ${o.orderId}`),
    );
    await deadLetterOf(
      Subjects.PaymentRefund,
      'contradicts_records',
      new RegExp(`^ContradictsRecordsError: contradicts_records: saga ${sagaId} is of order ${o.orderId} and customer ${customer}`),
    );
    const stock = (await stack.db.query('select available::int, reserved::int, sold::int from inventory.stock where sku = $1', [sku]))
      .rows[0];
    expect(stock).toEqual({ available: 8, reserved: 0, sold: 2 });
    const ledger = await stack.db.query('select kind from payments.ledger where saga_id = $1 order by id', [sagaId]);
    expect(ledger.rows.map((r) => r.kind)).toEqual(['CHARGE']);
  });

  it('refuses at the stream an order.created above STREAM_MAX_MSG_SIZE, and the CLI says why', async () => {
    const small = await Stack.start({ STREAM_MAX_MSG_SIZE: '1024' });
    try {
      // Valid, but 20 lines make it larger than 1 KiB.
      const lines = Array.from({ length: 20 }, (_, i) => ({ sku: `SKU-LONG-NAME-${i}`, quantity: 1, unitPrice: 100 }));
      const big = order('big-order', lines);
      await expect(small.publish(Subjects.OrderCreated, big)).rejects.toThrow(/message size exceeds maximum allowed/);
      const file = join(mkdtempSync(join(tmpdir(), 'big-order-')), 'order.json');
      writeFileSync(file, JSON.stringify(big));
      const r = await orderflow(small, ['publish', 'order.created', '--file', file]);
      expect(r.stderr).toMatch(
        /^orderflow: could not publish order.created \(\d+ bytes\): the stream refused it: message size exceeds maximum allowed \(STREAM_MAX_MSG_SIZE\)\n$/,
      );
      expect(r.code).toBe(1);
      const stream = await small.jsm.streams.info(small.ns.stream('ORDER'));
      expect(stream.config).toMatchObject({ max_msg_size: 1024, discard: 'new', max_bytes: small.config.ORDER_STREAM_MAX_BYTES });
    } finally {
      await small.stop();
    }
  });

  it('dead-letters a body near the server max_payload whole but cut: its head, its size and its sha256', async () => {
    const orderId = randomUUID();
    const body = JSON.stringify({ orderId, customerId: 'x'.repeat(1_040_000), currency: 'USD', items: [] });
    await stack.publish(Subjects.OrderCreated, body);
    let letter: Awaited<ReturnType<Stack['deadLetters']>>[number] | undefined;
    await waitFor(async () => !!(letter = (await stack.deadLetters()).find((d) => d.headers[Headers.CorrelationId] === orderId)));
    expect(letter!.headers).toMatchObject({
      [Headers.Dlq.BodyBytes]: String(body.length),
      [Headers.Dlq.BodySha256]: createHash('sha256').update(body).digest('hex'),
      [Headers.Dlq.Error]: expect.stringMatching(/^MalformedMessageError/),
    });
    expect(letter!.data.length).toBe(512 * 1024);
    expect(body.startsWith(letter!.data)).toBe(true);
  });
});
