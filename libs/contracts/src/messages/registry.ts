import { Subjects } from '../subjects';
import {
  CommandRefused,
  DeadLetterReplayed,
  OrderCancelled,
  OrderConfirmed,
  OrderCreated,
  ReplayDeadLetter,
  ResumeSaga,
  RetrySaga,
  SagaResumed,
  SagaRetried,
} from './order.messages';
import { OperatorsQuery, OrderQuery, SagaListQuery, SagaQuery, SagaTypesQuery } from './query.messages';
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

/** A message class: class-validator decorated, no constructor arguments. */
export type MessageClass = new () => object;

/**
 * The message class of every JetStream subject: the one place a message is declared. It drives the validation of
 * every body (the consume loop, and the CLI before it publishes), the subjects a consumer may handle
 * (`ConsumerSpec.handles`), the body type of `reply(subject, body)` and of the saga definitions' commands and
 * replies: a subject without an entry here is a compile error wherever a message is sent or handled.
 */
export const MessageTypes = {
  [Subjects.OrderCreated]: OrderCreated,
  [Subjects.OrderConfirmed]: OrderConfirmed,
  [Subjects.OrderCancelled]: OrderCancelled,
  [Subjects.OrderRetrySaga]: RetrySaga,
  [Subjects.OrderResumeSaga]: ResumeSaga,
  [Subjects.OrderReplayDeadLetter]: ReplayDeadLetter,
  [Subjects.OrderDeadLetterReplayed]: DeadLetterReplayed,
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
} as const satisfies Record<string, MessageClass>;

/** A subject that carries a message (has an entry in `MessageTypes`). */
export type MessageSubject = keyof typeof MessageTypes;

/** The body type of the messages on `S`: `MessageOf<'inventory.cmd.reserve'>` is `ReserveStock`. */
export type MessageOf<S extends MessageSubject> = InstanceType<(typeof MessageTypes)[S]>;

/** A subject with its body, checked against each other: `{ subject: 'payment.cmd.charge', body: ChargePayment }`. */
export type Message<S extends MessageSubject = MessageSubject> = { [K in S]: { subject: K; body: MessageOf<K> } }[S];

/** The message class of a subject known only at run time (a received message, a dead letter), or undefined. */
export const messageTypeOf = (subject: string): MessageClass | undefined =>
  Object.hasOwn(MessageTypes, subject) ? MessageTypes[subject as MessageSubject] : undefined;

/** The request class of every query subject (NATS service endpoints): what a query is validated against. */
export const QueryTypes: Record<string, MessageClass> = {
  [Subjects.QueryOrder]: OrderQuery,
  [Subjects.QuerySaga]: SagaQuery,
  [Subjects.QuerySagas]: SagaListQuery,
  [Subjects.QueryOperators]: OperatorsQuery,
  [Subjects.QuerySagaTypes]: SagaTypesQuery,
  [Subjects.QueryStock]: StockQuery,
  [Subjects.QueryReservations]: ReservationsQuery,
  [Subjects.QueryAccount]: AccountQuery,
  [Subjects.QueryCharges]: ChargesQuery,
};
