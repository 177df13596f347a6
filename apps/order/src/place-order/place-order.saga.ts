import { OrderLine, StockRejected, PaymentDeclined, Subjects } from '@orderflow/contracts';
import { SagaDefinition, StepResult } from '../saga/saga.engine';

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

const ok = (): StepResult => ({ ok: true });
const rejected = (body: StockRejected | PaymentDeclined): StepResult => ({ ok: false, reason: body.reason, detail: body.detail });

/**
 * PlaceOrder, read top to bottom (DESIGN.md "The flow"), step → compensation:
 * 1. reserve stock → release stock (compensatable)
 * 2. charge payment → refund payment (compensatable)
 * 3. create the order (local transaction in the `orders` schema): the pivot
 * 4. commit the reservation: reserved units become sold (retriable, never compensated)
 * Then `order.confirmed`; on any failure before the pivot the compensations of the steps that succeeded
 * run in reverse and `order.cancelled` carries the reason. Every command carries the attempt's `sagaId`.
 */
export const placeOrderSaga: SagaDefinition<PlaceOrderData> = {
  name: 'PlaceOrder',
  steps: [
    {
      name: 'reserveStock',
      invoke: (d) => ({
        subject: Subjects.InventoryReserve,
        body: { orderId: d.orderId, sagaId: d.sagaId, items: d.items.map(({ sku, quantity }) => ({ sku, quantity })) },
      }),
      onReply: { [Subjects.InventoryReserved]: ok, [Subjects.InventoryRejected]: rejected },
      compensation: {
        name: 'releaseStock',
        invoke: (d) => ({ subject: Subjects.InventoryRelease, body: { orderId: d.orderId, sagaId: d.sagaId } }),
        replies: [Subjects.InventoryReleased],
      },
    },
    {
      name: 'chargePayment',
      invoke: (d) => ({
        subject: Subjects.PaymentCharge,
        body: { orderId: d.orderId, sagaId: d.sagaId, customerId: d.customerId, amount: d.total, currency: d.currency },
      }),
      onReply: { [Subjects.PaymentCharged]: ok, [Subjects.PaymentDeclined]: rejected },
      compensation: {
        name: 'refundPayment',
        invoke: (d) => ({ subject: Subjects.PaymentRefund, body: { orderId: d.orderId, sagaId: d.sagaId, customerId: d.customerId } }),
        replies: [Subjects.PaymentRefunded],
      },
    },
    { name: 'createOrder', local: true, pivot: true },
    {
      name: 'commitReservation',
      invoke: (d) => ({ subject: Subjects.InventoryCommit, body: { orderId: d.orderId, sagaId: d.sagaId } }),
      onReply: { [Subjects.InventoryCommitted]: ok },
    },
  ],
};
