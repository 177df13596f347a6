import pino, { Logger } from 'pino';
import { logBindings } from '@orderflow/telemetry';

export type { Logger } from 'pino';

/**
 * One pino logger per app, also Nest's own (nestjs-pino, wired in `ServiceModule`). Every line written while a message
 * is handled carries its `orderId`, `sagaId`, `traceId`, `subject`, `stream` and `seq`: the transport binds them in
 * the message's OpenTelemetry context (AsyncLocalStorage) and pino's `mixin` merges them, so no call site passes them.
 * (nestjs-pino's own per-message context needs Nest 12's pre-request hooks; on Nest 11 it is the mixin.)
 * Human-readable (pino-pretty) when stdout is a terminal, JSON lines otherwise.
 */
export function createLogger(app: string, level = 'info'): Logger {
  const pretty = process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { ignore: 'pid,hostname,app' } } } : {};
  return pino({
    name: app,
    level,
    base: { app },
    mixin: (_merge, _level, logger) => logBindings(logger.bindings()),
    redact: { paths: REDACTED, remove: true },
    ...pretty,
  });
}

/**
 * What never reaches a log line: the SQL and its parameters that TypeORM's `QueryFailedError` and pg's errors carry
 * (`query`, `parameters`, `driverError`, pg's `where` / `internalQuery`), on an error and on its cause. The error's name,
 * message, SQLSTATE `code` and stack stay; pg's `detail` goes too (it quotes key values) (pino `redact`, fast-redact paths).
 */
const REDACTED = ['query', 'parameters', 'driverError', 'internalQuery', 'where', 'detail'].flatMap((k) => [
  `err.${k}`,
  `err.cause.${k}`,
  `error.${k}`,
  `*.err.${k}`,
]);
