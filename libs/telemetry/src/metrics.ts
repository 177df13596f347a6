import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What a consumed message came to: acked after its transaction committed, naked for a retry, dead-lettered, or skipped. */
export type ConsumeOutcome = 'acked' | 'nacked' | 'dead_lettered' | 'ignored';

/** A value read at scrape time (from Postgres or JetStream); a reader that throws leaves its gauge unset for that scrape. */
export type ScrapeReader = () => Promise<void>;

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SAGA_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The Prometheus metrics of one app (its own registry, so several apps in one process keep theirs apart), served at
 * `GET /metrics`. Counters move after the fact they count is durable: a message is counted when it is acked, naked or
 * dead-lettered; a publish when JetStream acknowledged it (a deduplicated re-publish is not counted); a saga when its
 * transaction committed. Gauges that describe stored state (outbox, sagas, consumer backlog) are read at scrape time.
 * Source: prom-client README; Prometheus docs, "Metric and label naming".
 */
export class PipelineMetrics {
  readonly registry = new Registry();
  private readonly readers: ScrapeReader[] = [];

  readonly consumed = new Counter({
    name: 'orderflow_messages_consumed_total',
    help: 'Messages consumed, by subject, durable consumer and outcome (acked, nacked, dead_lettered, ignored).',
    labelNames: ['subject', 'consumer', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly redeliveries = new Counter({
    name: 'orderflow_redeliveries_total',
    help: 'Messages received again (JetStream delivery count above 1), by subject and durable consumer.',
    labelNames: ['subject', 'consumer'] as const,
    registers: [this.registry],
  });
  readonly handlerSeconds = new Histogram({
    name: 'orderflow_handler_duration_seconds',
    help: "A message's handler (Nest pipeline included), inside its batch transaction, by subject.",
    labelNames: ['subject'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'orderflow_batch_duration_seconds',
    help: 'A batch transaction (inbox claim, handlers, outbox writes, commit), by durable consumer.',
    labelNames: ['consumer'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'orderflow_batch_size',
    help: 'Messages per batch transaction, by durable consumer.',
    labelNames: ['consumer'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly streamWaitSeconds = new Histogram({
    name: 'orderflow_stream_wait_seconds',
    help: 'From a message being stored in its stream to the start of the batch transaction that handles it, by durable consumer.',
    labelNames: ['consumer'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly pgStatements = new Counter({
    name: 'orderflow_pg_statements_total',
    help: 'Statements batch transactions sent to Postgres (BEGIN, the inbox claim, the handlers\', the outbox insert and delete, COMMIT), by durable consumer; the outbox relay\'s deletes as consumer="outbox relay".',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });
  readonly pgRoundTrips = new Counter({
    name: 'orderflow_pg_round_trips_total',
    help: 'Waits for Postgres\'s answer in batch transactions, by durable consumer: statements sent together (BEGIN with the inbox claim; the outbox with COMMIT) or pipelined ahead of the one waited for share one; the outbox relay\'s deletes as consumer="outbox relay".',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });
  readonly pgSeconds = new Counter({
    name: 'orderflow_pg_seconds_total',
    help: "Time batch transactions spent waiting on Postgres, by durable consumer (and the outbox relay's deletes).",
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });
  readonly published = new Counter({
    name: 'orderflow_messages_published_total',
    help: 'Outbox messages published and acknowledged by JetStream (not counting deduplicated re-publishes), by subject.',
    labelNames: ['subject'] as const,
    registers: [this.registry],
  });
  readonly outboxLag = new Gauge({
    name: 'orderflow_outbox_lag_seconds',
    help: 'Age of the oldest unpublished outbox row (0 when the outbox is empty).',
    registers: [this.registry],
  });
  readonly outboxSize = new Gauge({
    name: 'orderflow_outbox_size',
    help: 'Unpublished outbox rows.',
    registers: [this.registry],
  });
  readonly consumerPending = new Gauge({
    name: 'orderflow_consumer_pending',
    help: 'Messages in the stream not yet delivered to the durable consumer (JetStream num_pending), read at scrape time.',
    labelNames: ['stream', 'consumer'] as const,
    registers: [this.registry],
  });
  readonly consumerAckPending = new Gauge({
    name: 'orderflow_consumer_ack_pending',
    help: 'Messages delivered to the durable consumer and not yet acked (JetStream num_ack_pending), read at scrape time.',
    labelNames: ['stream', 'consumer'] as const,
    registers: [this.registry],
  });
  readonly deadLetters = new Counter({
    name: 'orderflow_dead_letters_total',
    help: 'Messages this app dead-lettered, by original subject and error fingerprint (as `orderflow dlq stats` groups them).',
    labelNames: ['subject', 'fingerprint'] as const,
    registers: [this.registry],
  });
  readonly deadLettersHeld = new Gauge({
    name: 'orderflow_dead_letters_held',
    help: 'Messages held unacked because the dead-letter stream refused their dead letter (full or unreachable), by stream and durable consumer. Alert above 0.',
    labelNames: ['stream', 'consumer'] as const,
    registers: [this.registry],
  });
  readonly heapCompactions = new Counter({
    name: 'orderflow_idle_heap_compactions_total',
    help: 'Full, memory-reducing collections the app ran while idle, after its resident set grew by IDLE_HEAP_COMPACTION_MB (about one per burst).',
    registers: [this.registry],
  });
  readonly sagasStarted = new Counter({
    name: 'orderflow_sagas_started_total',
    help: 'Saga attempts started (an operator retry is a new attempt), by saga type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly sagasFinished = new Counter({
    name: 'orderflow_sagas_finished_total',
    help: 'Saga attempts that reached COMPLETED, CANCELLED or FAILED, by type, status and reason.',
    labelNames: ['type', 'status', 'reason'] as const,
    registers: [this.registry],
  });
  readonly sagaSeconds = new Histogram({
    name: 'orderflow_saga_duration_seconds',
    help: 'From the start of a saga attempt to its COMPLETED, CANCELLED or FAILED, by type and status.',
    labelNames: ['type', 'status'] as const,
    buckets: SAGA_SECONDS,
    registers: [this.registry],
  });
  readonly sagas = new Gauge({
    name: 'orderflow_sagas',
    help: 'Saga attempts now RUNNING, COMPENSATING or FAILED, by type and status, read at scrape time.',
    labelNames: ['type', 'status'] as const,
    registers: [this.registry],
  });

  /** @param app the app's name, a label on every series (`app`). */
  constructor(app: string) {
    this.registry.setDefaultLabels({ app });
    // The event-loop lag histogram samples every 50 ms, not prom-client's 10 ms: each sample wakes the process, which
    // at 10 ms cost an idle app 0.6 % of a core; a stall of 50 ms or more is still always seen.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 50 });
  }

  /** Adds a reader run at every scrape (before the text is rendered). */
  onScrape(reader: ScrapeReader): void {
    this.readers.push(reader);
  }

  /** The Prometheus text exposition of every metric, after the scrape-time readers ran (each at most `timeoutMs`). */
  async scrape(timeoutMs = 2000): Promise<string> {
    await Promise.allSettled(this.readers.map((r) => withTimeout(r(), timeoutMs)));
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
