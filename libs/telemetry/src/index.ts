export { contextOf, flushTracing, inSpan, linkTo, SpanKind, startTracing, traceIdOf, traceparentOf, tracer } from './tracing';
export type { SpanOptions } from './tracing';
export { logBindings } from './log-context';
export type { LogBindings } from './log-context';
export { PipelineMetrics } from './metrics';
export type { ConsumeOutcome, ScrapeReader } from './metrics';
