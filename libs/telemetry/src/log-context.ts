import { AsyncLocalStorage } from 'node:async_hooks';

/** What every log line written while a message is handled carries: the order, saga, trace, subject, stream position. */
export interface LogBindings {
  orderId?: string;
  sagaId?: string;
  traceId?: string;
  subject?: string;
  stream?: string;
  seq?: number;
}

const storage = new AsyncLocalStorage<LogBindings>();

/** Runs `fn` with `bindings` added to every log line it (and what it awaits) writes. */
export const withLogBindings = <T>(bindings: LogBindings, fn: () => T): T => storage.run(bindings, fn);

/**
 * The bindings of the message being handled, for pino's `mixin` (so no call site passes them by hand), without the
 * fields the logger already binds (`bound`). Fields a line sets itself win (pino merges the mixin first).
 */
export function logBindings(bound: Record<string, unknown> = {}): object {
  const store = storage.getStore();
  if (!store) return {};
  // A child logger that already binds a field (log.child({ orderId })) would print it twice.
  return Object.fromEntries(Object.entries(store).filter(([k, v]) => v !== undefined && !(k in bound)));
}
