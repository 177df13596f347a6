import { Context, context, createContextKey } from '@opentelemetry/api';

/** What every log line written while a message is handled carries: the order, saga, trace, subject, stream position. */
export interface LogBindings {
  orderId?: string;
  sagaId?: string;
  traceId?: string;
  subject?: string;
  stream?: string;
  seq?: number;
}

// The bindings ride in the OpenTelemetry context, beside the active span: one AsyncLocalStorage (the context manager
// `startTracing` installs) carries both. A second store would add its own work to every promise the process makes.
const LOG_BINDINGS = createContextKey('orderflow.log_bindings');

/** `ctx` with `bindings` added to every log line written while it is active. */
export const withLogBindings = (ctx: Context, bindings: LogBindings): Context => ctx.setValue(LOG_BINDINGS, bindings);

/**
 * The bindings of the message being handled, for pino's `mixin` (so no call site passes them by hand), without the
 * fields the logger already binds (`bound`). Fields a line sets itself win (pino merges the mixin first).
 */
export function logBindings(bound: Record<string, unknown> = {}): object {
  const store = context.active().getValue(LOG_BINDINGS) as LogBindings | undefined;
  if (!store) return {};
  // A child logger that already binds a field (log.child({ orderId })) would print it twice.
  return Object.fromEntries(Object.entries(store).filter(([k, v]) => v !== undefined && !(k in bound)));
}
