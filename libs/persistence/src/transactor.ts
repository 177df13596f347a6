import { randomUUID } from 'node:crypto';
import { escapeLiteral, Pool } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { ConsumerSpec, Message } from '@orderflow/contracts';
import { PipelineMetrics, traceparentOf } from '@orderflow/telemetry';
import { BatchHandler, InboundMessage, OutgoingMessage, PermanentError } from '@orderflow/messaging';
import { DatabaseBreaker } from './database.breaker';
import { OutboxRelay, OutboxRow } from './outbox.relay';

/** What one message does in a consumer's transaction. */
export type Work<T = any> = (tx: Tx, msg: InboundMessage<T>) => Promise<void>;

/**
 * What runs SQL and returns rows of a type the caller names (`query<Row>`; none is assumed, so an unnamed row is an
 * `object` with nothing to read): a transaction (`Tx`), or `readSql(ds)` for reads outside one. Repositories take it.
 */
export interface Sql {
  query<T extends object>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** `Sql` on the data source's pool, outside any transaction: for queries. */
export const readSql = (ds: DataSource): Sql => ({ query: (sql, params) => ds.query(sql, params) });

/** What statements run on: a pooled `pg` client, or an adapter (`Tx.of`). */
export interface QueryConnection {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

/**
 * Round trips to Postgres in a transaction and the time spent waiting on them (ms). `BEGIN` and `COMMIT` count: with
 * the `pg` driver every statement is one round trip (it does not pipeline).
 */
export class PgStats {
  roundTrips = 0;
  ms = 0;
}

/** One database transaction of a service: its state changes, the messages it sends (outbox) and the inbox. */
export class Tx implements Sql {
  /** @internal */ readonly outgoing: OutgoingMessage[] = [];
  /** @internal */ readonly committed: (() => void)[] = [];

  constructor(
    private readonly connection: QueryConnection,
    readonly stats = new PgStats(),
  ) {}

  /** A `Tx` on a transaction TypeORM opened (`ds.transaction(m => …)`): for code outside `Transactor`, such as tests. */
  static of(manager: EntityManager): Tx {
    return new Tx({ query: async (sql, params) => ({ rows: (await manager.queryRunner!.query(sql, params, true)).records }) });
  }

  /**
   * Queues `msg` in the outbox; it is written in this transaction and published after commit. Its body is checked
   * against its subject's class at compile time (`Message`: a subject without a `MessageTypes` entry does not compile).
   */
  send(msg: Message & Omit<OutgoingMessage, 'subject' | 'body'>): void {
    // The trace it continues: the span active where it is sent (the consume span of the message that caused it).
    this.outgoing.push({ ...msg, traceparent: msg.traceparent ?? traceparentOf() });
  }

  /** Runs `fn` once this transaction committed (not at all if it rolls back): for counting what became durable. */
  afterCommit(fn: () => void): void {
    this.committed.push(fn);
  }

  /**
   * BEGIN — and, given a batch's inbox keys, their claim — in one round trip: the statements go as one simple query,
   * the keys inlined as literals (`literal`).
   * @returns the keys the inbox did not hold yet: the others were handled before and must change nothing.
   * @internal `Transactor` opens its transactions with it.
   */
  async open(claim?: InboxClaim): Promise<Set<string>> {
    if (!claim || claim.keys.length === 0) {
      await this.query('begin');
      return new Set();
    }
    const keys = claim.keys.map(literal).join(', ');
    const [, claimed] = await this.statements(
      `begin; insert into inbox (consumer, message_id) select ${literal(claim.consumer)}, unnest(array[${keys}]::text[])
       on conflict do nothing returning message_id`,
    );
    return new Set(claimed.rows.map((r: { message_id: string }) => r.message_id));
  }

  /**
   * The outbox insert of what was sent, the delete of `published` outbox rows (the relay's, see
   * `OutboxRelay.takeDeletes`), and COMMIT, in one round trip (as `open`).
   * @returns the outbox rows written.
   * @internal `Transactor` commits with it.
   */
  async close(published: string[] = []): Promise<OutboxRow[]> {
    const rows: OutboxRow[] = this.outgoing.map(({ subject, body, id, ...headers }) => ({
      id: id ?? randomUUID(),
      subject,
      headers,
      payload: body,
    }));
    const statements: string[] = [];
    if (published.length > 0) statements.push(`delete from outbox where id = any(array[${published.map(literal).join(', ')}]::uuid[])`);
    if (rows.length > 0) {
      const values = rows.map(
        (r) =>
          `(${literal(r.id)}::uuid, ${literal(r.subject)}, ${literal(JSON.stringify(r.headers))}::jsonb, ${literal(JSON.stringify(r.payload))}::jsonb)`,
      );
      statements.push(`insert into outbox (id, subject, headers, payload) values ${values.join(', ')}`);
    }
    if (statements.length === 0) await this.query('commit');
    else await this.statements(`${statements.join('; ')}; commit`);
    return rows;
  }

  /** Runs SQL in this transaction; returns the rows (also for `update … returning` / `delete … returning`). */
  async query<T extends object>(sql: string, params?: unknown[]): Promise<T[]> {
    return (await this.measured(() => this.connection.query(sql, params))).rows;
  }

  /** Several statements, no parameters, in one round trip (the simple-query protocol); each one's result. */
  private async statements(sql: string): Promise<{ rows: any[] }[]> {
    return this.measured(() => this.connection.query(sql) as unknown as Promise<{ rows: any[] }[]>);
  }

