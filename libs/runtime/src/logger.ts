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
  return pino({ name: app, level, base: { app }, mixin: (_merge, _level, logger) => logBindings(logger.bindings()), ...pretty });
}
