import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EnvConfig, Logger, LOGGER } from '@orderflow/runtime';
import { CommandRefused, OperatorCommand, OrderCreated, orderTotal, SagaResumed, SagaRetried, Subjects } from '@orderflow/contracts';
import { InboundMessage, PermanentError } from '@orderflow/messaging';
import { Tx } from '@orderflow/persistence';
import { SagaEngine, SagaState, StepResult, Transition } from '../saga/saga.engine';
import { PlaceOrderData, placeOrderSaga } from './place-order.saga';

/** A row of `orders.sagas`: one attempt of the saga of an order. */
export interface SagaRow {
  id: string;
  type: string;
  order_id: string;
  attempt: number;
  retry_of: string | null;
  status: SagaState['status'];
  step: number;
  reason: string | null;
  detail: string | null;
  history: SagaState['history'];
  data: PlaceOrderData;
  created_at: Date;
  updated_at: Date;
}

/** The answer to an operator command: the event to publish, or why it was refused. */
export type OperatorOutcome =
  | { done: true; subject: typeof Subjects.OrderSagaRetried; body: SagaRetried }
  | { done: true; subject: typeof Subjects.OrderSagaResumed; body: SagaResumed }
  | { done: false; body: CommandRefused };

/**
 * Runs PlaceOrder sagas: keeps each attempt's state in `orders.sagas` and carries out the engine's effects
 * in the same transaction (commands through the outbox, local steps, the outcome event). One saga row
 * is locked (`FOR UPDATE`) per input, so replies for the same attempt are applied one at a time. Replies
 * are routed by their `Saga-Id` header (the order's newest attempt for a reply without one).
 */
@Injectable()
export class PlaceOrderOrchestrator {
  readonly engine: SagaEngine<PlaceOrderData>;

  constructor(
    config: EnvConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.engine = new SagaEngine(placeOrderSaga, {
      stepTimeoutMs: config.SAGA_STEP_TIMEOUT_MS,
      stepMaxAttempts: config.SAGA_STEP_MAX_ATTEMPTS,
      compensationMaxAttempts: config.SAGA_COMPENSATION_MAX_ATTEMPTS,
      compensationBackoffMaxMs: config.SAGA_COMPENSATION_BACKOFF_MAX_MS,
    });
  }

  /**
   * Starts the saga for an `order.created`, unless the order exists (its id is the idempotency key).
   * @throws PermanentError `idempotency_key_reused` when the order exists with a different body.
   */
  async start(tx: Tx, msg: InboundMessage<OrderCreated>): Promise<void> {
    const order = msg.body;
    const sagaId = randomUUID();
    const data: PlaceOrderData = {
      sagaId,
      orderId: order.orderId,
      customerId: order.customerId,
      currency: order.currency,
      items: order.items.map((i) => ({ ...i })),
      total: Number(orderTotal(order.items)),
    };

    const created = await tx.query(
      `insert into orders (order_id, customer_id, currency, items, total, status) values ($1, $2, $3, $4, $5, 'PENDING')
         on conflict (order_id) do nothing returning 1`,
      [data.orderId, data.customerId, data.currency, JSON.stringify(data.items), data.total],
    );
    if (created.length === 0) {
      const [existing] = await tx.query<{ customer_id: string; currency: string; items: PlaceOrderData['items'] }>(
        'select customer_id, currency, items from orders where order_id = $1',
        [data.orderId],
      );
      const lines = (items: PlaceOrderData['items']) => JSON.stringify(items.map((i) => [i.sku, i.quantity, i.unitPrice]));
      const same =
        existing.customer_id === data.customerId && existing.currency === data.currency && lines(existing.items) === lines(data.items);
      if (!same) throw new PermanentError(`idempotency_key_reused: order ${data.orderId} already exists with a different body`);
      this.log.info({ orderId: data.orderId }, 'order.created for an order that already has a saga; ignored');
      return;
    }
    const saga = { id: sagaId, order_id: data.orderId, attempt: 1, retry_of: null, data } as SagaRow;
    this.log.info({ orderId: data.orderId, sagaId, total: data.total, currency: data.currency }, 'saga started');
    await this.apply(tx, saga, this.engine.begin(data), msg.messageId, msg.traceparent, true);
  }

  /**
   * Applies a participant's reply to the saga attempt named by its `Saga-Id` header.
   * @throws PermanentError when there is no such saga (a stray reply: dead-lettered for an operator).
   */
  async onReply(tx: Tx, msg: InboundMessage<{ orderId: string }>): Promise<void> {
    const saga = msg.sagaId ? await this.lock(tx, msg.sagaId) : await this.lockNewest(tx, msg.body.orderId);
    if (!saga || saga.order_id !== msg.body.orderId)
      throw new PermanentError(`no saga ${msg.sagaId ?? '(no Saga-Id header)'} for order ${msg.body.orderId}`);
    const t = this.engine.onReply(stateOf(saga), saga.data, msg.subject, msg.body);
    if (t.ignored) {
      this.log.debug({ orderId: saga.order_id, sagaId: saga.id, subject: msg.subject }, 'reply ignored: not for the current step');
      return;
    }
    await this.apply(tx, saga, t, msg.messageId, msg.traceparent);
  }

