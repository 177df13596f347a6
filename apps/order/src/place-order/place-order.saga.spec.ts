import { AppTopology, Subjects } from '@orderflow/contracts';
import { UnexpectedReplyError } from '@orderflow/messaging';
import { DEADLINE_EXCEEDED, SagaDefinition, SagaEngine, SagaEngineOptions, SagaState, Transition } from '@orderflow/saga';
import { PlaceOrderData, placeOrderSaga } from './place-order.saga';

const order: PlaceOrderData = {
  sagaId: '0d6f4c8e-6a1b-4f7e-9b55-3c2a1d0e0001',
  orderId: '5b0c1a52-6f0e-4a55-9a53-0d7d1c7c0001',
  customerId: 'alice',
  currency: 'USD',
  items: [
    { sku: 'BOOK', quantity: 2, unitPrice: 1250 },
    { sku: 'PEN', quantity: 1, unitPrice: 300 },
  ],
  total: 2800,
};

/** A saga test that reads as a script: given a state, expect a command; given a reply, expect the next. */
class Script {
  now = new Date('2026-11-22T10:00:00Z');
  readonly engine: SagaEngine<PlaceOrderData>;
  last!: Transition;
  constructor(options: Partial<SagaEngineOptions> = {}, definition: SagaDefinition<PlaceOrderData> = placeOrderSaga) {
    this.engine = new SagaEngine(definition, options, () => this.now);
  }
  get state(): SagaState {
    return this.last.state;
  }

  start() {
    this.last = this.engine.begin(order);
    return this;
  }
  /** A reply; `inventory.evt.reserved` holds the order's lines unless `body` says otherwise. */
  reply(subject: string, body: object = {}) {
    const defaults = subject === Subjects.InventoryReserved ? { items: order.items.map(({ sku, quantity }) => ({ sku, quantity })) } : {};
    this.last = this.engine.onReply(this.state, order, subject, { orderId: order.orderId, ...defaults, ...body });
    return this;
  }
  local(ok: boolean, reason = 'order_not_pending') {
    this.last = this.engine.onLocalResult(this.state, order, ok ? { ok: true } : { ok: false, reason });
    return this;
  }
  /** Moves the clock to the saga's deadline and lets it pass. */
  timeout() {
    const deadline = this.engine.deadlineOf(this.state);
    if (!deadline) throw new Error('the saga has no deadline');
    this.now = deadline;
    this.last = this.engine.onTimeout(this.state, order);
    return this;
  }
  /** Moves the clock on without a deadline passing. */
  wait(ms: number) {
    this.now = new Date(this.now.getTime() + ms);
    return this;
  }
  resume() {
    this.last = this.engine.resume(this.state, order);
    return this;
  }
  expectRemaining(...names: string[]) {
    expect(this.engine.remaining(this.state)).toEqual(names);
    return this;
  }
  expectCommand(subject: string, body?: object) {
    expect(this.last.effects).toEqual([{ type: 'send', command: { subject, body: body ?? expect.anything() } }]);
    expect(this.engine.deadlineOf(this.state)).not.toBeNull();
    return this;
  }
  /** Commands sent together (concurrent compensations), in the order given. */
  expectCommands(...subjects: string[]) {
    expect(this.last.effects).toEqual(subjects.map((subject) => ({ type: 'send', command: { subject, body: expect.anything() } })));
    return this;
  }
  expectDeadlineIn(ms: number) {
    expect(this.engine.deadlineOf(this.state)!.getTime() - this.now.getTime()).toBe(ms);
    return this;
  }
  expectLocal(step: string) {
    expect(this.last.effects).toEqual([{ type: 'runLocal', step }]);
    return this;
  }
  expectStatus(status: SagaState['status']) {
    expect(this.state.status).toBe(status);
    return this;
  }
  expectHistory(...entries: string[]) {
    expect(this.state.history.map((h) => `${h.name}:${h.status}`)).toEqual(entries);
    return this;
  }
}