  private async measured<T>(roundTrip: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await roundTrip();
    } finally {
      this.stats.roundTrips++;
      this.stats.ms += performance.now() - t;
    }
  }
}

/** A batch's inbox claim: the consumer's inbox name and its messages' inbox keys. */
export interface InboxClaim {
  consumer: string;
  keys: string[];
}

/**
 * `value` as an SQL string literal, for statements sent without parameters: pg's `escapeLiteral` (libpq's
 * `PQescapeLiteral` rules: quotes and backslashes doubled, an `E''` literal when there are backslashes).
 * @throws PermanentError for a NUL character, which Postgres text cannot hold (a parameter would be refused too).
 */
export function literal(value: string): string {
  if (value.includes('\u0000')) throw new PermanentError('a value holds a NUL character, which Postgres text cannot hold');
  return escapeLiteral(value);
}

/**
 * Runs units of work: state change + inbox + outbox in one Postgres transaction (through the database's circuit
 * breaker), then hands the outbox rows to the relay. Transactions run on the data source's own pool with the `pg`
 * driver directly: TypeORM stays for connections and migrations, and its per-query wrapper stays off the hot path.
 */
export class Transactor {
  private readonly pool: Pool;

  constructor(
    ds: DataSource,
    private readonly relay: OutboxRelay,
    private readonly breaker: DatabaseBreaker,
    private readonly metrics?: PipelineMetrics,
  ) {
    this.pool = (ds.driver as PostgresDriver).master as Pool;
  }

  /** False while the database's circuit is open: timers with work of their own skip their turn. */
  get available(): boolean {
    return this.breaker.available;
  }

  /**
   * Runs `work` in a transaction; `stats` gathers its round trips and time in Postgres.
   * @throws UnavailableError at once while the circuit is open; what `work` or Postgres throws (rolled back).
   */
  async run<T>(work: (tx: Tx) => Promise<T>, stats = new PgStats()): Promise<T> {
    return this.transact(stats, undefined, work);
  }

  /**
   * On one pooled client, through the circuit breaker: BEGIN with the inbox claim (one round trip), `work`, then the
   * outbox insert, the delete of rows the relay has published, and COMMIT (one round trip). ROLLBACK when anything
   * throws (a client whose rollback failed is dropped). After commit, the outbox rows go to the relay and the
   * `afterCommit` callbacks run.
   */
  private async transact<T>(stats: PgStats, claim: InboxClaim | undefined, work: (tx: Tx, claimed: Set<string>) => Promise<T>): Promise<T> {
    let rows: OutboxRow[] = [];
    let committed: (() => void)[] = [];
    const result = await this.breaker.execute(async () => {
      const client = await this.pool.connect();
      const tx = new Tx(client, stats);
      let broken: Error | undefined;
      // A connection lost between statements is reported as an 'error' event (which would end the process unheard);
      // the next statement fails with it, and the client is dropped on release.
      const lost = (e: Error) => (broken = e);
      client.on('error', lost);
      let published: string[] = [];
      try {
        const value = await work(tx, await tx.open(claim));
        published = this.relay.takeDeletes();
        rows = await tx.close(published);
        committed = tx.committed;
        return value;
      } catch (e) {
        this.relay.returnDeletes(published);
        await tx.query('rollback').catch((rollbackFailed: Error) => (broken = rollbackFailed));
        throw e;
      } finally {
        client.off('error', lost);
        client.release(broken);
      }
    });
    if (rows.length > 0) this.relay.publishCommitted(rows);
    for (const fn of committed) fn();
    return result;
  }

  /**
   * The handler of a consumer: each message's `works[subject]` runs in one transaction for the whole batch,
   * guarded by the inbox (pattern: "Idempotent consumer"): a message whose inbox key the inbox already holds
   * (redelivered, re-published, or twice in the batch) changes nothing. Per batch it measures how long its messages
   * waited in the stream, and its round trips and time in Postgres (`orderflow_stream_wait_seconds`,
   * `orderflow_pg_round_trips_total`, `orderflow_pg_seconds_total`).
   * @throws Error at once when `works` lacks a subject the consumer handles.
   */
  handler(spec: ConsumerSpec, works: Record<string, Work>): BatchHandler {
    for (const subject of spec.handles) {
      if (!works[subject]) throw new Error(`consumer ${spec.durable} handles ${subject} but has no work for it`);
    }
    // The durable name alone is not unique: the saga's `order-saga-replies` exists on two streams.
    const inbox = `${spec.stream}/${spec.durable}`;
    const consumer = { consumer: spec.durable };
    return async (msgs) => {
      const m = this.metrics;
      if (m) {
        const now = Date.now();
        for (const msg of msgs) if (msg.storedAt) m.streamWaitSeconds.observe(consumer, Math.max(0, now - msg.storedAt) / 1000);
      }
      const stats = new PgStats();
      try {
        await this.transact(stats, { consumer: inbox, keys: msgs.map((msg) => msg.inboxKey) }, async (tx, claimed) => {
          for (const msg of msgs) {
            if (claimed.delete(msg.inboxKey)) await works[msg.subject](tx, msg);
          }
        });
      } finally {
        m?.pgRoundTrips.inc(consumer, stats.roundTrips);
        m?.pgSeconds.inc(consumer, stats.ms / 1000);
      }
    };
  }
}
