/**
 * The NATS client (nats.js v3: `@nats-io/transport-node`, `/jetstream`, `/kv`, `/services`) as the rest of the
 * codebase sees it: this is the one module that imports `@nats-io/*`, so a client upgrade touches this lib only.
 * Light on purpose (no Nest, no pino): the CLI imports it as `@orderflow/messaging/nats`.
 * Source: nats.js migration guide, https://github.com/nats-io/nats.js/blob/main/migration.md
 */
export {
  AuthorizationError,
  ClosedConnectionError,
  connect,
  createInbox,
  headers,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  UserAuthenticationExpiredError,
} from '@nats-io/transport-node';
export type { Msg, MsgHdrs, NatsConnection, QueuedIterator, Status, Subscription } from '@nats-io/transport-node';
export {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
export type {
  ConsumerConfig,
  ConsumerMessages,
  JetStreamClient as NatsJetStream,
  JetStreamManager,
  JsMsg,
  PubAck,
  StoredMsg,
} from '@nats-io/jetstream';
export { Kvm } from '@nats-io/kv';
export type { KV } from '@nats-io/kv';
export type { Service, ServiceMsg } from '@nats-io/services';

import { JetStreamApiError } from '@nats-io/jetstream';
import { NoRespondersError, RequestError } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { Svcm } from '@nats-io/services';

/** The JetStream API's `err_code` of `e` (nats-server `server/errors.json`), or undefined when `e` is no API error. */
export const apiErrorCode = (e: unknown): number | undefined => (e instanceof JetStreamApiError ? e.code : undefined);

/** True when nobody listens on the subject of a request (nats.js v3: a `RequestError` caused by `NoRespondersError`). */
export const isNoResponders = (e: unknown): boolean => e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders());

/**
 * The NATS service API ("micro", ADR-32) on `nc`. `@nats-io/services`' newest release (3.0.0-25) is built on an
 * earlier nats-core than the transport's 3.4: the connection it is handed is the same interface at run time, the
 * types differ only by package copy.
 */
export const serviceApi = (nc: NatsConnection): Svcm => new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]);