describe('PlaceOrder saga', () => {
  const sagaId = order.sagaId;

  it('happy path: reserve → charge → create order (pivot) → commit the reservation → completed; every command names the attempt', () => {
    const s = new Script()
      .start()
      .expectStatus('RUNNING')
      .expectCommand(Subjects.InventoryReserve, {
        orderId: order.orderId,
        sagaId,
        items: [
          { sku: 'BOOK', quantity: 2 },
          { sku: 'PEN', quantity: 1 },
        ],
      })
      .expectRemaining('chargePayment', 'createOrder', 'commitReservation')
      .reply(Subjects.InventoryReserved)
      .expectCommand(Subjects.PaymentCharge, { orderId: order.orderId, sagaId, customerId: 'alice', amount: 2800, currency: 'USD' })
      .reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' })
      .expectLocal('createOrder')
      .local(true)
      .expectCommand(Subjects.InventoryCommit, { orderId: order.orderId, sagaId })
      .expectRemaining()
      .reply(Subjects.InventoryCommitted);
    expect(s.last.effects).toEqual([{ type: 'completed' }]);
    expect(s.engine.deadlineOf(s.state)).toBeNull();
    s.expectStatus('COMPLETED').expectHistory(
      'reserveStock:SUCCEEDED',
      'chargePayment:SUCCEEDED',
      'createOrder:SUCCEEDED',
      'commitReservation:SUCCEEDED',
    );
  });

  it('refuses a reply that contradicts the command (another amount, currency or lines): nothing changes, the real reply still counts', () => {
    const s = new Script().start();
    const before = s.state;
    expect(() => s.reply(Subjects.InventoryReserved, { items: [{ sku: 'BOOK', quantity: 1 }] })).toThrow(
      /^unexpected_reply: inventory.evt.reserved holds BOOK×1; saga .* reserved BOOK×2 PEN×1$/,
    );
    expect(s.state).toBe(before);
    // The same units split into other lines, in another order, are the same reservation.
    s.reply(Subjects.InventoryReserved, {
      items: [
        { sku: 'PEN', quantity: 1 },
        { sku: 'BOOK', quantity: 1 },
        { sku: 'BOOK', quantity: 1 },
      ],
    }).expectCommand(Subjects.PaymentCharge);
    expect(() => s.reply(Subjects.PaymentCharged, { amount: 0, currency: 'USD' })).toThrow(
      /^unexpected_reply: payment.evt.charged of 0 USD; saga .* charged 2800 USD$/,
    );
    expect(() => s.reply(Subjects.PaymentCharged, { amount: 2800, currency: 'EUR' })).toThrow(UnexpectedReplyError);
    s.expectStatus('RUNNING').expectRemaining('createOrder', 'commitReservation');
    s.reply(Subjects.PaymentDeclined, { reason: 'insufficient_funds' }).expectCommand(Subjects.InventoryRelease);
  });

  it('a forged reply for a step it no longer waits on is ignored quietly, whatever it says', () => {
    const s = new Script()
      .start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.InventoryReserved, { items: [{ sku: 'X', quantity: 9 }] });
    expect(s.last.ignored).toBe(true);
  });

  it('after the pivot a step without reply is re-sent, never compensated; past the saga deadline the saga is FAILED and its late reply completes it', () => {
    const s = new Script({ sagaDeadlineMs: 90_000 })
      .start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' })
      .local(true)
      .timeout()
      .expectCommand(Subjects.InventoryCommit)
      .timeout();
    s.expectStatus('FAILED').expectRemaining('commitReservation');
    expect(s.engine.current(s.state)).toEqual(['commitReservation']);
    expect(s.last.effects).toEqual([
      { type: 'failed', error: "retriable step commitReservation failed: no reply within the saga's deadline (2 send(s))" },
    ]);
    s.reply(Subjects.InventoryCommitted);
    expect(s.last.effects).toEqual([{ type: 'completed' }]);
    s.expectStatus('COMPLETED');
    expect(s.state.history[3]).toMatchObject({
      name: 'commitReservation',
      status: 'SUCCEEDED',
      note: expect.stringMatching(/late reply .* after the saga had FAILED/),
    });
  });

  it('out of stock: nothing to compensate, cancelled with the reason', () => {
    const s = new Script().start().reply(Subjects.InventoryRejected, { reason: 'out_of_stock', detail: 'BOOK: wanted 2, available 1' });
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'out_of_stock', detail: 'BOOK: wanted 2, available 1' }]);
    s.expectStatus('CANCELLED').expectHistory('reserveStock:FAILED');
    expect(s.state.history[0].error).toBe('out_of_stock: BOOK: wanted 2, available 1');
  });

  it('unknown SKU: cancelled with unknown_sku, no charge sent', () => {
    const s = new Script().start().reply(Subjects.InventoryRejected, { reason: 'unknown_sku' });
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'unknown_sku', detail: null }]);
    s.expectStatus('CANCELLED');
  });

  it('payment declined: stock released, then cancelled with the decline reason', () => {
    const s = new Script()
      .start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentDeclined, { reason: 'insufficient_funds' })
      .expectStatus('COMPENSATING')
      .expectCommand(Subjects.InventoryRelease, { orderId: order.orderId, sagaId })
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'insufficient_funds', detail: null }]);
    s.expectStatus('CANCELLED').expectHistory('reserveStock:SUCCEEDED', 'chargePayment:FAILED', 'releaseStock:SUCCEEDED');
  });

  it('order-creation failure: refund and release are sent together; cancelled once both replied, in either order', () => {
    const s = new Script()
      .start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' })
      .local(false, 'order_not_pending')
      .expectStatus('COMPENSATING')
      .expectCommands(Subjects.PaymentRefund, Subjects.InventoryRelease)
      .expectRemaining('refundPayment', 'releaseStock')
      .reply(Subjects.InventoryReleased)
      .expectStatus('COMPENSATING')
      .expectRemaining('refundPayment');
    expect(s.last.effects).toEqual([]);
    s.reply(Subjects.PaymentRefunded, { amount: 2800 });
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'order_not_pending', detail: null }]);
    s.expectStatus('CANCELLED').expectHistory(
      'reserveStock:SUCCEEDED',
      'chargePayment:SUCCEEDED',
      'createOrder:FAILED',
      'refundPayment:SUCCEEDED',
      'releaseStock:SUCCEEDED',
    );
  });

  it('ignores a reply that does not belong to what the saga waits on (duplicate or stale)', () => {
    const s = new Script().start().reply(Subjects.InventoryReserved);
    const before = s.state;
    s.reply(Subjects.InventoryReserved);
    expect(s.last.ignored).toBe(true);
    expect(s.last.effects).toEqual([]);
    expect(s.state).toBe(before);
    const compensating = s.reply(Subjects.PaymentDeclined, { reason: 'insufficient_funds' }).reply(Subjects.InventoryReleased).state;
    s.reply(Subjects.InventoryReleased);
    expect(s.last.ignored).toBe(true);
    expect(s.state).toBe(compensating);
  });

  it('slowness is not an answer: a step without reply is re-sent with a doubling deadline, and a reply after a long outage still confirms', () => {
    const s = new Script().start().reply(Subjects.InventoryReserved);
    const deadlines: number[] = [];
    while (s.now.getTime() < Date.parse('2026-11-22T10:50:00Z')) {
      const before = s.now.getTime();
      s.timeout().expectCommand(Subjects.PaymentCharge).expectStatus('RUNNING');
      deadlines.push((s.now.getTime() - before) / 1000);
    }
    expect(deadlines.slice(0, 6)).toEqual([30, 60, 120, 240, 300, 300]);
    s.reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' }).local(true).reply(Subjects.InventoryCommitted);
    s.expectStatus('COMPLETED');
  });

  it('a step without reply by the saga deadline is failed and compensated (itself included) concurrently: deadline_exceeded', () => {
    const s = new Script({ sagaDeadlineMs: 90_000 })
      .start()
      .reply(Subjects.InventoryReserved)
      .expectDeadlineIn(30_000)
      .timeout()
      .expectCommand(Subjects.PaymentCharge)
      .expectStatus('RUNNING')
      .timeout()
      .expectStatus('COMPENSATING')
      // The charge may have been applied without us hearing back: refund it, and release the stock meanwhile.
      .expectCommands(Subjects.PaymentRefund, Subjects.InventoryRelease)
      .reply(Subjects.PaymentRefunded, { amount: 0 })
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([
      { type: 'cancelled', reason: DEADLINE_EXCEEDED, detail: "chargePayment: no reply within the saga's deadline (2 send(s))" },
    ]);
  });

  it('a refund that cannot be delivered does not hold back the release; it is re-sent with a doubling deadline until it succeeds', () => {
    const s = new Script({ stepTimeoutMs: 1000, compensationBackoffMaxMs: 5000 })
      .start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' })
      .local(false)
      .expectCommands(Subjects.PaymentRefund, Subjects.InventoryRelease)
      .wait(10)
      .reply(Subjects.InventoryReleased)
      .expectStatus('COMPENSATING')
      .expectDeadlineIn(990);
    const deadlines: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = s.now.getTime();
      s.timeout().expectCommand(Subjects.PaymentRefund);
      deadlines.push(s.now.getTime() - before);
    }
    expect(deadlines).toEqual([990, 2000, 4000, 5000, 5000, 5000]);
    expect(s.state.history.find((h) => h.name === 'refundPayment')).toMatchObject({ status: 'RUNNING', attempts: 7 });
    s.reply(Subjects.PaymentRefunded, { amount: 2800 }).expectStatus('CANCELLED');
  });

  it('a compensation out of sends is given up on; the saga is FAILED once nothing else is in flight, and the late reply resumes it', () => {
    const s = new Script({ sagaDeadlineMs: 1000, compensationMaxAttempts: 2, stepTimeoutMs: 1000, compensationBackoffMaxMs: 1000 })
      .start()
      .reply(Subjects.InventoryReserved)
      .timeout() // the charge: past the saga deadline → compensate it and the reservation
      .expectCommands(Subjects.PaymentRefund, Subjects.InventoryRelease)
      .timeout()
      .expectCommands(Subjects.PaymentRefund, Subjects.InventoryRelease)
      .reply(Subjects.InventoryReleased)
      .timeout() // the refund: out of sends → FAILED
      .expectStatus('FAILED')
      .expectRemaining('refundPayment');
    expect(s.last.effects).toEqual([{ type: 'failed', error: 'compensation refundPayment (no reply after 2 attempt(s)) failed' }]);
    expect(s.engine.deadlineOf(s.state)).toBeNull();
    // Replies to other steps (the charge that finally went through) change nothing.
    s.reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' });
    expect(s.last.ignored).toBe(true);
    s.reply(Subjects.PaymentRefunded, { amount: 2800 });
    expect(s.last.effects).toEqual([
      { type: 'cancelled', reason: DEADLINE_EXCEEDED, detail: "chargePayment: no reply within the saga's deadline (1 send(s))" },
    ]);
    s.expectHistory('reserveStock:SUCCEEDED', 'chargePayment:FAILED', 'refundPayment:SUCCEEDED', 'releaseStock:SUCCEEDED');
    expect(s.state.history[2].note).toMatch(/late reply payment.evt.refunded after the saga had FAILED: resumed/);
  });

  it('an operator resume sends the given-up compensation again as a new execution, then compensates on', () => {
    const s = new Script({ compensationMaxAttempts: 1 })
      .start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentDeclined, { reason: 'insufficient_funds' })
      .timeout()
      .expectStatus('FAILED')
      .resume()
      .expectStatus('COMPENSATING')
      .expectCommand(Subjects.InventoryRelease, { orderId: order.orderId, sagaId })
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'insufficient_funds', detail: null }]);
    s.expectHistory('reserveStock:SUCCEEDED', 'chargePayment:FAILED', 'releaseStock:FAILED', 'releaseStock:SUCCEEDED');
    expect(s.state.history[3].note).toBe('resumed by operator');
  });

  it('a compensation with `after` waits for those it names; one given up on holds back only its dependants', () => {
    const steps = placeOrderSaga.steps.map((st) =>
      st.name === 'reserveStock' ? { ...st, compensation: { ...st.compensation!, after: ['refundPayment'] } } : st,
    );
    new Script({ compensationMaxAttempts: 1 }, { ...placeOrderSaga, name: 'Ordered', steps })
      .start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' })
      .local(false)
      .expectCommands(Subjects.PaymentRefund)
      .expectRemaining('refundPayment', 'releaseStock')
      .timeout()
      .expectStatus('FAILED')
      .expectRemaining('refundPayment', 'releaseStock')
      .reply(Subjects.PaymentRefunded, { amount: 2800 })
      .expectStatus('COMPENSATING')
      .expectCommands(Subjects.InventoryRelease)
      .reply(Subjects.InventoryReleased)
      .expectStatus('CANCELLED');
  });

  it('takes the deadline of what the saga waits on from the definition, else the default', () => {
    const steps = [
      { ...placeOrderSaga.steps[0], timeoutMs: 5000, compensation: { ...placeOrderSaga.steps[0].compensation!, timeoutMs: 9000 } },
      placeOrderSaga.steps[1],
    ];
    const s = new Script({ stepTimeoutMs: 30_000 }, { ...placeOrderSaga, name: 'T', steps })
      .start()
      .expectDeadlineIn(5000)
      .reply(Subjects.InventoryReserved)
      .expectDeadlineIn(30_000)
      .reply(Subjects.PaymentDeclined, { reason: 'insufficient_funds' })
      .expectDeadlineIn(9000);
    s.expectStatus('COMPENSATING');
  });

  it('refuses to resume a saga that is not FAILED', () => {
    const s = new Script().start();
    expect(() => s.resume()).toThrow(/only a FAILED saga/);
  });
});

describe('PlaceOrder and the broker', () => {
  it('sends only subjects the order app may publish (AppTopology.order.sends, from which its permissions are generated)', () => {
    const d = placeOrderSaga;
    const sent: string[] = [
      ...d.steps.flatMap((st) => [st.invoke?.(order).subject ?? '', st.compensation?.invoke(order).subject ?? '']),
      d.completed(order).subject,
      d.cancelled(order, { reason: 'out_of_stock', detail: null }).subject,
    ].filter(Boolean);
    expect(sent.filter((s) => !(AppTopology.order.sends as string[]).includes(s))).toEqual([]);
  });
});
