import pino, { Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One pino logger per app; child loggers carry `orderId` and `sagaId` so every line names the order and saga.
 * Human-readable (pino-pretty) when stdout is a terminal, JSON lines otherwise.
 */
export function createLogger(app: string, level = 'info'): Logger {
  const pretty = process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { ignore: 'pid,hostname,app' } } } : {};
  return pino({ name: app, level, base: { app }, ...pretty });
}
