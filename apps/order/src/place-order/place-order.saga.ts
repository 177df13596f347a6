import { OrderLine, StockRejected, PaymentDeclined, Subjects } from '@orderflow/contracts';
import { SagaDefinition, StepResult } from '../saga/saga.engine';

/** What the PlaceOrder saga carries from step to step: the order as received, plus its total. */
export interface PlaceOrderData {
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
 * 1. reserve stock → release stock
 * 2. charge payment → refund payment
 * 3. create the order (local transaction in the `orders` schema)
 * Then `order.confirmed`; on any failure the compensations of the steps that succeeded run in reverse
 * and `order.cancelled` carries the reason.
 */
export const placeOrderSaga: SagaDefinition<PlaceOrderData> = {
  name: 'PlaceOrder',
  steps: [
    {
      name: 'reserveStock',
      invoke: (d) => ({ subject: Subjects.InventoryReserve, body: { orderId: d.orderId, items: d.items.map(({ sku, quantity }) => ({ sku, quantity })) } }),
      onReply: { [Subjects.InventoryReserved]: ok, [Subjects.InventoryRejected]: rejected },
      compensation: {
        name: 'releaseStock',
        invoke: (d) => ({ subject: Subjects.InventoryRelease, body: { orderId: d.orderId } }),
        replies: [Subjects.InventoryReleased],
      },
    },
    {
      name: 'chargePayment',
      invoke: (d) => ({ subject: Subjects.PaymentCharge, body: { orderId: d.orderId, customerId: d.customerId, amount: d.total, currency: d.currency } }),
      onReply: { [Subjects.PaymentCharged]: ok, [Subjects.PaymentDeclined]: rejected },
      compensation: {
        name: 'refundPayment',
        invoke: (d) => ({ subject: Subjects.PaymentRefund, body: { orderId: d.orderId, customerId: d.customerId } }),
        replies: [Subjects.PaymentRefunded],
      },
    },
    { name: 'createOrder', local: true },
  ],
};
