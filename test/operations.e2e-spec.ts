import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cursorOf, SagaSummary, Subjects } from '@orderflow/contracts';
import type { OperateResult } from '../apps/cli/src/saga/operate';
import { orderflow, orderflowJson } from './support/cli';
import { operatorKey, signedBy } from './support/operator';
import { provisionNats } from './support/provision';
import { order, Stack, waitFor } from './support/stack';

/**
 * Operating failures with the CLI (docs/operations.md), on the real stack with short step deadlines,
 * the CLI run as a subprocess: dead letters inspected, patched and replayed; sagas retried and resumed.
 * After each scenario, stock and money are conserved.
 */
describe('operating failures from the CLI', () => {
  let stack: Stack;
  const signed = (subject: string, msgId: string, body: unknown) => signedBy(stack.ns, subject, msgId, body);
  const uniq = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;
  const stock = async (sku: string) =>
    (await stack.db.query('select available::int, reserved::int, sold::int from inventory.stock where sku = $1', [sku])).rows[0];
  const balance = async (customer: string) =>
    Number((await stack.db.query('select balance from payments.accounts where customer_id = $1', [customer])).rows[0].balance);
  const sagaStatus = async (orderId: string) => (await stack.sagas(orderId)).pop()?.status;
  const patchFile = (patch: object) => {
    const file = join(tmpdir(), `patch-${randomUUID()}.json`);
    writeFileSync(file, JSON.stringify(patch));
    return file;
  };
  const entryOf = async (orderId: string) => (await orderflowJson(stack, ['dlq', 'list', '--order', orderId])).pop();

  beforeAll(async () => {
    // A saga's business deadline of 2 s, and compensations that give up after 600 + 1,200 + 1,200 ms, so that
    // deadline_exceeded and FAILED are reached within a test.
    stack = await Stack.start({
      SAGA_STEP_TIMEOUT_MS: '600',
      SAGA_DEADLINE: '2s',
      SAGA_COMPENSATION_MAX_ATTEMPTS: '3',
      SAGA_COMPENSATION_BACKOFF_MAX_MS: '1200',
    });
    await stack.db.query(`create function inventory.fail_release() returns trigger language plpgsql as $$
      begin raise exception 'injected fault: release of saga %', new.saga_id; end $$`);
    await stack.db.query(`create function orders.fail_order() returns trigger language plpgsql as $$
      begin raise exception 'injected fault: order %', new.order_id; end $$`);
  });
  afterEach(async () => {
    expect(await stack.conservationViolations()).toEqual([]);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('poison round trip: a lower-case currency is listed, advised, patched in a dry run, replayed to CONFIRMED, and not replayed twice', async () => {
    const [sku, customer] = [uniq('INK'), uniq('pat')];
    await stack.restock(sku, 5);
    await stack.deposit(customer, 10_000);
    const poison = { ...order(customer, [{ sku, quantity: 2, unitPrice: 300 }]), currency: 'usd' };
    await stack.publish(Subjects.OrderCreated, poison, 'poison-msg-' + poison.orderId);

    await waitFor(async () => !!(await entryOf(poison.orderId)));
    const entry = await entryOf(poison.orderId);
    expect(entry).toMatchObject({
      subject: 'order.created',
      consumer: 'order-placement',
      attempts: 1,
      state: 'new',
      replayCount: 0,
      errorCode: 'malformed',
      fingerprint: expect.stringMatching(/^[0-9a-f]{10}$/),
    });
    expect(entry.error).toMatch(/MalformedMessageError: .*currency must be an upper-case ISO 4217 code/);

    const shown = await orderflowJson(stack, ['dlq', 'show', String(entry.seq)]);
    expect(shown.headers).toMatchObject({ 'Dlq-Msg-Id': 'poison-msg-' + poison.orderId, 'Correlation-Id': poison.orderId });
    expect(shown.body).toEqual(poison);
    expect(shown.saga).toBeNull();
    expect(shown.advice).toMatch(/--patch/);

    const fix = patchFile({ currency: 'USD' });
    const dry = await orderflowJson(stack, [
      'dlq',
      'replay',
      String(entry.seq),
      '--patch',
      fix,
      '--dry-run',
      '--why',
      'lower-case currency',
    ]);
    expect(dry).toMatchObject({ dryRun: true, halted: false, results: [{ seq: entry.seq, action: 'would_replay', newMsgId: null }] });
    expect(dry.results[0].diff).toMatch(/-\s+"currency": "usd",\n\+\s+"currency": "USD",/);
    await new Promise((r) => setTimeout(r, 300));
    expect((await stack.db.query('select 1 from orders.orders where order_id = $1', [poison.orderId])).rowCount).toBe(0);
    expect((await entryOf(poison.orderId)).state).toBe('new');

    const replayed = await orderflowJson(stack, ['dlq', 'replay', String(entry.seq), '--patch', fix, '--why', 'lower-case currency']);
    expect(replayed.results).toEqual([expect.objectContaining({ seq: entry.seq, action: 'replayed', newMsgId: expect.any(String) })]);
    expect(await stack.outcome(poison.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    await waitFor(async () => (await entryOf(poison.orderId)).state === 'resolved');
    expect(await stock(sku)).toEqual({ available: 3, reserved: 0, sold: 2 });

    // Resolved (its saga COMPLETED since): a second replay is refused, with exit code 1.
    const again = await orderflowJson(stack, ['dlq', 'replay', String(entry.seq), '--patch', fix, '--why', 'twice?'], 1);
    expect(again.results).toEqual([
      expect.objectContaining({
        action: 'skipped',
        skippedBecause: 'not_replayable',
        reason: expect.stringMatching(/^resolved: .* COMPLETED/),
      }),
    ]);
    // Its state record is signed: `dlq show` verifies it against the registered keys, and sees a rewritten one.
    const record = await orderflowJson(stack, ['dlq', 'show', String(entry.seq)]);
    expect(record).toMatchObject({ state: 'resolved', timesReplayed: 1, failedAgainAs: null });
    expect(record.lastAction).toMatchObject({ state: 'replayed', replays: 1, verified: { ok: true, operator: 'ops-test' } });
    const kv = await new (await import('@orderflow/messaging/nats')).Kvm(stack.nc).open(stack.ns.stream('DLQ_STATE'));
    await kv.put(record.id, JSON.stringify({ ...record.lastAction, why: 'rewritten', verified: undefined }));
    expect((await orderflowJson(stack, ['dlq', 'show', String(entry.seq)])).lastAction.verified).toEqual({
      ok: false,
      problem: expect.stringMatching(/does not verify/),
    });
    // The replay is on the OPS stream, with who and why.
    const ops = await stack.jsm.streams.getMessage(stack.ns.stream('OPS'), { last_by_subj: stack.ns.subject('ops.dlq.replayed') });
    expect(JSON.parse(ops!.string())).toMatchObject({
      action: 'replay',
      operator: 'ops-test',
      why: 'lower-case currency',
      entries: [{ seq: entry.seq, newMsgId: replayed.results[0].newMsgId }],
    });
  });

  it('timeout round trip: payment down → stock released while the refund is re-sent, then FAILED; payment back → the late refund resumes it to CANCELLED; saga retry → CONFIRMED, charged once net', async () => {
    const [sku, customer] = [uniq('CAM'), uniq('tim')];
    await stack.restock(sku, 4);
    await stack.deposit(customer, 50_000);
    await stack.stopApp('payment');
    const o = order(customer, [{ sku, quantity: 2, unitPrice: 4_000 }]);
    try {
      await stack.publish(Subjects.OrderCreated, o);
      // The charge is re-sent until the saga's deadline passes; its refund and the release are then sent together: the refund that nobody answers
      // does not hold back the stock.
      const released = async () =>
        !!(await stack.sagas(o.orderId)).pop()?.history.some((h) => h.name === 'releaseStock' && h.status === 'SUCCEEDED');
      await waitFor(released, 20_000);
      expect(await stock(sku)).toEqual({ available: 4, reserved: 0, sold: 0 });
      expect(await sagaStatus(o.orderId)).toBe('COMPENSATING');
      const listed = await orderflowJson(stack, ['saga', 'list', '--status', 'COMPENSATING', '--step', 'refundPayment']);
      expect(listed.find((r: any) => r.orderId === o.orderId)).toMatchObject({ step: 'refundPayment' });
      // Out of sends, the refund is given up on: FAILED, waiting for an operator or the late reply.
      await waitFor(async () => (await sagaStatus(o.orderId)) === 'FAILED', 20_000);
    } finally {
      await stack.startApp('payment');
    }
    // Payment handles the queued charges and refunds; the refund's reply moves the FAILED saga on by itself.
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'deadline_exceeded' });
    const [first] = await stack.sagas(o.orderId);
    expect(first.history.map((h) => `${h.name}:${h.status}`)).toEqual([
      'reserveStock:SUCCEEDED',
      'chargePayment:FAILED',
      'refundPayment:SUCCEEDED',
      'releaseStock:SUCCEEDED',
    ]);
    expect(first.history[2].note).toMatch(/late reply payment.evt.refunded after the saga had FAILED: resumed/);
    // It timed out on chargePayment: `saga list --step chargePayment` finds it, CANCELLED as it is now.
    const onStep = await orderflowJson(stack, ['saga', 'list', '--status', 'CANCELLED', '--step', 'chargePayment']);
    expect(onStep.find((r: any) => r.orderId === o.orderId)).toMatchObject({ status: 'CANCELLED', reason: 'deadline_exceeded' });
    expect(await stock(sku)).toEqual({ available: 4, reserved: 0, sold: 0 });
    await waitFor(async () => (await balance(customer)) === 50_000);

    const dry = await orderflowJson(stack, ['saga', 'retry', o.orderId, '--why', 'payment is back', '--dry-run']);
    expect(dry).toMatchObject({
      dryRun: true,
      results: [{ sagaId: first.id, orderId: o.orderId, action: 'would_retry', newSagaId: null }],
    });
    expect(dry.results[0].plan).toEqual([
      `reserveStock: send inventory.cmd.reserve (${sku}×2)`,
      'chargePayment: send payment.cmd.charge (80.00 USD)',
      'createOrder: local transaction (pivot)',
      'commitReservation: send inventory.cmd.commit',
    ]);
    expect(dry.results[0].recorded).toEqual([
      'inventory: attempt 1 RELEASED, 2 unit(s) (' + sku + '×2)',
      'payment: attempt 1 charged 80.00 USD, refunded 80.00 USD',
    ]);
    expect(await stack.sagas(o.orderId)).toHaveLength(1);

    const retried = await orderflowJson(stack, ['saga', 'retry', o.orderId, '--why', 'payment is back']);
    expect(retried.results).toEqual([expect.objectContaining({ action: 'retried', newSagaId: expect.any(String) })]);
    await waitFor(async () => (await sagaStatus(o.orderId)) === 'COMPLETED');
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    expect(await balance(customer)).toBe(50_000 - 8_000);
    expect(await stock(sku)).toEqual({ available: 2, reserved: 0, sold: 2 });

    const show = await orderflowJson(stack, ['saga', 'show', o.orderId]);
    expect(show).toMatchObject({ sagaId: retried.results[0].newSagaId, attempt: 2, status: 'COMPLETED', remaining: [] });
    expect(show.attempts.map((a: any) => `${a.attempt}:${a.status}`)).toEqual(['1:CANCELLED', '2:COMPLETED']);
    expect(show.actions).toEqual([
      expect.objectContaining({
        action: 'retry',
        sagaId: first.id,
        operator: 'ops-test',
        publicKey: operatorKey().getPublicKey(),
        why: 'payment is back',
      }),
    ]);
    // Two notifications: one per outcome of each attempt.
    expect(
      (
        await stack.db.query('select outcome from notifications.notifications where order_id = $1 order by created_at', [o.orderId])
      ).rows.map((r) => r.outcome),
    ).toEqual(['CANCELLED', 'CONFIRMED']);
  });

  it('business retry: out of stock, restocked, retried → CONFIRMED; a COMPLETED saga is refused and left alone', async () => {
    const [sku, customer] = [uniq('VASE'), uniq('bea')];
    await stack.restock(sku, 1);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [{ sku, quantity: 3, unitPrice: 500 }]);
    await stack.publish(Subjects.OrderCreated, o);
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'out_of_stock' });

    expect((await orderflow(stack, ['stock', 'add', sku, '5'])).code).toBe(0);
    const listed = await orderflowJson(stack, ['saga', 'list', '--status', 'CANCELLED', '--reason', 'out_of_stock']);
    expect(listed.map((s: any) => s.orderId)).toContain(o.orderId);
    const retried = await orderflowJson(stack, ['saga', 'retry', o.orderId, '--why', 'restocked']);
    expect(retried.results[0].action).toBe('retried');
    await waitFor(async () => (await sagaStatus(o.orderId)) === 'COMPLETED');
    expect(await stock(sku)).toEqual({ available: 3, reserved: 0, sold: 3 });

    const again = await orderflowJson(stack, ['saga', 'retry', o.orderId, '--why', 'twice?'], 1);
    expect(again.results).toEqual([
      expect.objectContaining({ action: 'skipped', reason: 'saga is COMPLETED: only a CANCELLED saga can be retried' }),
    ]);
    expect(await stack.sagas(o.orderId)).toHaveLength(2);
  });

  it('FAILED saga: a compensation that fails every time leaves it FAILED; with the fault gone, saga resume → CANCELLED, all released', async () => {
    const [sku, customer] = [uniq('DRUM'), uniq('fay')];
    await stack.restock(sku, 3);
    await stack.deposit(customer, 100);
    const o = order(customer, [{ sku, quantity: 2, unitPrice: 700 }]);
    await stack.db.query(`create trigger fail_release before update on inventory.reservations for each row
      when (new.order_id = '${o.orderId}' and new.status = 'RELEASED') execute function inventory.fail_release()`);
    try {
      await stack.publish(Subjects.OrderCreated, o);
      await waitFor(async () => (await sagaStatus(o.orderId)) === 'FAILED', 20_000);
      expect(await stock(sku)).toEqual({ available: 1, reserved: 2, sold: 0 });
      const listed = await orderflowJson(stack, ['saga', 'list', '--status', 'FAILED', '--step', 'releaseStock']);
      expect(listed.map((s: any) => s.orderId)).toContain(o.orderId);
    } finally {
      await stack.db.query('drop trigger fail_release on inventory.reservations');
    }
    const dry = await orderflowJson(stack, ['saga', 'resume', '--status', 'FAILED', '--why', 'fault removed', '--dry-run']);
    expect(dry.results.find((r: any) => r.orderId === o.orderId)).toMatchObject({
      action: 'would_resume',
      plan: ['releaseStock: send inventory.cmd.release (again)'],
    });

    const resumed = await orderflowJson(stack, ['saga', 'resume', o.orderId, '--why', 'fault removed']);
    expect(resumed.results).toEqual([expect.objectContaining({ action: 'resumed' })]);
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'insufficient_funds' });
    expect(await stock(sku)).toEqual({ available: 3, reserved: 0, sold: 0 });
    const show = await orderflowJson(stack, ['saga', 'show', o.orderId]);
    expect(show.steps.map((s: any) => `${s.name}:${s.status}`)).toEqual([
      'reserveStock:SUCCEEDED',
      'chargePayment:FAILED',
      'releaseStock:FAILED',
      'releaseStock:SUCCEEDED',
    ]);
    expect(show.steps[3].note).toBe('resumed by operator');
    // The release commands that failed meanwhile were dead-lettered; their saga has moved on since.
    expect(show.deadLetters.length).toBeGreaterThan(0);
    const letter = await orderflowJson(stack, ['dlq', 'show', String(show.deadLetters[0].seq)]);
    // Resolved however it came about (here: resume): the advice says so and offers only what would be accepted.
    expect(letter.state).toBe('resolved');
    expect(letter.advice).toMatch(
      /^resolved: saga attempt 1 of order .* ended CANCELLED \(insufficient_funds\) at .*, after this was dead-lettered; .*to run the order again: `orderflow saga retry /,
    );
    const movedOn = await orderflowJson(stack, ['dlq', 'replay', String(letter.seq), '--why', 'fault removed'], 1);
    expect(movedOn.results[0]).toMatchObject({
      action: 'skipped',
      skippedBecause: 'not_replayable',
      reason: expect.stringMatching(/^resolved: .*\(--force replays it anyway\)/),
    });
  });

  it('canary: of 20 patched replays the first 3 still fail; it halts after the first failing round and prints the resume command', async () => {
    const [sku, customer] = [uniq('BEAD'), uniq('can')];
    await stack.restock(sku, 100);
    await stack.deposit(customer, 100_000);
    const poison = Array.from({ length: 20 }, () => ({ ...order(customer, [{ sku, quantity: 2, unitPrice: 10 }]), currency: 'usd' }));
    for (const p of poison) await stack.publish(Subjects.OrderCreated, p);
    let seqs: number[] = [];
    await waitFor(async () => {
      const all = await orderflowJson(stack, [
        'dlq',
        'list',
        '--fingerprint',
        (await entryOf(poison[0].orderId))?.fingerprint ?? '-',
        '--state',
        'new',
      ]);
      seqs = all.filter((e: any) => poison.some((p) => p.orderId === e.orderId)).map((e: any) => e.seq);
      return seqs.length === 20;
    });
    // The fault is still there for the first three: storing their orders fails every time.
    const failing = poison
      .slice(0, 3)
      .map((p) => `'${p.orderId}'`)
      .join(', ');
    await stack.db.query(`create trigger fail_canary before insert on orders.orders for each row
      when (new.order_id in (${failing})) execute function orders.fail_order()`);
    try {
      const r = await orderflow(stack, [
        'dlq',
        'replay',
        ...seqs.map(String),
        '--canary',
        '--patch',
        patchFile({ currency: 'USD' }),
        '--why',
        'currency fix',
        '--timeout',
        '10000',
        '--json',
      ]);
      expect(r.code).toBe(1);
      const report = JSON.parse(r.stdout);
      expect(report.halted).toBe(true);
      expect(report.results.filter((x: any) => x.action === 'replayed').map((x: any) => x.seq)).toEqual([seqs[0]]);
      expect(report.results.filter((x: any) => x.action === 'skipped').map((x: any) => x.reason)).toEqual(
        Array(19).fill('not replayed: the canary halted'),
      );
      expect(report.resume).toMatch(
        new RegExp(`^orderflow dlq replay ${seqs.slice(1).join(' ')} --canary --max-fail-rate 0.2 --patch '[^']+' --why 'currency fix'$`),
      );
      expect(r.stderr).toMatch(/the canary halted/);
      // The one replayed was dead-lettered again, and its entry says so; the new dead letter names the replay.
      await waitFor(async () => (await orderflowJson(stack, ['dlq', 'list', '--order', poison[0].orderId])).length === 2);
      const [original, again] = await orderflowJson(stack, ['dlq', 'list', '--order', poison[0].orderId]);
      expect(original).toMatchObject({ seq: seqs[0], state: 'failed_again' });
      expect(again).toMatchObject({ state: 'new', replayCount: 1, error: expect.stringMatching(/injected fault: order/) });
    } finally {
      await stack.db.query('drop trigger fail_canary on orders.orders');
    }
    expect(
      (await stack.db.query('select count(*)::int as n from orders.orders where order_id = any($1)', [poison.map((p) => p.orderId)]))
        .rows[0].n,
    ).toBe(0);
  });

  it('bookkeeping: stats group by fingerprint; Replay-Count 3 needs --force; purge keeps a record; an advisory is an entry, lost once its original is gone', async () => {
    // Three dead letters of one cause, one of them already replayed three times.
    const bodies = [1, 2, 3].map(() => ({ ...order(uniq('sta'), [{ sku: 'NONE', quantity: 0, unitPrice: 1 }]) }));
    for (const b of bodies.slice(0, 2)) await stack.publish(Subjects.OrderCreated, b);
    const h = (await import('@orderflow/messaging/nats')).headers();
    h.set('Replay-Count', '3');
    await (
      await import('@orderflow/messaging/nats')
    )
      .jetstream(stack.nc)
      .publish(stack.ns.subject(Subjects.OrderCreated), Buffer.from(JSON.stringify(bodies[2])), { headers: h });
    await waitFor(async () => (await Promise.all(bodies.map((b) => entryOf(b.orderId)))).every(Boolean));
    const [a, b, c] = await Promise.all(bodies.map((x) => entryOf(x.orderId)));
    expect(new Set([a.fingerprint, b.fingerprint, c.fingerprint]).size).toBe(1);
    const stats = await orderflowJson(stack, ['dlq', 'stats']);
    expect(stats.find((g: any) => g.fingerprint === a.fingerprint)).toMatchObject({
      subject: 'order.created',
      count: expect.any(Number),
      error: expect.stringMatching(/quantity must not be less than <n>/),
    });
    expect(stats.find((g: any) => g.fingerprint === a.fingerprint).count).toBeGreaterThanOrEqual(3);

    const fix = patchFile({ items: [{ sku: 'NONE', quantity: 1, unitPrice: 1 }] });
    const thrice = await orderflowJson(stack, ['dlq', 'replay', String(c.seq), '--patch', fix, '--why', 'x', '--dry-run'], 1);
    expect(thrice.results[0]).toMatchObject({ action: 'skipped', reason: 'replayed 3 times already: needs --force' });
    const forced = await orderflowJson(stack, ['dlq', 'replay', String(c.seq), '--patch', fix, '--why', 'x', '--dry-run', '--force']);
    expect(forced.results[0].action).toBe('would_replay');

    // Purge: asks for --yes off a terminal; then deletes the message, keeps a purged record, writes the OPS event.
    const unconfirmed = await orderflow(stack, ['dlq', 'purge', String(a.seq), String(b.seq), '--why', 'test orders']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/about to purge 2 dead letter\(s\): pass --yes to confirm/);
    const purged = await orderflowJson(stack, ['dlq', 'purge', String(a.seq), String(b.seq), '--why', 'test orders', '--yes']);
    expect(purged.results.map((r: any) => r.action)).toEqual(['purged', 'purged']);
    expect(await stack.jsm.streams.getMessage(stack.ns.stream('DLQ'), { seq: a.seq })).toBeNull();
    expect((await orderflowJson(stack, ['dlq', 'list', '--state', 'purged'])).map((e: any) => e.seq)).toEqual(
      expect.arrayContaining([a.seq, b.seq]),
    );
    const ops = await stack.jsm.streams.getMessage(stack.ns.stream('OPS'), { last_by_subj: stack.ns.subject('ops.dlq.purged') });
    expect(JSON.parse(ops!.string())).toMatchObject({
      action: 'purge',
      operator: 'ops-test',
      why: 'test orders',
      entries: [{ seq: a.seq }, { seq: b.seq }],
    });

    // A consumer that gave up without our dead-lettering (max deliveries, never acked): the server's advisory.
    const stream = stack.ns.stream('PAYMENT');
    const { AckPolicy } = await import('@orderflow/messaging/nats');
    await stack.jsm.consumers.add(stream, {
      durable_name: 'probe',
      ack_policy: AckPolicy.Explicit,
      max_deliver: 1,
      ack_wait: 300_000_000,
      filter_subject: stack.ns.subject('payment.test.probe'),
    });
    const probeOrder = randomUUID();
    const ph = (await import('@orderflow/messaging/nats')).headers();
    ph.set('Correlation-Id', probeOrder);
    const ack = await (
      await import('@orderflow/messaging/nats')
    )
      .jetstream(stack.nc)
      .publish(stack.ns.subject('payment.test.probe'), Buffer.from('{"probe":true}'), { headers: ph });
    const probe = await (await import('@orderflow/messaging/nats')).jetstream(stack.nc).consumers.get(stream, 'probe');
    expect(await probe.next({ expires: 1000 })).not.toBeNull(); // delivered, never acked
    await new Promise((r) => setTimeout(r, 500));
    await probe.next({ expires: 1000 }); // asks again: the server gives up and sends the advisory
    await waitFor(async () => !!(await entryOf(probeOrder)));
    const advisory = await entryOf(probeOrder);
    expect(advisory).toMatchObject({
      subject: 'payment.test.probe',
      stream,
      streamSeq: ack.seq,
      consumer: 'probe',
      attempts: 1,
      state: 'new',
      error: expect.stringMatching(/^MaxDeliveriesExceeded: consumer probe gave up after 1 deliveries/),
    });
    await stack.jsm.streams.deleteMessage(stream, ack.seq);
    expect((await orderflowJson(stack, ['dlq', 'list', '--state', 'lost'])).map((e: any) => e.seq)).toContain(advisory.seq);
    await stack.jsm.consumers.delete(stream, 'probe');
  });

  it('bulk retry pages through a snapshot: keyset pages neither skip nor repeat, --limit stops, --after carries on', async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    const [sku, customer] = [uniq('BULK'), uniq('blk')];
    await stack.restock(sku, 1);
    await stack.deposit(customer, 1_000_000);
    const orders = Array.from({ length: 7 }, () => order(customer, [{ sku, quantity: 2, unitPrice: 100 }]));
    for (const o of orders) await stack.publish(Subjects.OrderCreated, o);
    for (const o of orders) expect((await stack.outcome(o.orderId)).reason).toBe('out_of_stock');
    const filter = { status: ['CANCELLED'], reason: 'out_of_stock', since };
    const pages = async (order: 'id' | 'updated') => {
      const seen: string[] = [];
      for (let after: string | undefined, n = 0; n < 10; n++) {
        const page = (await stack.query(Subjects.QuerySagas, { ...filter, order, after, limit: 3 })).data as SagaSummary[];
        seen.push(...page.map((r) => r.sagaId));
        if (page.length < 3) break;
        after = cursorOf(page[page.length - 1], order);
      }
      return seen;
    };
    const byId = await pages('id');
    expect(byId).toHaveLength(7);
    expect([...byId].sort()).toEqual(byId);
    expect((await pages('updated')).sort()).toEqual(byId);

    await stack.restock(sku, 14);
    const args = ['saga', 'retry', '--status', 'CANCELLED', '--reason', 'out_of_stock', '--since', since, '--why', 'restocked', '--yes'];
    const first = await orderflowJson(stack, [...args, '--limit', '3']);
    expect(first.results.map((r: OperateResult) => [r.sagaId, r.action])).toEqual(byId.slice(0, 3).map((id) => [id, 'retried']));
    const rest = await orderflowJson(stack, [...args, '--after', byId[2]]);
    expect(rest.results.map((r: OperateResult) => [r.sagaId, r.action])).toEqual(byId.slice(3).map((id) => [id, 'retried']));
    for (const o of orders) await waitFor(async () => (await sagaStatus(o.orderId)) === 'COMPLETED');
  });

  it('bulk purge by filter takes a snapshot, states its size, stops at --limit, and --after carries on', async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    const customer = uniq('bulk');
    const poison = Array.from({ length: 5 }, () => ({
      ...order(customer, [{ sku: 'SKU-X', quantity: 1, unitPrice: 10 }]),
      currency: 'usd',
    }));
    for (const p of poison) await stack.publish(Subjects.OrderCreated, p);
    const ours = async () =>
      (await orderflowJson(stack, ['dlq', 'list', '--since', since])).filter((e: any) => poison.some((p) => p.orderId === e.orderId));
    await waitFor(async () => (await ours()).length === 5);
    const seqs = (await ours()).map((e: any) => e.seq);
    const filters = ['--all', '--since', since, '--error', 'currency', '--state', 'new'];

    const first = await orderflow(stack, ['dlq', 'purge', ...filters, '--limit', '2', '--why', 'bulk test', '--yes', '--json']);
    expect(first.code).toBe(0);
    // Nothing else matches: the other tests' dead letters are older than `since`.
    expect(first.stderr).toMatch(/^snapshot: 5 matching dead letter\(s\), the first 2 \(--limit\)$/m);
    const purged = JSON.parse(first.stdout)
      .results.filter((r: any) => r.action === 'purged')
      .map((r: any) => r.seq);
    expect(purged).toEqual(seqs.slice(0, 2));

    const rest = await orderflow(stack, ['dlq', 'purge', ...filters, '--after', String(seqs[1]), '--why', 'bulk test', '--yes', '--json']);
    expect(rest.code).toBe(0);
    expect(rest.stderr).toMatch(new RegExp(`^snapshot: 3 matching dead letter\\(s\\) after SEQ ${seqs[1]}$`, 'm'));
    const states = new Map((await ours()).map((e: any) => [e.seq, e.state]));
    expect(seqs.map((s: number) => states.get(s))).toEqual(Array(5).fill('purged'));
    expect(JSON.parse(rest.stdout).results.map((r: any) => [r.seq, r.action])).toEqual(seqs.slice(2).map((s: number) => [s, 'purged']));
  });

  it('an operator command sent twice with the same id has one effect', async () => {
    const [sku, customer] = [uniq('TWICE'), uniq('two')];
    await stack.restock(sku, 1);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [{ sku, quantity: 2, unitPrice: 100 }]);
    await stack.publish(Subjects.OrderCreated, o);
    expect((await stack.outcome(o.orderId)).reason).toBe('out_of_stock');
    const [first] = await stack.sagas(o.orderId);
    const command = { sagaId: first.id, why: 'twice' };
    await stack.publish(Subjects.OrderRetrySaga, command, 'retry-once', signed(Subjects.OrderRetrySaga, 'retry-once', command));
    await waitFor(async () => (await stack.sagas(o.orderId)).length === 2);
    // The same command again, past the stream's duplicate window: it reaches the order app, whose inbox drops it.
    await stack.publish(Subjects.OrderRetrySaga, command, 'retry-once-again', {
      'Replay-Of': 'retry-once',
      ...signed(Subjects.OrderRetrySaga, 'retry-once-again', command),
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(await stack.sagas(o.orderId)).toHaveLength(2);
    expect((await stack.db.query('select count(*)::int as n from orders.operator_actions where saga_id = $1', [first.id])).rows[0].n).toBe(
      1,
    );
  });

  it('dead-letter state survives recreating the DLQ stream: a new entry at a reused sequence reads new and replays', async () => {
    const [sku, customer] = [uniq('RECR'), uniq('rec')];
    await stack.restock(sku, 5);
    await stack.deposit(customer, 10_000);
    const first = { ...order(customer, [{ sku, quantity: 1, unitPrice: 100 }]), currency: 'usd' };
    await stack.publish(Subjects.OrderCreated, first);
    await waitFor(async () => !!(await entryOf(first.orderId)));
    const fix = patchFile({ currency: 'USD' });
    await orderflowJson(stack, ['dlq', 'replay', String((await entryOf(first.orderId)).seq), '--patch', fix, '--why', 'fix']);
    await waitFor(async () => (await entryOf(first.orderId)).state === 'resolved');

    // The DLQ stream recreated (new limits, say): its sequences start at 1 again; the bucket keeps its records.
    await stack.jsm.streams.delete(stack.ns.stream('DLQ'));
    await provisionNats(stack.config);
    const second = { ...order(customer, [{ sku, quantity: 1, unitPrice: 100 }]), currency: 'usd' };
    await stack.publish(Subjects.OrderCreated, second);
    await waitFor(async () => !!(await entryOf(second.orderId)));
    const entry = await entryOf(second.orderId);
    expect(entry).toMatchObject({ seq: 1, state: 'new' });
    const replayed = await orderflowJson(stack, ['dlq', 'replay', '1', '--patch', fix, '--why', 'fix the new one']);
    expect(replayed.results).toEqual([expect.objectContaining({ seq: 1, action: 'replayed' })]);
    expect(await stack.outcome(second.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
  });
});
