export { MalformedMessageError } from '@orderflow/contracts';

/**
 * A failure that retrying cannot fix (e.g. a message that refers to something that will never exist).
 * The consume loop dead-letters it at once instead of redelivering. Business rejections are not errors:
 * they are reply events (README, "The flow").
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/**
 * A reply that contradicts the command the saga sent (another amount, currency, lines or attempt): it changes
 * nothing and is dead-lettered at once. The message starts with the code, `unexpected_reply`.
 */
export class UnexpectedReplyError extends PermanentError {
  override name = 'UnexpectedReplyError';
  readonly code = 'unexpected_reply';

  constructor(what: string) {
    super(`unexpected_reply: ${what}`);
  }
}

/**
 * A command that contradicts the participant's own records (a release of another order's reservation, a refund for
 * another customer, a repeated charge with another amount): refused, never applied, dead-lettered at once. The
 * message starts with the code, `contradicts_records`.
 */
export class ContradictsRecordsError extends PermanentError {
  override name = 'ContradictsRecordsError';
  readonly code = 'contradicts_records';

  constructor(what: string) {
    super(`contradicts_records: ${what}`);
  }
}

/** NATS or Postgres did not answer at start-up. The message names the URL. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
}

/** A stream or durable consumer the app needs does not exist: `orderflow setup` provisions them (apps never create them). */
export class TopologyMissingError extends Error {
  override name = 'TopologyMissingError';
}

/** NATS answered but refused the credentials (authorization violation). The message names the URL. */
export class NatsAuthError extends Error {
  override name = 'NatsAuthError';
}

/**
 * The database (or another dependency) cannot be reached right now — e.g. its circuit breaker is open. Not a
 * delivery attempt: the consume loop keeps such messages and waits, it never naks or dead-letters them.
 */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
}

/** Thrown by a query handler when the thing asked for does not exist; answered as `{"ok":false,"error":{"code":"not_found"}}`. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}
