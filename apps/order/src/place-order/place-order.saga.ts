import { randomUUID } from 'node:crypto';
import {
  CancelReason,
  OrderCreated,
  Participants,
  PlaceOrderView,
  OrderLine,
  orderTotal,
  PaymentCharged,
  PaymentDeclined,
  StockRejected,
  StockReserved,
  Subjects,
  unitsBySku,
} from '@orderflow/contracts';
import { IdempotencyKeyReusedError, UnexpectedReplyError } from '@orderflow/messaging';
import type { Tx } from '@orderflow/persistence';
import { SagaDefinition, sagaSteps, StepResult } from '@orderflow/saga';
import { orders } from '../orders/orders.repository';

/** What the PlaceOrder saga carries from step to step: the order as received, its total, and the attempt's id. */
export interface PlaceOrderData {
  /** The saga attempt: participants key their effects on it. */
  sagaId: string;
  orderId: string;
  customerId: string;
  currency: string;
  items: OrderLine[];
  /** Sum of quantity × unitPrice, minor units. */
  total: number;
}

/** The data of a new attempt for `order` (a fresh `sagaId`). */
export const placeOrderData = (order: OrderCreated): PlaceOrderData => ({
  sagaId: randomUUID(),
  orderId: order.orderId,
  customerId: order.customerId,
  currency: order.currency,
  items: order.items.map((i) => ({ ...i })),
  total: Number(orderTotal(order.items)),
});

/**
 * Records the order as PENDING unless it exists (its id is the idempotency key).
 * @returns true for a new order (start its saga), false for the same order received again (nothing to do).
 * @throws IdempotencyKeyReusedError when the order exists with a different body.
 */
export async function acceptOrder(tx: Tx, data: PlaceOrderData): Promise<boolean> {
  if (await orders.insertPending(tx, data)) return true;
  const existing = (await orders.find(tx, data.orderId))!;
  const lines = (items: OrderLine[]) => JSON.stringify(items.map((i) => [i.sku, i.quantity, i.unitPrice]));
  const same =
    existing.customer_id === data.customerId && existing.currency === data.currency && lines(existing.items) === lines(data.items);
  if (!same) throw new IdempotencyKeyReusedError(data.orderId);
  return false;
}

const ok = (): StepResult => ({ ok: true });

/** The reservation must hold exactly the attempt's lines. @throws UnexpectedReplyError otherwise. */
const reserved = (body: StockReserved, d: PlaceOrderData): StepResult => {
  const got = unitsBySku(body.items);
  const wanted = unitsBySku(d.items);
  if (got !== wanted) throw new UnexpectedReplyError(`${Subjects.InventoryReserved} holds ${got}; saga ${d.sagaId} reserved ${wanted}`);
  return ok();
};

/** The charge must be the attempt's amount in its currency. @throws UnexpectedReplyError otherwise. */
const charged = (body: PaymentCharged, d: PlaceOrderData): StepResult => {
  if (body.amount !== d.total || body.currency !== d.currency)
    throw new UnexpectedReplyError(
      `${Subjects.PaymentCharged} of ${body.amount} ${body.currency}; saga ${d.sagaId} charged ${d.total} ${d.currency}`,
    );
  return ok();
};
const rejected = (body: StockRejected | PaymentDeclined): StepResult => ({ ok: false, reason: body.reason, detail: body.detail });

/**
 * "Create the order", the pivot: the pending order becomes a confirmed one. An order that is no longer pending
 * (cancelled by an operator meanwhile) fails the step and the saga compensates.
 */
async function createOrder(tx: Tx, d: PlaceOrderData): Promise<StepResult> {
  return (await orders.confirm(tx, d.orderId))
    ? { ok: true }
    : { ok: false, reason: 'order_not_pending', detail: 'the order was no longer PENDING' };
}

const step = sagaSteps<PlaceOrderData>();
const { inventory, payment } = Participants;

/**
 * PlaceOrder, read top to bottom (docs/architecture.md, "The flow"), step → compensation:
 * 1. reserve stock → release stock (compensatable)
 * 2. charge payment → refund payment (compensatable)
 * 3. create the order (local transaction in the `orders` schema): the pivot
 * 4. commit the reservation: reserved units become sold (retriable, never compensated)
 * Then `order.confirmed`; on any failure before the pivot the compensations of the steps that succeeded run
 * (concurrently), the order is rejected (CANCELLED with the reason) and `order.cancelled` carries the reason.
 * Every command carries the attempt's `sagaId`; every message the saga sends is correlated by the order id.
 */
export const placeOrderSaga: SagaDefinition<PlaceOrderData, PlaceOrderView> = {
  name: 'PlaceOrder',
  key: (d) => d.orderId,
  steps: [
    step.invoke('reserveStock', inventory.reserve, {
      command: (d) => ({ orderId: d.orderId, sagaId: d.sagaId, items: d.items.map(({ sku, quantity }) => ({ sku, quantity })) }),
      onReply: { [Subjects.InventoryReserved]: reserved, [Subjects.InventoryRejected]: rejected },
      compensation: { name: 'releaseStock', command: (d) => ({ orderId: d.orderId, sagaId: d.sagaId }) },
    }),
    step.invoke('chargePayment', payment.charge, {
      command: (d) => ({ orderId: d.orderId, sagaId: d.sagaId, customerId: d.customerId, amount: d.total, currency: d.currency }),
      onReply: { [Subjects.PaymentCharged]: charged, [Subjects.PaymentDeclined]: rejected },
      compensation: { name: 'refundPayment', command: (d) => ({ orderId: d.orderId, sagaId: d.sagaId, customerId: d.customerId }) },
    }),
    step.local('createOrder', createOrder, { pivot: true }),
    step.invoke('commitReservation', inventory.commit, {
      command: (d) => ({ orderId: d.orderId, sagaId: d.sagaId }),
      onReply: { [Subjects.InventoryCommitted]: ok },
    }),
  ],
  completed: (d) => ({
    subject: Subjects.OrderConfirmed,
    body: { orderId: d.orderId, sagaId: d.sagaId, customerId: d.customerId, total: d.total, currency: d.currency },
  }),
  cancelled: (d, why) => ({
    subject: Subjects.OrderCancelled,
    body: {
      orderId: d.orderId,
      sagaId: d.sagaId,
      customerId: d.customerId,
      // A participant's rejection reason or the engine's (`deadline_exceeded`); the consumer validates it against CancelReasons.
      reason: why.reason as CancelReason,
      ...(why.detail ? { detail: why.detail } : {}),
    },
  }),
  // "Reject the order": it is CANCELLED with the saga's reason, in the transaction that publishes order.cancelled.
  onCancelled: async (tx, d, why) => {
    await orders.cancel(tx, d.orderId, why.reason);
  },
  // An operator's retry: the order is PENDING again and will get a new outcome event.
  onRetry: async (tx, d) => {
    await orders.reopen(tx, d.orderId);
  },
  view: (d) => ({ customerId: d.customerId, currency: d.currency, total: d.total, items: d.items }),
};
