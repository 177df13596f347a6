import { Subjects } from '@orderflow/contracts';
import { SagaEngine, SagaState, STEP_TIMEOUT, Transition } from '../saga/saga.engine';
import { PlaceOrderData, placeOrderSaga } from './place-order.saga';

const order: PlaceOrderData = {
  sagaId: '0d6f4c8e-6a1b-4f7e-9b55-3c2a1d0e0001',
  orderId: '5b0c1a52-6f0e-4a55-9a53-0d7d1c7c0001',
  customerId: 'alice',
  currency: 'USD',
  items: [{ sku: 'BOOK', quantity: 2, unitPrice: 1250 }, { sku: 'PEN', quantity: 1, unitPrice: 300 }],
  total: 2800,
};

/** A saga test that reads as a script: given a state, expect a command; given a reply, expect the next. */
class Script {
  private readonly engine = new SagaEngine(placeOrderSaga, () => new Date('2026-11-22T10:00:00Z'));
  last!: Transition;
  get state(): SagaState {
    return this.last.state;
  }

  start() {
    this.last = this.engine.begin(order);
    return this;
  }
  reply(subject: string, body: object = {}) {
    this.last = this.engine.onReply(this.state, order, subject, { orderId: order.orderId, ...body });
    return this;
  }
  local(ok: boolean, reason = 'order_not_pending') {
    this.last = this.engine.onLocalResult(this.state, order, ok ? { ok: true } : { ok: false, reason });
    return this;
  }
  timeout(maxAttempts = 3) {
    this.last = this.engine.onTimeout(this.state, order, maxAttempts);
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
    expect(this.last.awaitingReply).toBe(true);
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
      .start().expectStatus('RUNNING')
      .expectCommand(Subjects.InventoryReserve, { orderId: order.orderId, sagaId, items: [{ sku: 'BOOK', quantity: 2 }, { sku: 'PEN', quantity: 1 }] })
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
    s.expectStatus('COMPLETED').expectHistory('reserveStock:SUCCEEDED', 'chargePayment:SUCCEEDED', 'createOrder:SUCCEEDED', 'commitReservation:SUCCEEDED');
  });

  it('after the pivot a step without reply is re-sent, never compensated; out of sends the saga is FAILED and its late reply completes it', () => {
    const s = new Script().start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' })
      .local(true)
      .timeout(2).expectCommand(Subjects.InventoryCommit)
      .timeout(2);
    s.expectStatus('FAILED').expectRemaining('commitReservation');
    expect(s.last.effects).toEqual([{ type: 'failed', error: 'retriable step commitReservation failed: no reply after 2 attempt(s)' }]);
    s.reply(Subjects.InventoryCommitted);
    expect(s.last.effects).toEqual([{ type: 'completed' }]);
    s.expectStatus('COMPLETED');
    expect(s.state.history[3]).toMatchObject({ name: 'commitReservation', status: 'SUCCEEDED', note: expect.stringMatching(/late reply .* after the saga had FAILED/) });
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
    const s = new Script().start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentDeclined, { reason: 'insufficient_funds' })
      .expectStatus('COMPENSATING')
      .expectCommand(Subjects.InventoryRelease, { orderId: order.orderId, sagaId })
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'insufficient_funds', detail: null }]);
    s.expectStatus('CANCELLED').expectHistory('reserveStock:SUCCEEDED', 'chargePayment:FAILED', 'releaseStock:SUCCEEDED');
  });

  it('order-creation failure: refund, then release (reverse order), then cancelled', () => {
    const s = new Script().start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' })
      .local(false, 'order_not_pending')
      .expectStatus('COMPENSATING')
      .expectCommand(Subjects.PaymentRefund, { orderId: order.orderId, sagaId, customerId: 'alice' })
      .reply(Subjects.PaymentRefunded, { amount: 2800 })
      .expectCommand(Subjects.InventoryRelease, { orderId: order.orderId, sagaId })
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'order_not_pending', detail: null }]);
    s.expectStatus('CANCELLED').expectHistory(
      'reserveStock:SUCCEEDED', 'chargePayment:SUCCEEDED', 'createOrder:FAILED', 'refundPayment:SUCCEEDED', 'releaseStock:SUCCEEDED',
    );
  });

  it('ignores a reply that does not belong to the current step (duplicate or stale)', () => {
    const s = new Script().start().reply(Subjects.InventoryReserved);
    const before = s.state;
    s.reply(Subjects.InventoryReserved);
    expect(s.last.ignored).toBe(true);
    expect(s.last.effects).toEqual([]);
    expect(s.state).toBe(before);
  });

  it('a step without reply is sent again on its deadline, then failed and compensated (itself included)', () => {
    const s = new Script().start().reply(Subjects.InventoryReserved)
      .timeout(2).expectCommand(Subjects.PaymentCharge)
      .expectStatus('RUNNING')
      .timeout(2)
      .expectStatus('COMPENSATING')
      // The charge may have been applied without us hearing back: refund it first.
      .expectCommand(Subjects.PaymentRefund)
      .reply(Subjects.PaymentRefunded, { amount: 0 })
      .expectCommand(Subjects.InventoryRelease)
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: STEP_TIMEOUT, detail: 'chargePayment: no reply after 2 attempt(s)' }]);
  });

  it('a compensation that never answers leaves the saga FAILED, not silently done', () => {
    const s = new Script().start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentDeclined, { reason: 'unknown_customer' })
      .expectCommand(Subjects.InventoryRelease)
      .timeout(1);
    s.expectStatus('FAILED').expectHistory('reserveStock:SUCCEEDED', 'chargePayment:FAILED', 'releaseStock:FAILED');
    expect(s.last.effects).toEqual([{ type: 'failed', error: 'compensation releaseStock failed: no reply after 1 attempt(s)' }]);
  });

  it('a FAILED saga that receives the reply of the compensation it gave up on resumes and compensates to the end', () => {
    const s = new Script().start()
      .reply(Subjects.InventoryReserved)
      .timeout(1) // the charge: out of sends → compensate it
      .expectCommand(Subjects.PaymentRefund)
      .timeout(1) // the refund: out of sends → FAILED
      .expectStatus('FAILED')
      .expectRemaining('refundPayment', 'releaseStock');
    // Replies to other steps (the charge that finally went through) change nothing.
    s.reply(Subjects.PaymentCharged, { amount: 2800, currency: 'USD' });
    expect(s.last.ignored).toBe(true);
    s.reply(Subjects.PaymentRefunded, { amount: 2800 })
      .expectStatus('COMPENSATING')
      .expectCommand(Subjects.InventoryRelease, { orderId: order.orderId, sagaId })
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: STEP_TIMEOUT, detail: 'chargePayment: no reply after 1 attempt(s)' }]);
    s.expectHistory('reserveStock:SUCCEEDED', 'chargePayment:FAILED', 'refundPayment:SUCCEEDED', 'releaseStock:SUCCEEDED');
    expect(s.state.history[2].note).toMatch(/late reply payment.evt.refunded after the saga had FAILED: resumed/);
  });

  it('an operator resume sends the given-up compensation again as a new execution, then compensates on', () => {
    const s = new Script().start()
      .reply(Subjects.InventoryReserved)
      .reply(Subjects.PaymentDeclined, { reason: 'insufficient_funds' })
      .timeout(1)
      .expectStatus('FAILED')
      .resume()
      .expectStatus('COMPENSATING')
      .expectCommand(Subjects.InventoryRelease, { orderId: order.orderId, sagaId })
      .reply(Subjects.InventoryReleased);
    expect(s.last.effects).toEqual([{ type: 'cancelled', reason: 'insufficient_funds', detail: null }]);
    s.expectHistory('reserveStock:SUCCEEDED', 'chargePayment:FAILED', 'releaseStock:FAILED', 'releaseStock:SUCCEEDED');
    expect(s.state.history[3].note).toBe('resumed by operator');
  });

  it('takes the deadline of what the saga waits on from the definition, else the default', () => {
    const engine = new SagaEngine({ name: 'T', steps: [{ ...placeOrderSaga.steps[0], timeoutMs: 5000, compensation: { ...placeOrderSaga.steps[0].compensation!, timeoutMs: 9000 } }, placeOrderSaga.steps[1]] });
    const started = engine.begin(order);
    expect(engine.timeoutOf(started.state, 30000)).toBe(5000);
    const charging = engine.onReply(started.state, order, Subjects.InventoryReserved, {});
    expect(engine.timeoutOf(charging.state, 30000)).toBe(30000);
    const compensating = engine.onReply(charging.state, order, Subjects.PaymentDeclined, { reason: 'insufficient_funds' });
    expect(engine.timeoutOf(compensating.state, 30000)).toBe(9000);
  });

  it('refuses to resume a saga that is not FAILED', () => {
    const s = new Script().start();
    expect(() => s.resume()).toThrow(/only a FAILED saga/);
  });
});
