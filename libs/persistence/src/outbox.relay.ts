import { circuitBreaker, CircuitState, ConsecutiveBreaker, ExponentialBackoff, handleAll } from 'cockatiel';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { MessagePublisher, OutgoingMessage } from '@orderflow/messaging';
import { contextOf, inSpan, PipelineMetrics, SpanKind, traceparentOf } from '@orderflow/telemetry';
import { DatabaseBreaker } from './database.breaker';
import { PeriodicTask } from './periodic.task';

const BATCH = 256;
/** The relay's deletes of published rows, in the batch transactions' Postgres counters. */
const RELAY = { consumer: 'outbox relay' };
const DELETE_AFTER_MS = 50;

/** An outbox row: a message to publish with `Nats-Msg-Id` = `id`. */
export interface OutboxRow {
  id: string;
  subject: string;
  headers: Omit<OutgoingMessage, 'subject' | 'body'>;
  payload: object;
}

/**
 * Transactional outbox relay (pattern: "Transactional outbox", microservices.io). Publishes the rows of the
 * service's `outbox` table to JetStream (the `MessagePublisher`, `JetStreamClient` in the apps) with `Nats-Msg-Id` =
 * row id, then deletes them.
 * - Fast path: right after a transaction commits, its rows are published from memory (`publishCommitted`), and the
 *   app's next transaction deletes them as it commits (`takeDeletes`), so a hop costs no extra read of the table and,
 *   under load, no statement of its own to delete.
 * - Safety net: every `pollMs` a sweep takes rows older than `pollMs` (a crash or a failed publish left
 *   them) `FOR UPDATE SKIP LOCKED` (several instances share the work), publishes and deletes them. It skips its
 *   turn while the database's circuit is open.
 * - Publish breaker (cockatiel): 3 failed publishes in a row (NATS down, no stream leader) open it; while it
 *   is open the fast path leaves rows to the sweep and the sweep lets one publish through after a backoff
 *   (0.5 s doubling to 5 s) — one warning per outage, not one per row, and no transaction held open waiting on
 *   publish timeouts.
 * A row published twice (crash between publish and delete, or sweep racing a slow fast path) carries the
 * same `Nats-Msg-Id`: the stream's duplicate window drops the copy, and consumers' inboxes after it.
 */
export class OutboxRelay {
  private readonly sweeper: PeriodicTask;
  /** Rows the sweep takes: everything at start-up (a previous run's leftovers), then rows older than one poll. */
  private sweepMinAgeMs = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  private toDelete: string[] = [];
  private deleteTimer?: NodeJS.Timeout;
  private readonly publishing = circuitBreaker(handleAll, {
    halfOpenAfter: new ExponentialBackoff({ initialDelay: 500, maxDelay: 5_000 }),
    breaker: new ConsecutiveBreaker(3),
  });

  constructor(
    private readonly ds: DataSource,
    private readonly publisher: MessagePublisher,
    private readonly log: Logger,
    private readonly pollMs: number,
    private readonly breaker: DatabaseBreaker,
    private readonly metrics?: PipelineMetrics,
    /** How long a published row waits for a transaction to delete it before the relay deletes it itself. */
    private readonly deleteAfterMs = DELETE_AFTER_MS,
  ) {
    // A failed half-open probe breaks the circuit again: one warning per outage, not per probe.
    let open = false;
    this.publishing.onBreak((r) => {
      if (!open)
        this.log.warn({ err: 'error' in r ? r.error : undefined }, 'NATS publish failing: circuit open; outbox rows wait in Postgres');
      open = true;
    });
    this.publishing.onReset(() => {
      open = false;
      this.log.info('NATS publish back: circuit closed; publishing the outbox');
    });
    this.sweeper = new PeriodicTask(
      'outbox sweep',
      pollMs,
      () => this.sweep(),
      log,
      () => breaker.available,
    );
  }

  start(): void {
    this.sweeper.start(0);
  }

  /** Publishes rows whose transaction just committed. A failed publish leaves the row to the sweep. */
  publishCommitted(rows: OutboxRow[]): void {
    if (this.publishing.state !== CircuitState.Closed) return;
    for (const row of rows) {
      const p = this.publish(row).then(
        () => this.deleteSoon(row.id),
        (e) => this.log.debug({ err: e, outboxId: row.id, subject: row.subject }, 'publish failed; the outbox sweep will retry'),
      );
      this.track(p);
    }
  }

