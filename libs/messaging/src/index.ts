export {
  ContradictsRecordsError,
  NatsAuthError,
  NotFoundError,
  PermanentError,
  UnavailableError,
  UnexpectedReplyError,
  UnreachableError,
} from './errors';
export { classify } from './failure';
export type { FailureClass } from './failure';
export { causedBy, encodeBody } from './message';
export type { InboundMessage, OutgoingMessage } from './message';
export { deleteNamespaceStreams, isNatsAuthFailure, JetStreamClient, natsConnectProblem, natsServers } from './jetstream.client';
export type { StreamLimits } from './jetstream.client';
export { fingerprintOf } from './dead-letter';
export type { DeadLetterReason } from './dead-letter';
export { ConsumerRunner } from './consumer.runner';
export type { Availability, BatchHandler, RetryPolicy } from './consumer.runner';
