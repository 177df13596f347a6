/**
 * Stable error codes: what a dead letter's `Dlq-Error-Code` header and the error classes' `code` carry, so that the
 * CLI's advice and its REJECTED / DUPLICATE outcomes switch on a code, never on an error's wording
 * (docs/operations.md, "Error codes"). Dead letters carry the first eight; the rest are start-up and query failures.
 */
export const ErrorCodes = [
  /** Fails its subject's contract (bad JSON, a failed validation, an unknown type): dead-lettered at once. */
  'malformed',
  /** An `order.created` whose order id belongs to an order with a different body. */
  'idempotency_key_reused',
  /** A reply that contradicts the command the saga sent (amount, currency, lines, attempt). */
  'unexpected_reply',
  /** A command that contradicts the participant's own records (another order's reservation, another amount). */
  'contradicts_records',
  /** Another failure that retrying cannot fix (a Postgres data or integrity error, a reference to nothing). */
  'permanent',
  /** A failure retried until the deliveries ran out (a lock or statement timeout, a serialization failure, …). */
  'transient',
  /** The database could not be reached (its circuit open, connections refused). */
  'unavailable',
  /** A MAX_DELIVERIES advisory: the process died while handling the message's last delivery. */
  'max_deliveries',
  /** A query named something that does not exist. */
  'not_found',
  /** NATS or Postgres did not answer at start-up. */
  'unreachable',
  /** NATS refused the credentials. */
  'nats_auth',
  /** A stream or durable consumer the app needs does not exist (`orderflow setup` creates them). */
  'topology_missing',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

/** `value` as an error code, or undefined when it is none (a header from before the codes, or forged). */
export const asErrorCode = (value: string | null | undefined): ErrorCode | undefined =>
  (ErrorCodes as readonly string[]).includes(value ?? '') ? (value as ErrorCode) : undefined;