  /**
   * Publishes a row in a `<subject> send` producer span, child of the span that wrote it (the row's `traceparent`);
   * the message carries the producer span's context, so its consumer's span is the next link of the same trace.
   */
  private publish(row: OutboxRow): Promise<unknown> {
    return this.publishing.execute(() =>
      inSpan(
        `${row.subject} send`,
        {
          kind: SpanKind.PRODUCER,
          attributes: () => ({ 'messaging.system': 'nats', 'messaging.destination.name': row.subject, 'messaging.message.id': row.id }),
        },
        contextOf(row.headers.traceparent),
        async () => {
          const ack = await this.publisher.publish(
            { ...row.headers, traceparent: traceparentOf(), subject: row.subject, body: row.payload },
            row.id,
          );
          if (!ack.duplicate) this.metrics?.published.inc({ subject: row.subject });
        },
      ),
    );
  }

  /** How many rows wait in the outbox, and how long the oldest has waited (seconds; 0 when none): the lag gauges. */
  async backlog(): Promise<{ rows: number; lagSeconds: number }> {
    const [r] = await this.ds.query(
      'select count(*)::int as n, coalesce(extract(epoch from clock_timestamp() - min(created_at)), 0)::float8 as lag from outbox',
    );
    return { rows: r.n, lagSeconds: r.lag };
  }

  /** Publishes rows older than `sweepMinAgeMs`, a batch at a time. */
  private async sweep(): Promise<void> {
    try {
      while ((await this.sweepBatch(this.sweepMinAgeMs)) === BATCH);
      this.sweepMinAgeMs = this.pollMs;
    } catch (e) {
      if (this.publishing.state === CircuitState.Closed) this.log.warn({ err: e }, 'outbox sweep failed; will retry');
    }
  }

  private sweepBatch(minAgeMs: number): Promise<number> {
    return this.breaker.execute(() =>
      this.ds.transaction(async (m) => {
        const rows: OutboxRow[] = await m.query(
          `select id, subject, headers, payload from outbox where created_at <= clock_timestamp() - make_interval(secs => $2::double precision / 1000)
          order by created_at limit $1 for update skip locked`,
          [BATCH, minAgeMs],
        );
        if (rows.length === 0) return 0;
        // While the publish circuit is half-open only the first row goes out (the probe); the rest fail fast and stay.
        await Promise.all(rows.map((r) => this.publish(r)));
        await m.query('delete from outbox where id = any($1::uuid[])', [rows.map((r) => r.id)]);
        return rows.length;
      }),
    );
  }

  /**
   * Published rows are deleted by the next transaction of the app, in its closing round trip (`takeDeletes`), so under
   * load they cost no statement and no commit of their own; rows no transaction took within `deleteAfterMs` are
   * deleted here, in one statement for all of them. The timer runs from when the list last became non-empty: a
   * transaction that takes every id stops it, so an app whose transactions come more often than `deleteAfterMs` (one
   * saga at a time, too) never spends a commit of its own on a delete.
   */
  private deleteSoon(id: string): void {
    this.toDelete.push(id);
    this.deleteTimer ??= setTimeout(() => {
      this.deleteTimer = undefined;
      this.track(this.deleteNow());
    }, this.deleteAfterMs);
  }

  /**
   * Up to `max` published rows' ids for a transaction to delete as it commits; the caller gives them back
   * (`returnDeletes`) if it rolls back.
   */
  takeDeletes(max = 1000): string[] {
    const ids = this.toDelete.splice(0, max);
    if (this.toDelete.length === 0) {
      clearTimeout(this.deleteTimer);
      this.deleteTimer = undefined;
    }
    return ids;
  }

  /** Ids a transaction took (`takeDeletes`) and did not commit: deleted later. */
  returnDeletes(ids: string[]): void {
    for (const id of ids) this.deleteSoon(id);
  }

  private async deleteNow(): Promise<void> {
    while (this.toDelete.length > 0) {
      const ids = this.toDelete.splice(0);
      const t = performance.now();
      try {
        await this.ds.query('delete from outbox where id = any($1::uuid[])', [ids]);
        this.metrics?.pgStatements.inc(RELAY);
        this.metrics?.pgRoundTrips.inc(RELAY);
        this.metrics?.pgSeconds.inc(RELAY, (performance.now() - t) / 1000);
      } catch (e) {
        // Left in the table: the sweep publishes them again (deduplicated by Nats-Msg-Id) and deletes them.
        this.log.warn({ err: e, rows: ids.length }, 'outbox delete failed');
      }
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  /** Stops sweeping and waits for publishes and deletes in progress. Rows still pending go out at the next start. */
  async stop(): Promise<void> {
    await this.sweeper.stop();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    clearTimeout(this.deleteTimer);
    this.deleteTimer = undefined;
    await this.deleteNow();
  }
}
