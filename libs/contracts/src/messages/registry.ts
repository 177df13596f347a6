import { Subjects } from '../subjects';
import {
  CommandRefused,
  OrderCancelled,
  OrderConfirmed,
  OrderCreated,
  ResumeSaga,
  RetrySaga,
  SagaResumed,
  SagaRetried,
} from './order.messages';
import {
  CommitStock,
  ReleaseStock,
  ReserveStock,
  RestockSku,
  StockCommitted,
  StockLevel,
  StockRejected,
  StockReleased,
  StockReserved,
} from './inventory.messages';
import {
  AccountBalance,
  ChargePayment,
  DepositFunds,
  PaymentCharged,
  PaymentDeclined,
  PaymentRefunded,
  RefundPayment,
} from './payment.messages';

/** The message class of every JetStream subject: what the consume loop (and the CLI, before it publishes) validates a body against. */
export const MessageTypes: Record<string, new () => object> = {
  [Subjects.OrderCreated]: OrderCreated,
  [Subjects.OrderConfirmed]: OrderConfirmed,
  [Subjects.OrderCancelled]: OrderCancelled,
  [Subjects.OrderRetrySaga]: RetrySaga,
  [Subjects.OrderResumeSaga]: ResumeSaga,
  [Subjects.OrderSagaRetried]: SagaRetried,
  [Subjects.OrderSagaResumed]: SagaResumed,
  [Subjects.OrderCommandRefused]: CommandRefused,
  [Subjects.InventoryReserve]: ReserveStock,
  [Subjects.InventoryRelease]: ReleaseStock,
  [Subjects.InventoryCommit]: CommitStock,
  [Subjects.InventoryRestock]: RestockSku,
  [Subjects.InventoryReserved]: StockReserved,
  [Subjects.InventoryRejected]: StockRejected,
  [Subjects.InventoryReleased]: StockReleased,
  [Subjects.InventoryCommitted]: StockCommitted,
  [Subjects.InventoryRestocked]: StockLevel,
  [Subjects.PaymentCharge]: ChargePayment,
  [Subjects.PaymentRefund]: RefundPayment,
  [Subjects.PaymentDeposit]: DepositFunds,
  [Subjects.PaymentCharged]: PaymentCharged,
  [Subjects.PaymentDeclined]: PaymentDeclined,
  [Subjects.PaymentRefunded]: PaymentRefunded,
  [Subjects.PaymentDeposited]: AccountBalance,
};
