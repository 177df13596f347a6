import { Subjects } from '../subjects';
import { OrderCancelled, OrderConfirmed, OrderCreated } from './order.messages';
import { ReleaseStock, ReserveStock, RestockSku, StockLevel, StockRejected, StockReleased, StockReserved } from './inventory.messages';
import { AccountBalance, ChargePayment, DepositFunds, PaymentCharged, PaymentDeclined, PaymentRefunded, RefundPayment } from './payment.messages';

/** The message class of every JetStream subject: what the consume loop validates a body against. */
export const MessageTypes: Record<string, new () => object> = {
  [Subjects.OrderCreated]: OrderCreated,
  [Subjects.OrderConfirmed]: OrderConfirmed,
  [Subjects.OrderCancelled]: OrderCancelled,
  [Subjects.InventoryReserve]: ReserveStock,
  [Subjects.InventoryRelease]: ReleaseStock,
  [Subjects.InventoryRestock]: RestockSku,
  [Subjects.InventoryReserved]: StockReserved,
  [Subjects.InventoryRejected]: StockRejected,
  [Subjects.InventoryReleased]: StockReleased,
  [Subjects.InventoryRestocked]: StockLevel,
  [Subjects.PaymentCharge]: ChargePayment,
  [Subjects.PaymentRefund]: RefundPayment,
  [Subjects.PaymentDeposit]: DepositFunds,
  [Subjects.PaymentCharged]: PaymentCharged,
  [Subjects.PaymentDeclined]: PaymentDeclined,
  [Subjects.PaymentRefunded]: PaymentRefunded,
  [Subjects.PaymentDeposited]: AccountBalance,
};