  /** Handles sagas whose step deadline passed; returns how many. Rows locked by others are skipped. */
  async onDeadlines(tx: Tx, limit = 100): Promise<number> {
    const due = await tx.query<SagaRow>(
      `select * from sagas where deadline_at <= now() order by deadline_at limit $1 for update skip locked`,
      [limit],
    );
    for (const saga of due) {
      this.log.warn({ orderId: saga.order_id, sagaId: saga.id, steps: this.engine.current(stateOf(saga)) }, 'saga step deadline passed');
      await this.apply(tx, saga, this.engine.onTimeout(stateOf(saga), saga.data), saga.id);
    }
    return due.length;
  }

  /**
   * `order.cmd.retry-saga`: a new attempt, from the first step, of the order's newest attempt when it is
   * CANCELLED. The order goes back to PENDING and will get a new outcome event. Recorded in `operator_actions`.
   */
  async retry(tx: Tx, cmd: OperatorCommand, commandId: string): Promise<OperatorOutcome> {
    const saga = await this.lock(tx, cmd.sagaId);
    const refused = saga ? await this.refusal(tx, saga, 'CANCELLED') : `no saga ${cmd.sagaId}`;
    if (refused || !saga) return { done: false, body: { sagaId: cmd.sagaId, reason: refused! } };

    const next = {
      id: randomUUID(),
      order_id: saga.order_id,
      attempt: saga.attempt + 1,
      retry_of: saga.id,
      data: { ...saga.data },
    } as SagaRow;
    next.data.sagaId = next.id;
    await tx.query(`update orders set status = 'PENDING', reason = null, updated_at = now() where order_id = $1`, [saga.order_id]);
    this.log.info(
      { orderId: saga.order_id, sagaId: next.id, retryOf: saga.id, attempt: next.attempt, operator: cmd.operator },
      'saga retried by an operator: new attempt',
    );
    await this.apply(tx, next, this.engine.begin(next.data), commandId, undefined, true);
    await this.audit(tx, commandId, 'retry', cmd, next.id);
    return {
      done: true,
      subject: Subjects.OrderSagaRetried,
      body: { sagaId: saga.id, orderId: saga.order_id, newSagaId: next.id, attempt: next.attempt },
    };
  }

  /**
   * `order.cmd.resume-saga`: a FAILED attempt sends the step it gave up on again and carries on from there.
   * Recorded in `operator_actions`.
   */
  async resume(tx: Tx, cmd: OperatorCommand, commandId: string): Promise<OperatorOutcome> {
    const saga = await this.lock(tx, cmd.sagaId);
    const refused = saga ? await this.refusal(tx, saga, 'FAILED') : `no saga ${cmd.sagaId}`;
    if (refused || !saga) return { done: false, body: { sagaId: cmd.sagaId, reason: refused! } };

    const t = this.engine.resume(stateOf(saga), saga.data);
    const step = this.engine.current(t.state).join(', ');
    this.log.info({ orderId: saga.order_id, sagaId: saga.id, step, operator: cmd.operator }, 'saga resumed by an operator');
    await this.apply(tx, saga, t, commandId);
    await this.audit(tx, commandId, 'resume', cmd, null);
    return { done: true, subject: Subjects.OrderSagaResumed, body: { sagaId: saga.id, orderId: saga.order_id, step } };
  }

  /** Why an operator may not act on `saga` (which must be in `wanted`), or null. */
  private async refusal(tx: Tx, saga: SagaRow, wanted: 'CANCELLED' | 'FAILED'): Promise<string | null> {
    if (saga.status !== wanted) {
      const hint =
        saga.status === 'FAILED'
          ? ': resume it instead (orderflow saga resume)'
          : saga.status === 'CANCELLED'
            ? ': retry it instead (orderflow saga retry)'
            : '';
      return `saga ${saga.id} is ${saga.status}, not ${wanted}${hint}`;
    }
    const newest = await this.newest(tx, saga.order_id);
    if (newest && newest.id !== saga.id)
      return `saga ${saga.id} is attempt ${saga.attempt}; the order's newest attempt is ${newest.attempt} (${newest.id}, ${newest.status})`;
    return null;
  }

