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
import { OrderQuery, SagaListQuery, SagaQuery } from './query.messages';
import {
  CommitStock,
  ReleaseStock,
  ReserveStock,
  ReservationsQuery,
  RestockSku,
  StockQuery,
  StockCommitted,
  StockLevel,
  StockRejected,
  StockReleased,
  StockReserved,
} from './inventory.messages';
import {
  AccountBalance,
  AccountQuery,
  ChargePayment,
  ChargesQuery,
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

/** The request class of every query subject (NATS service endpoints): what a query is validated against. */
export const QueryTypes: Record<string, new () => object> = {
  [Subjects.QueryOrder]: OrderQuery,
  [Subjects.QuerySaga]: SagaQuery,
  [Subjects.QuerySagas]: SagaListQuery,
  [Subjects.QueryStock]: StockQuery,
  [Subjects.QueryReservations]: ReservationsQuery,
  [Subjects.QueryAccount]: AccountQuery,
  [Subjects.QueryCharges]: ChargesQuery,
};
