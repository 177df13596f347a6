import pino, { Logger } from 'pino';

export type { Logger } from 'pino';

/** One pino logger per app; child loggers carry `orderId` and `sagaId` so every line names the order and saga. */
export function createLogger(app: string, level = 'info'): Logger {
  return pino({ name: app, level, base: { app } });
}
