import { Attributes, Context, context, Link, propagation, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { LogBindings, withLogBindings } from './log-context';

let provider: NodeTracerProvider | undefined;

/** The tracer every span of the pipeline comes from. */
export const tracer = () => trace.getTracer('orderflow');

/**
 * Starts tracing for this process (once; later calls, e.g. several apps in one test process, keep the first): W3C
 * trace context propagation and an AsyncLocalStorage context manager, so trace ids are made and carried in every
 * message (the log bindings ride in the same context). Spans are recorded and exported with OTLP/HTTP only when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, sampled as `OTEL_TRACES_SAMPLER` says (every
 * trace by default; `parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG=0.1` keeps one in ten). Without it a
 * span is sampled out — non-recording, but it still gets its ids and carries the trace on — unless its parent was
 * sampled upstream (a `traceparent` with flag 01), whose decision is kept.
 * Sources: OpenTelemetry JS, "Getting started: Node.js"; W3C Trace Context (`traceparent`).
 * @returns true when spans are exported.
 */
export function startTracing(service: string, version: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const exporting = !!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (provider) return exporting;
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME || `orderflow-${service}`,
      [ATTR_SERVICE_VERSION]: version,
    }),
    spanProcessors: exporting ? [new BatchSpanProcessor(new OTLPTraceExporter())] : [],
    // Exporting: the SDK's sampler from OTEL_TRACES_SAMPLER / _ARG (default parentbased_always_on). Not exporting:
    // spans are sampled out (non-recording, ids still made and carried) unless the incoming trace was sampled
    // upstream, whose flag is kept for whoever exports downstream.
    ...(exporting ? {} : { sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }) }),
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return exporting;
}

/** Exports the spans still buffered (at shutdown). */
export async function flushTracing(): Promise<void> {
  await provider?.forceFlush();
}

/** The context a `traceparent` header names (`otherwise`, the root context by default, without one). */
export function contextOf(traceparent: string | undefined, otherwise: Context = ROOT_CONTEXT): Context {
  return traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : otherwise;
}

/** The `traceparent` header of a context (the active one by default), if it holds a valid span. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The trace id (32 hex digits) in a `traceparent` header. */
export const traceIdOf = (traceparent: string | undefined): string | undefined => traceparent?.split('-')[1];

/** A link to the span a `traceparent` names (none without one). */
export function linkTo(traceparent: string | undefined): Link[] {
  const span = traceparent ? trace.getSpanContext(contextOf(traceparent)) : undefined;
  return span ? [{ context: span }] : [];
}

/** What a span of the pipeline says about itself; attributes and links are built only for a span that is recorded. */
export interface SpanOptions {
  kind: SpanKind;
  attributes?: () => Attributes;
  links?: () => Link[];
  /** Bound to every log line written while the span is active, with its trace id (see `logBindings`). */
  log?: LogBindings;
}

/**
 * Runs `fn` in a new span, child of `parent`, active for `fn`'s duration: ended when `fn` settles, its status ERROR
 * (with the exception recorded) when `fn` throws. Without an exporter most spans are sampled out, so their attributes
 * and links are never built ("Checking if a span is recording", OpenTelemetry tracing API spec).
 */
export async function inSpan<T>(name: string, options: SpanOptions, parent: Context, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer().startSpan(name, { kind: options.kind }, parent);
  if (span.isRecording()) {
    if (options.attributes) span.setAttributes(options.attributes());
    if (options.links) span.addLinks(options.links());
  }
  let active = trace.setSpan(parent, span);
  if (options.log) active = withLogBindings(active, { ...options.log, traceId: span.spanContext().traceId });
  try {
    return await context.with(active, fn, undefined, span);
  } catch (e) {
    span.recordException(e as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
    throw e;
  } finally {
    span.end();
  }
}

export { SpanKind };
