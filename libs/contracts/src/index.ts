import 'reflect-metadata';
export { Headers, Subjects } from './subjects';
export {
  Consumers,
  DLQ_STATE_BUCKET,
  handlesSubject,
  ignoresSubject,
  maxDeliveriesAdvisory,
  Namespace,
  Streams,
  WorkStreams,
} from './topology';
export type { ConsumerSpec, StreamName, StreamSpec } from './topology';
export { AppNames, AppTopology, inboxPrefixOf, operatorIdentity, permissionsFor } from './permissions';
export type { AppName, Identity, NatsPermissions } from './permissions';
export { commandEndpoint, Participants } from './participants';
export type { CommandEndpoint } from './participants';
export { asErrorCode, ErrorCodes } from './error-codes';
export type { ErrorCode } from './error-codes';
export { decodeMessage, isValidated, MalformedMessageError, parseMessage, validateMessage } from './validate';
export { formatMoney, minorDigits } from './money';
export {
  isCanonicalUuid,
  Limits,
  MAX_MINOR_UNITS,
  OrderLine,
  OrderScoped,
  orderTotal,
  SagaScoped,
  StockLine,
  unitsBySku,
} from './messages/common';
export {
  CancelReasons,
  CommandRefused,
  DeadLetterReplayed,
  MAX_REPLAYS,
  OperatorCommand,
  OrderCancelled,
  OrderConfirmed,
  OrderCreated,
  RefusalCodes,
  ReplayDeadLetter,
  ResumeSaga,
  RetrySaga,
  SagaCommand,
  SagaResumed,
  SagaRetried,
} from './messages/order.messages';
export type { CancelReason, RefusalCode } from './messages/order.messages';
export {
  CommitStock,
  ReleaseStock,
  ReservationsQuery,
  ReserveStock,
  RestockSku,
  StockCommitted,
  StockLevel,
  StockQuery,
  StockRejected,
  StockRejectReasons,
  StockReleased,
  StockReserved,
} from './messages/inventory.messages';
export type { ReservationStatus, ReservationView, StockRejectReason } from './messages/inventory.messages';
export {
  AccountBalance,
  AccountQuery,
  ChargePayment,
  ChargesQuery,
  DeclineReasons,
  DepositFunds,
  PaymentCharged,
  PaymentDeclined,
  PaymentRefunded,
  RefundPayment,
} from './messages/payment.messages';
export type { ChargeView, DeclineReason } from './messages/payment.messages';
export { cursorOf, OperatorsQuery, OrderQuery, SagaListQuery, SagaQuery, SagaStatuses, SagaTypesQuery } from './messages/query.messages';
export type {
  OperatorView,
  OrderView,
  PlaceOrderView,
  QueryReply,
  SagaPlanStep,
  SagaStatus,
  SagaStepView,
  SagaSummary,
  SagaTypeView,
  SagaView,
} from './messages/query.messages';
export { MessageTypes, messageTypeOf, QueryTypes } from './messages/registry';
export type { Message, MessageClass, MessageOf, MessageSubject } from './messages/registry';
