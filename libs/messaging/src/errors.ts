export { MalformedMessageError } from '@orderflow/contracts';

/**
 * A failure that retrying cannot fix (e.g. a message that refers to something that will never exist).
 * The consume loop dead-letters it at once instead of redelivering. Business rejections are not errors:
 * they are reply events (DESIGN.md).
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/** NATS or Postgres did not answer at start-up. The message names the URL. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
}
