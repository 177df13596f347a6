import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { EnvConfig, Logger, LOGGER } from '@orderflow/runtime';
import { MalformedMessageError, OrderCreated, Subjects } from '@orderflow/contracts';
import { InboundMessage, PermanentError } from '@orderflow/messaging';
import { Tx } from '@orderflow/persistence';
import { SagaEngine, SagaState, StepResult, Transition } from '../saga/saga.engine';
import { PlaceOrderData, placeOrderSaga } from './place-order.saga';

interface SagaRow {
  id: string;
  order_id: string;
  status: SagaState['status'];
  step: number;
  reason: string | null;
  detail: string | null;
  history: SagaState['history'];
  data: PlaceOrderData;
}

/**
 * Runs PlaceOrder sagas: keeps each saga's state in `orders.sagas` and carries out the engine's effects
 * in the same transaction (commands through the outbox, local steps, the outcome event). One saga row
 * is locked (`FOR UPDATE`) per input, so replies for the same order are applied one at a time.
 */
@Injectable()
export class PlaceOrderOrchestrator {
  private readonly engine = new SagaEngine(placeOrderSaga);

  constructor(private readonly config: EnvConfig, @Inject(LOGGER) private readonly log: Logger) {}

  /**
   * Starts the saga for an `order.created`, unless one exists for its orderId (idempotency key).
   * @throws MalformedMessageError when the order total does not fit in a safe integer.
   */
  async start(tx: Tx, msg: InboundMessage<OrderCreated>): Promise<void> {
    const order = msg.body;
    const total = order.items.reduce((sum, i) => sum + BigInt(i.quantity) * BigInt(i.unitPrice), 0n);
    if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedMessageError(`order ${order.orderId}: total ${total} exceeds ${Number.MAX_SAFE_INTEGER} minor units`);
    const data: PlaceOrderData = { orderId: order.orderId, customerId: order.customerId, currency: order.currency, items: order.items.map((i) => ({ ...i })), total: Number(total) };

    const created = await tx.query(
      `insert into orders (order_id, customer_id, currency, items, total, status) values ($1, $2, $3, $4, $5, 'PENDING')
         on conflict (order_id) do nothing returning 1`,
      [data.orderId, data.customerId, data.currency, JSON.stringify(data.items), data.total],
    );
    if (created.length === 0) {
      this.log.info({ orderId: data.orderId }, 'order.created for an order that already has a saga; ignored');
      return;
    }
    const saga = { id: randomUUID(), order_id: data.orderId, data } as SagaRow;
    this.log.info({ orderId: data.orderId, sagaId: saga.id, total: data.total, currency: data.currency }, 'saga started');
    await this.apply(tx, saga, this.engine.begin(data), msg.messageId, msg.traceparent, true);
  }

  /**
   * Applies a participant's reply to the saga of `body.orderId`.
   * @throws PermanentError when no saga exists for the order (a stray reply: dead-lettered for an operator).
   */
  async onReply(tx: Tx, msg: InboundMessage<{ orderId: string }>): Promise<void> {
    const saga = await this.lock(tx, msg.body.orderId);
    if (!saga) throw new PermanentError(`no saga for order ${msg.body.orderId}`);
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
      this.log.warn({ orderId: saga.order_id, sagaId: saga.id, step: saga.history[saga.history.length - 1]?.name }, 'saga step deadline passed');
      await this.apply(tx, saga, this.engine.onTimeout(stateOf(saga), saga.data, this.config.SAGA_STEP_MAX_ATTEMPTS), saga.id);
    }
    return due.length;
  }

  private lock(tx: Tx, orderId: string): Promise<SagaRow | undefined> {
    return tx.query<SagaRow>('select * from sagas where order_id = $1 for update', [orderId]).then((r) => r[0]);
  }

  /** Carries out a transition's effects (running local steps inline) and stores the resulting state. */
  private async apply(tx: Tx, saga: SagaRow, t: Transition, causationId: string, traceparent?: string, isNew = false): Promise<void> {
    const log = this.log.child({ orderId: saga.order_id, sagaId: saga.id });
    const headers = { correlationId: saga.order_id, sagaId: saga.id, causationId, traceparent };
    for (let effects = t.effects; effects.length > 0; ) {
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
            tx.send({ subject: Subjects.OrderConfirmed, body: { orderId: saga.order_id, customerId: saga.data.customerId, total: saga.data.total, currency: saga.data.currency }, ...headers });
            log.info('saga completed: order confirmed');
            break;
          case 'cancelled':
            await tx.query(`update orders set status = 'CANCELLED', reason = $2, updated_at = now() where order_id = $1`, [saga.order_id, effect.reason]);
            tx.send({ subject: Subjects.OrderCancelled, body: { orderId: saga.order_id, customerId: saga.data.customerId, reason: effect.reason, ...(effect.detail ? { detail: effect.detail } : {}) }, ...headers });
            log.info({ reason: effect.reason, detail: effect.detail }, 'saga cancelled: order cancelled');
            break;
          case 'failed':
            log.error({ error: effect.error }, 'saga FAILED: a compensation did not complete; needs an operator');
            break;
        }
      }
      effects = next;
    }
    await this.save(tx, saga, t, isNew);
  }

  /** Stores the saga's state and its step deadline (set while it waits for a reply). */
  private async save(tx: Tx, saga: SagaRow, t: Transition, isNew: boolean): Promise<void> {
    const s = t.state;
    const deadline = `case when $7::boolean then now() + make_interval(secs => $8::double precision / 1000) end`;
    const params = [saga.id, s.status, s.step, s.reason, s.detail, JSON.stringify(s.history), t.awaitingReply, this.config.SAGA_STEP_TIMEOUT_MS];
    if (isNew) {
      await tx.query(
        `insert into sagas (id, status, step, reason, detail, history, deadline_at, type, order_id, data)
         values ($1, $2, $3, $4, $5, $6, ${deadline}, $9, $10, $11)`,
        [...params, placeOrderSaga.name, saga.order_id, JSON.stringify(saga.data)],
      );
    } else {
      await tx.query(
        `update sagas set status = $2, step = $3, reason = $4, detail = $5, history = $6, deadline_at = ${deadline}, updated_at = now()
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

const stateOf = (r: SagaRow): SagaState => ({ status: r.status, step: r.step, reason: r.reason, detail: r.detail, history: r.history });
