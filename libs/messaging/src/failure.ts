import { ErrorCode, MalformedMessageError } from '@orderflow/contracts';
import { PermanentError, UnavailableError } from './errors';

/**
 * How a failed message is retried (docs/architecture.md, "Guarantees": error classes):
 * - `permanent`: retrying cannot help — a malformed message, a PermanentError, a Postgres data exception
 *   (SQLSTATE class 22), integrity violation (23) or program limit (54): dead-lettered at once;
 * - `unavailable`: the database cannot be reached (an UnavailableError, i.e. its circuit is open; connection
 *   exceptions, class 08; 57P01–57P03 shutdown / cannot connect now; class 53 insufficient resources, e.g. 53300
 *   too many connections; refused or reset sockets; a pool that cannot hand out a connection in time): the
 *   message waits, it is not a delivery attempt;
 * - `transient`: anything else, e.g. serialization failure (40001), deadlock (40P01), lock or statement
 *   timeout (55P03, 57014): retried with backoff.
 * Source: PostgreSQL "Appendix A. PostgreSQL Error Codes".
 */
export type FailureClass = 'permanent' | 'unavailable' | 'transient';

const SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const DISCONNECTED =
  /Connection terminated|timeout exceeded when trying to connect|connection (is )?(not open|closed)|Client has encountered a connection error|Connection lost/i;

/** The SQLSTATE of a Postgres error (pg's, or TypeORM's QueryFailedError that copies it), if any. */
export function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function classify(e: unknown): FailureClass {
  if (e instanceof MalformedMessageError || e instanceof PermanentError) return 'permanent';
  if (e instanceof UnavailableError) return 'unavailable';
  const state = sqlState(e);
  if (state) {
    if (/^(22|23|54)/.test(state)) return 'permanent';
    if (/^(08|53)/.test(state) || /^57P0[123]$/.test(state)) return 'unavailable';
    return 'transient';
  }
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && SOCKET.has(code)) return 'unavailable';
  return e instanceof Error && DISCONNECTED.test(e.message) ? 'unavailable' : 'transient';
}

/**
 * The stable code of a failure (`ErrorCodes`, the dead letter's `Dlq-Error-Code`): our error classes' own, else what
 * `classify` makes of it (a Postgres error's SQLSTATE stays in `describeFailure`'s text).
 */
export function errorCode(e: unknown): ErrorCode {
  if (e instanceof MalformedMessageError || e instanceof PermanentError || e instanceof UnavailableError) return e.code;
  return classify(e);
}

/** `Name [SQLSTATE]: message` — what `Dlq-Error` and the logs say of a failure. */
export function describeFailure(e: unknown): string {
  const err = e instanceof Error ? e : new Error(String(e));
  const state = sqlState(e);
  // pg's DatabaseError is named after the protocol message ("error"): its class says more.
  const name = err.name === 'error' ? err.constructor.name : err.name;
  return `${name}${state ? ` [${state}]` : ''}: ${err.message}`;
}