  private audit(tx: Tx, commandId: string, action: 'retry' | 'resume', cmd: OperatorCommand, newSagaId: string | null) {
    return tx.query('insert into operator_actions (id, action, saga_id, new_saga_id, operator, why) values ($1, $2, $3, $4, $5, $6)', [
      commandId,
      action,
      cmd.sagaId,
      newSagaId,
      cmd.operator,
      cmd.why,
    ]);
  }

  private lock(tx: Tx, sagaId: string): Promise<SagaRow | undefined> {
    return tx.query<SagaRow>('select * from sagas where id = $1 for update', [sagaId]).then((r) => r[0]);
  }

  private lockNewest(tx: Tx, orderId: string): Promise<SagaRow | undefined> {
    return tx
      .query<SagaRow>('select * from sagas where order_id = $1 order by attempt desc limit 1 for update', [orderId])
      .then((r) => r[0]);
  }

  private newest(tx: Tx, orderId: string): Promise<Pick<SagaRow, 'id' | 'attempt' | 'status'> | undefined> {
    return tx.query('select id, attempt, status from sagas where order_id = $1 order by attempt desc limit 1', [orderId]).then((r) => r[0]);
  }

  /** Carries out a transition's effects (running local steps inline) and stores the resulting state. */
  private async apply(tx: Tx, saga: SagaRow, t: Transition, causationId: string, traceparent?: string, isNew = false): Promise<void> {
    const log = this.log.child({ orderId: saga.order_id, sagaId: saga.id });
    const headers = { correlationId: saga.order_id, sagaId: saga.id, causationId, traceparent };
    const outcome = { orderId: saga.order_id, sagaId: saga.id, customerId: saga.data.customerId };
    for (let effects = t.effects; effects.length > 0;) {
      const next: typeof effects = [];
      for (const effect of effects) {
        switch (effect.type) {
          case 'send':
            tx.send({ ...effect.command, ...headers });
            break;
          case 'runLocal': {
            t = this.engine.onLocalResult(t.state, saga.data, await this.runLocal(tx, effect.step, saga.data));
            next.push(...t.effects);
            break;
          }
          case 'completed':
            tx.send({
              subject: Subjects.OrderConfirmed,
              body: { ...outcome, total: saga.data.total, currency: saga.data.currency },
              ...headers,
            });
            log.info('saga completed: order confirmed');
            break;
          case 'cancelled':
            await tx.query(`update orders set status = 'CANCELLED', reason = $2, updated_at = now() where order_id = $1`, [
              saga.order_id,
              effect.reason,
            ]);
            tx.send({
              subject: Subjects.OrderCancelled,
              body: { ...outcome, reason: effect.reason, ...(effect.detail ? { detail: effect.detail } : {}) },
              ...headers,
            });
            log.info({ reason: effect.reason, detail: effect.detail }, 'saga cancelled: order cancelled');
            break;
          case 'failed':
            log.error({ error: effect.error }, 'saga FAILED: a step that must finish did not; needs an operator (orderflow saga resume)');
            break;
        }
      }
      effects = next;
    }
    await this.save(tx, saga, t, isNew);
  }

  /** Stores the saga's state and its next deadline (the earliest of what it waits on; null when it waits on nothing). */
  private async save(tx: Tx, saga: SagaRow, t: Transition, isNew: boolean): Promise<void> {
    const s = t.state;
    const params = [saga.id, s.status, s.step, s.reason, s.detail, JSON.stringify(s.history), this.engine.deadlineOf(s)];
    if (isNew) {
      await tx.query(
        `insert into sagas (id, status, step, reason, detail, history, deadline_at, type, order_id, data, attempt, retry_of)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [...params, placeOrderSaga.name, saga.order_id, JSON.stringify(saga.data), saga.attempt, saga.retry_of],
      );
    } else {
      await tx.query(
        `update sagas set status = $2, step = $3, reason = $4, detail = $5, history = $6, deadline_at = $7, updated_at = now()
         where id = $1`,
        params,
      );
    }
  }

  /** The saga's local steps, run in its transaction. */
  private async runLocal(tx: Tx, step: string, data: PlaceOrderData): Promise<StepResult> {
    if (step !== 'createOrder') throw new Error(`unknown local step ${step}`);
    // "Create the order": the pending order becomes a confirmed one; an order that is no longer pending
    // (cancelled by an operator meanwhile) fails the step and the saga compensates.
    const rows = await tx.query(
      `update orders set status = 'CONFIRMED', updated_at = now() where order_id = $1 and status = 'PENDING' returning 1`,
      [data.orderId],
    );
    return rows.length === 1 ? { ok: true } : { ok: false, reason: 'order_not_pending', detail: 'the order was no longer PENDING' };
  }
}

export const stateOf = (r: SagaRow): SagaState => ({
  status: r.status,
  step: r.step,
  reason: r.reason,
  detail: r.detail,
  history: r.history,
});
