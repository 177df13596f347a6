export {
  ContradictsRecordsError,
  IdempotencyKeyReusedError,
  NatsAuthError,
  NotFoundError,
  PermanentError,
  TopologyMissingError,
  UnavailableError,
  UnexpectedReplyError,
  UnreachableError,
} from './errors';
export { classify, errorCode, sqlState } from './failure';
export type { FailureClass } from './failure';
export { causedBy, encodeBody } from './message';
export type { InboundMessage, MessagePublisher, OutgoingMessage } from './message';
export {
  deleteNamespaceStreams,
  isNatsAuthFailure,
  JetStreamClient,
  natsAuthOptions,
  natsConnectProblem,
  natsServers,
  provisionTopology,
  publishRefusal,
} from './jetstream.client';
export type { NatsCredentials, ProvisionOptions, StreamLimits } from './jetstream.client';
export { fingerprintOf, originalIdOf, readDeadLetter } from './dead-letter';
export type { DeadLetterReason, StoredDeadLetter } from './dead-letter';
export { ConsumerRunner } from './consumer.runner';
export { PubAcks } from './pub-acks';
export { checkSignature, signatureHeaders, signMessage, verifySignature } from './signature';
export type { Signature, SignatureCheck } from './signature';
export type { Availability, BatchHandler, RetryPolicy } from './consumer.runner';
