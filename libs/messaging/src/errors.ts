import type { ErrorCode } from '@orderflow/contracts';
export { MalformedMessageError } from '@orderflow/contracts';

/**
 * A failure that retrying cannot fix (e.g. a message that refers to something that will never exist).
 * The consume loop dead-letters it at once instead of redelivering. Business rejections are not errors:
 * they are reply events (docs/architecture.md, "The flow"). Its `code` (and its subclasses') goes on the dead letter as
 * `Dlq-Error-Code`; the subclasses' messages also start with it.
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
  readonly code: ErrorCode = 'permanent';
}

/** An `order.created` whose order id belongs to an order with a different body: dead-lettered, never a second saga. */
export class IdempotencyKeyReusedError extends PermanentError {
  override name = 'IdempotencyKeyReusedError';
  override readonly code = 'idempotency_key_reused';

  constructor(orderId: string) {
    super(`idempotency_key_reused: order ${orderId} already exists with a different body`);
  }
}

/**
 * A reply that contradicts the command the saga sent (another amount, currency, lines or attempt): it changes
 * nothing and is dead-lettered at once.
 */
export class UnexpectedReplyError extends PermanentError {
  override name = 'UnexpectedReplyError';
  override readonly code = 'unexpected_reply';

  constructor(what: string) {
    super(`unexpected_reply: ${what}`);
  }
}

/**
 * A command that contradicts the participant's own records (a release of another order's reservation, a refund for
 * another customer, a repeated charge with another amount): refused, never applied, dead-lettered at once.
 */
export class ContradictsRecordsError extends PermanentError {
  override name = 'ContradictsRecordsError';
  override readonly code = 'contradicts_records';

  constructor(what: string) {
    super(`contradicts_records: ${what}`);
  }
}

/** NATS or Postgres did not answer at start-up. The message names the URL. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
  readonly code: ErrorCode = 'unreachable';
}

/** A stream or durable consumer the app needs does not exist: `orderflow setup` provisions them (apps never create them). */
export class TopologyMissingError extends Error {
  override name = 'TopologyMissingError';
  readonly code: ErrorCode = 'topology_missing';
}

/** NATS answered but refused the credentials (authorization violation). The message names the URL. */
export class NatsAuthError extends Error {
  override name = 'NatsAuthError';
  readonly code: ErrorCode = 'nats_auth';
}

/**
 * The database (or another dependency) cannot be reached right now — e.g. its circuit breaker is open. Not a
 * delivery attempt: the consume loop keeps such messages and waits, it never naks or dead-letters them.
 */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  readonly code: ErrorCode = 'unavailable';
}

/** Thrown by a query handler when the thing asked for does not exist; answered as `{"ok":false,"error":{"code":"not_found"}}`. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  readonly code: ErrorCode = 'not_found';
}
