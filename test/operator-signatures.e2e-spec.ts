import { randomUUID } from 'node:crypto';
import { createUser } from '@nats-io/nkeys';
import { Headers, RefusalCode, Subjects } from '@orderflow/contracts';
import { signatureHeaders, signMessage } from '@orderflow/messaging';
import { runSetup } from '../apps/cli/src/setup/setup';
import { operatorKey, signedBy } from './support/operator';
import { order, Stack, waitFor } from './support/stack';

/**
 * Operator actions you can trust: the order app acts only on commands signed by an operator key that
 * `orderflow setup` registered, records the key with the action, and enforces the replay rules itself. The commands
 * are published here as a client of the (unauthenticated) test broker could, to show what the order app refuses.
 */
describe('signed operator actions', () => {
  let stack: Stack;
  const uniq = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Publishes an operator command with `headers` and waits for the order app's answer to it (`Causation-Id`). */
  const ask = async (subject: string, body: object, msgId: string, headers: Record<string, string>) => {
    const sub = stack.nc.subscribe(stack.ns.subject('order.evt.>'));
    const answer = (async () => {
      for await (const m of sub)
        if (m.headers?.get(Headers.CausationId) === msgId) return { subject: stack.ns.logical(m.subject), body: JSON.parse(m.string()) };
    })();
    await stack.publish(subject, body, msgId, headers);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer to ${msgId}`)), 10_000)));
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
  };
  const signed = (subject: string, msgId: string, body: object) => signedBy(stack.ns, subject, msgId, body);

  /** A CANCELLED saga (out of stock) to retry. */
  const cancelledSaga = async () => {
    const [sku, customer] = [uniq('SIG'), uniq('sig')];
    await stack.restock(sku, 1);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [{ sku, quantity: 2, unitPrice: 100 }]);
    await stack.publish(Subjects.OrderCreated, o);
    expect((await stack.outcome(o.orderId)).reason).toBe('out_of_stock');
    const [saga] = await stack.sagas(o.orderId);
    return { orderId: o.orderId, sagaId: saga.id as string };
  };

  it('refuses an unsigned, a tampered and an unregistered retry-saga; carries out and records a signed one', async () => {
    const { orderId, sagaId } = await cancelledSaga();
    const cmd = { sagaId, why: 'stock is back' };
    const refused = (reason: RegExp) => ({
      subject: Subjects.OrderCommandRefused,
      body: { sagaId, code: 'unverified', reason: expect.stringMatching(reason) },
    });

    expect(await ask(Subjects.OrderRetrySaga, cmd, randomUUID(), {})).toEqual(refused(/^not signed/));
    const tamperedId = randomUUID();
    const tampered = signed(Subjects.OrderRetrySaga, tamperedId, { ...cmd, why: 'something else' });
    expect(await ask(Subjects.OrderRetrySaga, cmd, tamperedId, tampered)).toEqual(refused(/does not verify/));
    const strangerId = randomUUID();
    const stranger = signatureHeaders(
      signMessage(createUser().getSeed(), stack.ns.subject(Subjects.OrderRetrySaga), strangerId, Buffer.from(JSON.stringify(cmd))),
    );
    expect(await ask(Subjects.OrderRetrySaga, cmd, strangerId, stranger)).toEqual(refused(/not a registered operator key/));
    expect(await stack.sagas(orderId)).toHaveLength(1);

    const id = randomUUID();
    expect(await ask(Subjects.OrderRetrySaga, cmd, id, signed(Subjects.OrderRetrySaga, id, cmd))).toMatchObject({
      subject: Subjects.OrderSagaRetried,
      body: { sagaId, attempt: 2 },
    });
    const { rows } = await stack.db.query('select operator, public_key, why from orders.operator_actions where id = $1', [id]);
    expect(rows).toEqual([{ operator: 'ops-test', public_key: operatorKey().getPublicKey(), why: 'stock is back' }]);
    const view = (await stack.query(Subjects.QuerySaga, { id: orderId })).data;
    expect(view.actions).toEqual([
      expect.objectContaining({ action: 'retry', operator: 'ops-test', publicKey: operatorKey().getPublicKey() }),
    ]);
  });

  it('replays a dead letter only as the order app allows: the planned entry, a valid body, once', async () => {
    const [sku, customer] = [uniq('RPL'), uniq('rpl')];
    await stack.restock(sku, 5);
    await stack.deposit(customer, 10_000);
    const poison = { ...order(customer, [{ sku, quantity: 1, unitPrice: 100 }]), currency: 'usd' };
    await stack.publish(Subjects.OrderCreated, poison);
    let seq = 0;
    await waitFor(async () => {
      const info = await stack.jsm.streams.info(stack.ns.stream('DLQ'));
      for (let s = info.state.first_seq; s <= info.state.last_seq && info.state.messages > 0; s++) {
        const m = await stack.jsm.streams.getMessage(stack.ns.stream('DLQ'), { seq: s });
        if (m?.header?.get(Headers.CorrelationId) === poison.orderId) seq = s;
      }
      return seq > 0;
    });
    const originalId = (await stack.jsm.streams.getMessage(stack.ns.stream('DLQ'), { seq }))!.header.get(Headers.Dlq.MsgId);
    const replay = async (body: object) => {
      const id = randomUUID();
      return ask(Subjects.OrderReplayDeadLetter, body, id, signed(Subjects.OrderReplayDeadLetter, id, body));
    };
    const refused = (code: RefusalCode, reason: RegExp) => ({
      subject: Subjects.OrderCommandRefused,
      body: { dlqSeq: seq, code, reason: expect.stringMatching(reason) },
    });
    const fix = { currency: 'USD' };

    expect(await replay({ dlqSeq: seq, originalId: 'another-message', why: 'fix', patch: fix })).toEqual(
      refused('changed', /the DLQ changed/),
    );
    expect(await replay({ dlqSeq: seq, originalId, why: 'as it was' })).toEqual(
      refused('invalid', /the body fails validation: .*currency/),
    );
    const done = await replay({ dlqSeq: seq, originalId, why: 'lower-case currency', patch: fix });
    expect(done).toMatchObject({
      subject: Subjects.OrderDeadLetterReplayed,
      body: { dlqSeq: seq, subject: Subjects.OrderCreated, operator: 'ops-test' },
    });
    expect(await stack.outcome(poison.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    expect(await replay({ dlqSeq: seq, originalId, why: 'again', patch: fix })).toEqual(
      refused('already_replayed', /was replayed by ops-test .*--force/),
    );
    expect(await replay({ dlqSeq: seq, originalId, why: 'again', patch: fix, force: true })).toMatchObject({
      subject: Subjects.OrderDeadLetterReplayed,
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(await stack.sagas(poison.orderId)).toHaveLength(1); // the forced replay found the order accepted already
    const { rows } = await stack.db.query(`select patch from orders.operator_actions where action = 'replay' and dead_letter = $1`, [seq]);
    expect(rows).toEqual([{ patch: fix }, { patch: fix }]);
  });

  it('refuses a key that setup rotated out', async () => {
    const { sagaId } = await cancelledSaga();
    const old = operatorKey().getSeed();
    await runSetup(stack.config, { keys: false, provision: false, rotate: 'operator-ops-test' });
    const cmd = { sagaId, why: 'with the old key' };
    const id = randomUUID();
    const headers = signatureHeaders(signMessage(old, stack.ns.subject(Subjects.OrderRetrySaga), id, Buffer.from(JSON.stringify(cmd))));
    expect(await ask(Subjects.OrderRetrySaga, cmd, id, headers)).toMatchObject({
      subject: Subjects.OrderCommandRefused,
      body: { code: 'unverified', reason: expect.stringMatching(/^signed by ops-test's key U[A-Z2-7]+, revoked at/) },
    });
    const again = randomUUID();
    expect(await ask(Subjects.OrderRetrySaga, cmd, again, signed(Subjects.OrderRetrySaga, again, cmd))).toMatchObject({
      subject: Subjects.OrderSagaRetried,
    });
  });
});
