export { contextOf, flushTracing, inSpan, linkTo, SpanKind, startTracing, traceIdOf, traceparentOf, tracer } from './tracing';
export { logBindings, withLogBindings } from './log-context';
export type { LogBindings } from './log-context';
export { PipelineMetrics } from './metrics';
export type { ConsumeOutcome, ScrapeReader } from './metrics';
