import pino, { Logger } from 'pino';
import { logBindings } from '@orderflow/telemetry';

export type { Logger } from 'pino';

/**
 * One pino logger per app. Every line written while a message is handled carries its `orderId`, `sagaId`,
 * `traceId`, `subject`, `stream` and `seq` (bound by the transport in AsyncLocalStorage, merged by pino's `mixin`:
 * no call site passes them). Human-readable (pino-pretty) when stdout is a terminal, JSON lines otherwise.
 */
export function createLogger(app: string, level = 'info'): Logger {
  const pretty = process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { ignore: 'pid,hostname,app' } } } : {};
  return pino({ name: app, level, base: { app }, mixin: (_merge, _level, logger) => logBindings(logger.bindings()), ...pretty });
}
