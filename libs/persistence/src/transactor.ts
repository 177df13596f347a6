import { randomUUID } from 'node:crypto';
import { Pool, PoolClient } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { ConsumerSpec, Message } from '@orderflow/contracts';
import { PipelineMetrics, traceparentOf } from '@orderflow/telemetry';
import { BatchHandler, InboundMessage, OutgoingMessage, PermanentError, sqlState } from '@orderflow/messaging';
import { DatabaseBreaker } from './database.breaker';
import { OutboxRelay, OutboxRow } from './outbox.relay';
import { BatchAnswer, runBatch, Statement } from './statement-batch';

/** What one message does in a consumer's transaction. */
export type Work<T = any> = (tx: Tx, msg: InboundMessage<T>) => Promise<void>;

/**
 * What runs SQL and returns rows of a type the caller names (`query<Row>`; none is assumed, so an unnamed row is an
 * `object` with nothing to read): a transaction (`Tx`), or `readSql(ds)` for reads outside one. Repositories take it.
 */
export interface Sql {
  query<T extends object>(sql: string, params?: unknown[], options?: QueryOptions): Promise<T[]>;
}

/** How `Sql.query` runs a statement. */
export interface QueryOptions {
  /**
   * Plan it anew on every execution (an unnamed statement) instead of preparing it once per connection: for a
   * statement whose best plan depends on how big its tables have grown. A prepared statement keeps its generic plan
   * (in a `Transactor` transaction, from its first execution: `BEGIN_GENERIC`) until its table is analysed: one made
   * while the table was nearly empty keeps scanning it whole.
   * Source: PostgreSQL docs, PREPARE ("plan_cache_mode").
   */
  planEach?: boolean;
}

/**
 * A transaction's `Sql`: also `execute`, a statement whose result the caller does not need, not waited for: it goes
 * to Postgres with the next statement that is (pipelined, in one batch), or with COMMIT. Postgres runs statements in
 * the order queued, so a later statement sees its effect; its failure is thrown by the next `query` of the
 * transaction, or by the commit.
 */
export interface TxSql extends Sql {
  execute(sql: string, params?: unknown[]): void;
}

/** `Sql` on the data source's pool, outside any transaction: for queries. */
export const readSql = (ds: DataSource): Sql => ({ query: (sql, params) => ds.query(sql, params) });

/**
 * What statements run on: a pooled `pg` client (`runBatch`), or an adapter (`Tx.within`). A batch is one round trip;
 * batches run in the order given.
 */
export interface QueryConnection {
  batch(statements: Statement[]): Promise<BatchAnswer>;
}

/** Statement names by SQL text; at most MAX_PREPARED texts get one (each connection keeps what it prepared). */
const preparedNames = new Map<string, string>();
const MAX_PREPARED = 500;

/**
 * `sql` with `params` as a named (prepared) statement: Postgres parses and plans it once per connection instead of
 * on every execution. The SQL of a transaction is a fixed set of texts (values go in parameters), so the names are
 * few; past MAX_PREPARED texts, statements go unnamed. A prepared statement whose result type a migration changed
 * fails with 0A000 ("cached plan must not change result type"): `Transactor` then drops the connection.
 * Source: PostgreSQL docs, "Extended Query" (protocol flow); node-postgres docs, "Prepared statements".
 */
export function prepared(sql: string, params: unknown[]): Statement {
  let name = preparedNames.get(sql);
  if (!name && preparedNames.size < MAX_PREPARED) preparedNames.set(sql, (name = `orderflow_${preparedNames.size}`));
  return { text: sql, values: params, name };
}

const noop = () => undefined;

/** SQLSTATE of "cached plan must not change result type": a prepared statement outlived a change of its table. */
const STALE_PLAN = '0A000';

/**
 * Statements and round trips to Postgres in a transaction, and the time spent waiting on them (ms). `BEGIN` and
 * `COMMIT` count. A round trip is a wait for an answer: the statements of one batch (those queued in one tick, and
 * the `Tx.execute`s before them) share it.
 */
export class PgStats {
  statements = 0;
  roundTrips = 0;
  ms = 0;
}

/** A statement queued in a `Tx` until its batch goes out; `answer` when its rows are waited for. */
interface Queued {
  statement: Statement;
  answer?: { resolve(rows: any[]): void; reject(e: Error): void };
}

/**
 * One database transaction of a service: its state changes, the messages it sends (outbox) and the inbox. Its
 * statements go out in batches (`StatementBatch`): those queued in one tick go together, at its end, so a statement
 * whose result is not needed (`execute`) shares the round trip of the next one waited for, or of COMMIT.
 */
export class Tx implements TxSql {
  /** @internal */ readonly outgoing: OutgoingMessage[] = [];
  /** @internal */ readonly committed: (() => void)[] = [];
  /** The messages of the consumer batch this transaction handles (`Transactor.handler`); none outside one. */
  messages: readonly InboundMessage[] = [];
  /** @internal A batch failed before Postgres confirmed a statement it prepared: drop the connection. */
  unsurePrepared = false;

  /** Statements not sent yet, and whether a flush at the end of this tick is due. */
  private queue: Queued[] = [];
  private flushDue = false;
  /** The batches sent, once answered. */
  private sent: Promise<void> = Promise.resolve();
  /** The first statement that failed: the transaction is aborted, and what comes next throws it. */
  private failed: Error | undefined;
  /** Work the commit waits for (`beforeCommit`), and the first of it that failed. */
  private pending: Promise<void>[] = [];
  private pendingFailed: Error | undefined;
  /** Committed or rolled back: its connection may be back in the pool, serving another transaction. */
  private over = false;
  /** Round trips being waited for, and since when (`measured`). */
  private waiting = 0;
  private waitSince = 0;

  constructor(
    private readonly connection: QueryConnection,
    readonly stats = new PgStats(),
  ) {}

  /** A `Tx` on a pooled `pg` client, its statements sent in `StatementBatch`es. BEGIN is the caller's (`open`). */
  static onClient(client: PoolClient, stats = new PgStats()): Tx {
    return new Tx({ batch: (statements) => runBatch(client, statements) }, stats);
  }

  /**
   * Runs `work` on a `Tx` in a transaction TypeORM opened (`ds.transaction((m) => Tx.within(m, work))`), and waits for
   * its queued statements: for code outside `Transactor`, such as tests. Statements run one by one.
   * @throws what `work` or one of its statements throws (TypeORM then rolls back).
   */
  static async within<T>(manager: EntityManager, work: (tx: Tx) => T | Promise<T>): Promise<T> {
    const tx = new Tx({
      async batch(statements) {
        const rows: any[][] = [];
        try {
          for (const { text, values } of statements) rows.push((await manager.queryRunner!.query(text, values, true)).records);
          return { rows };
        } catch (e) {
          return { rows, error: e as Error };
        }
      },
    });
    const value = await work(tx);
    await tx.settle();
    tx.flush();
    await tx.sent;
    tx.throwIfFailed();
    return value;
  }

  /**
   * Queues `msg` in the outbox; it is written in this transaction and published after commit. Its body is checked
   * against its subject's class at compile time (`Message`: a subject without a `MessageTypes` entry does not compile).
   */
  send(msg: Message & Omit<OutgoingMessage, 'subject' | 'body'>): void {
    // The trace it continues: the span active where it is sent (the consume span of the message that caused it).
    this.outgoing.push({ ...msg, traceparent: msg.traceparent ?? traceparentOf() });
  }

  /**
   * Makes the commit wait for `work`, and fail if it rejects (the transaction rolls back): for a handler that starts a
   * statement whose answer it acts on, and returns without waiting for it, so the next messages of its batch queue
   * their statements in the same round trip — one round trip for the batch, where waiting for each answer takes one per
   * message.
   */
  beforeCommit(work: Promise<unknown>): void {
    // Caught at once: a rejection nobody waits for yet would end the process (Node's unhandled rejections).
    this.pending.push(work.then(noop, (e: Error) => void (this.pendingFailed ??= e)));
  }

  /** Waits for the work `beforeCommit` was given (and what it gave in turn). @throws the first of it that failed. */
  private async settle(): Promise<void> {
    while (this.pending.length > 0) await Promise.all(this.pending.splice(0));
    if (this.pendingFailed) throw this.pendingFailed;
  }

  /** Runs `fn` once this transaction committed (not at all if it rolls back): for counting what became durable. */
  afterCommit(fn: () => void): void {
    this.committed.push(fn);
  }

  /**
   * BEGIN (`BEGIN_GENERIC`), queued ahead of what comes next, and — given a batch's inbox keys — their claim
   * (`CLAIM`, prepared), answered in the same round trip.
   * @returns the keys the inbox did not hold yet: the others were handled before and must change nothing.
   * @throws PermanentError for a key with a NUL character (Postgres text cannot hold one).
   * @internal `Transactor` opens its transactions with it.
   */
  async open(claim?: InboxClaim): Promise<Set<string>> {
    if (!claim || claim.keys.length === 0) {
      this.begin();
      return new Set();
    }
    const values = claimValues(claim);
    this.begin();
    return claimedKeys(await this.query<{ message_id: string }>(CLAIM, values));
  }

  /**
   * As `open` with a claim, but not waited for: the work's first statement goes in the same batch and shares its
   * round trip. If it fails, the work's next statement throws its error.
   * @returns the keys the inbox did not hold yet, once Postgres answered.
   * @throws PermanentError for a key with a NUL character.
   * @internal `Transactor` opens its speculative transactions with it.
   */
  claimAhead(claim: InboxClaim): Promise<Set<string>> {
    const values = claimValues(claim);
    this.begin();
    return this.ask(prepared(CLAIM, values)).then(claimedKeys);
  }

  /** BEGIN with generic plans (`BEGIN_GENERIC`), queued ahead of what comes next. */
  private begin(): void {
    for (const text of BEGIN_GENERIC) this.enqueue({ text });
  }

  /**
   * Once the work given to `beforeCommit` is done: the delete of `published` outbox rows (the relay's, see
   * `OutboxRelay.takeDeletes`), the outbox insert of what was sent, and COMMIT, in one round trip (one batch, behind
   * the statements still queued).
   * @returns the outbox rows written.
   * @throws what that work or a statement threw.
   * @internal `Transactor` commits with it.
   */
  async close(published: string[] = []): Promise<OutboxRow[]> {
    await this.settle();
    const rows: OutboxRow[] = this.outgoing.map(({ subject, body, id, ...headers }) => ({
      id: id ?? randomUUID(),
      subject,
      headers,
      payload: body,
    }));
    if (published.length > 0) this.execute(DELETE_PUBLISHED, [published]);
    if (rows.length > 0) this.execute(INSERT_OUTBOX, [JSON.stringify(rows)]);
    await this.query('commit');
    await this.sent;
    this.over = true;
    this.throwIfFailed();
    return rows;
  }

  /**
   * ROLLBACK, once the work given to `beforeCommit` is done and the batches sent are answered (what is still queued is
   * dropped). @internal `Transactor` rolls back with it.
   */
  async rollback(): Promise<void> {
    // Work still running (`beforeCommit`) may queue statements: it finishes first (they fail in the aborted
    // transaction), and what comes after is refused.
    await Promise.all(this.pending);
    this.over = true;
    this.queue = [];
    await this.sent;
    const { error } = await this.connection.batch([{ text: 'rollback' }]);
    if (error) throw error;
  }

  /** Queues a statement whose result is not needed (`TxSql.execute`): it goes with the next batch. Prepared, as `query`'s. */
  execute(sql: string, params?: unknown[]): void {
    this.enqueue(params ? prepared(sql, params) : { text: sql });
  }

  /**
   * Runs SQL in this transaction; returns the rows (also for `update … returning` / `delete … returning`). With
   * `params`, a prepared statement (`prepared`) unless `options.planEach`: keep values out of `sql`.
   */
  async query<T extends object>(sql: string, params?: unknown[], options?: QueryOptions): Promise<T[]> {
    const statement: Statement = params && !options?.planEach ? prepared(sql, params) : { text: sql, values: params };
    return this.measured(() => this.ask(statement));
  }

  /** Sends the queued statements now, as one batch (they would go at the end of this tick). */
  private flush(): void {
    this.flushDue = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const answered = this.connection.batch(batch.map((q) => q.statement)).then(
      ({ rows, error, unsurePrepared }) => {
        if (error) this.failed ??= error;
        if (unsurePrepared) this.unsurePrepared = true;
        batch.forEach((q, i) => {
          if (i < rows.length) q.answer?.resolve(rows[i]);
          else q.answer?.reject(this.failed ?? new Error('Postgres answered the batch without its last statements'));
        });
      },
      (e: Error) => {
        this.failed ??= e;
        for (const q of batch) q.answer?.reject(e);
      },
    );
    this.sent = this.sent.then(() => answered);
  }

  /** Queues `statement` for the batch sent at the end of this tick (`answer` gets its rows, or its failure). */
  private enqueue(statement: Statement, answer?: Queued['answer']): void {
    if (this.over) throw new Error('this transaction is over (committed or rolled back): a statement now would run outside it');
    this.stats.statements++;
    if (!this.flushDue) {
      this.flushDue = true;
      process.nextTick(() => this.flush());
    }
    this.queue.push({ statement, answer });
  }

  /** Queues `statement` with its rows wanted; they come once its batch is answered. */
  private ask(statement: Statement): Promise<any[]> {
    return new Promise((resolve, reject) => this.enqueue({ ...statement, rows: true }, { resolve, reject }));
  }

  /**
   * One round trip; a failure already known is thrown at once. An earlier statement's failure wins over the error it
   * caused this one (25P02, "current transaction is aborted"). Queries awaited together (`Promise.all`, one batch)
   * count as one round trip, and their wait once.
   */
  private async measured<T>(roundTrip: () => Promise<T>): Promise<T> {
    if (this.waiting++ === 0) {
      this.stats.roundTrips++;
      this.waitSince = performance.now();
    }
    try {
      this.throwIfFailed();
      return await roundTrip();
    } catch (e) {
      throw this.failed ?? e;
    } finally {
      if (--this.waiting === 0) this.stats.ms += performance.now() - this.waitSince;
    }
  }

  private throwIfFailed(): void {
    if (this.failed) throw this.failed;
  }
}

/**
 * BEGIN, and generic plans for the prepared statements run in the transaction (`set local`: outside it, such as a
 * read on the same connection, Postgres plans as it would). By default Postgres re-plans a prepared statement on
 * every execution when a plan for its parameter values looks cheaper than the generic one, and for an array
 * parameter (`= any($1)`, `unnest($1)`), whose length it then knows, it always does: planning was a third of the
 * statement time of a saga one at a time. A statement whose plan must follow its table's growth is sent unnamed
 * (`QueryOptions.planEach`), so its generic plan is made anew each time.
 * Source: PostgreSQL docs, PREPARE (`plan_cache_mode`), SET (`SET LOCAL`).
 */
const BEGIN_GENERIC = ['begin', 'set local plan_cache_mode = force_generic_plan'];

/**
 * The claim of a batch's inbox keys: those the inbox did not hold are inserted and returned. Prepared with the keys
 * as an array parameter, so Postgres parses it once per connection rather than once per batch.
 */
const CLAIM = `insert into inbox (consumer, message_id) select $1, unnest($2::text[]) on conflict do nothing returning message_id`;

/** The delete of outbox rows the relay published (by id). */
const DELETE_PUBLISHED = 'delete from outbox where id = any($1::uuid[])';

/** The outbox insert of a transaction's messages, given as one JSON array of `OutboxRow`s. */
const INSERT_OUTBOX = `insert into outbox (id, subject, headers, payload)
   select id, subject, headers, payload from jsonb_to_recordset($1::jsonb) as r(id uuid, subject text, headers jsonb, payload jsonb)`;

/** `CLAIM`'s parameters. @throws PermanentError for a key with a NUL character, which Postgres text cannot hold. */
function claimValues(claim: InboxClaim): unknown[] {
  for (const key of claim.keys) {
    if (key.includes('\u0000')) throw new PermanentError('an inbox key holds a NUL character, which Postgres text cannot hold');
  }
  return [claim.consumer, claim.keys];
}

const claimedKeys = (claimed: { message_id: string }[]) => new Set(claimed.map((r) => r.message_id));

/**
 * Runs `work` for each of `msgs`: those with the same ordering key one after another, in the order given (one whose
 * predecessor failed does not run), the others concurrently, so their statements go to Postgres in the same batches.
 * Waits until every one has settled, so none still queues statements when the transaction ends.
 * @throws the first failure, in the order given.
 */
async function byOrderingKey(
  msgs: InboundMessage[],
  keyOf: (body: unknown) => string,
  work: (msg: InboundMessage) => Promise<void>,
): Promise<void> {
  const last = new Map<string, Promise<void>>();
  const runs = msgs.map((msg) => {
    const key = keyOf(msg.body);
    const run = (last.get(key) ?? Promise.resolve()).then(() => work(msg));
    last.set(key, run);
    return run;
  });
  const failed = (await Promise.allSettled(runs)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * A speculative transaction's claim found keys the inbox already held: it rolled back, and the batch runs again
 * with `fresh` (the keys that claim did get) only.
 */
class AlreadyClaimed extends Error {
  constructor(readonly fresh: Set<string>) {
    super('some inbox keys of the batch were claimed before');
  }
}

/** A batch's inbox claim: the consumer's inbox name and its messages' inbox keys. */
export interface InboxClaim {
  consumer: string;
  keys: string[];
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
   * On one pooled client, through the circuit breaker: BEGIN with the inbox claim (one round trip; with `speculate`,
   * in one batch with `work`'s first statement, `work` told every key is new), `work`, then the outbox insert, the
   * delete of rows the relay has published, and COMMIT (one round trip). ROLLBACK when anything throws (a client whose
   * rollback failed, whose prepared statements went stale, or that may hold a statement it does not know it
   * prepared, is dropped). After commit, the outbox rows go to the relay and the `afterCommit` callbacks run.
   * @throws AlreadyClaimed when a speculative claim found keys the inbox held (rolled back); what `work` or Postgres
   *   throws (rolled back); UnavailableError at once while the circuit is open.
   */
  private async transact<T>(
    stats: PgStats,
    claim: InboxClaim | undefined,
    work: (tx: Tx, claimed: Set<string>) => Promise<T>,
    speculate = false,
  ): Promise<T> {
    let rows: OutboxRow[] = [];
    let committed: (() => void)[] = [];
    const result = await this.breaker.execute(async () => {
      const client = await this.pool.connect();
      const tx = Tx.onClient(client, stats);
      let broken: Error | undefined;
      // A connection lost between statements is reported as an 'error' event (which would end the process unheard);
      // the next statement fails with it, and the client is dropped on release.
      const lost = (e: Error) => (broken = e);
      client.on('error', lost);
      let published: string[] = [];
      const keys = new Set(claim?.keys);
      let claiming: Promise<Set<string>> | undefined;
      const notAllNew = async () => {
        const claimed = await claiming?.catch(() => undefined);
        return claimed && claimed.size < keys.size ? new AlreadyClaimed(claimed) : undefined;
      };
      try {
        // Speculation: the work runs as if every key were new, its first statement behind the claim in one round trip.
        if (speculate && claim && keys.size > 0) {
          claiming = tx.claimAhead(claim);
          claiming.catch(() => undefined); // awaited below; its failure is also the work's
        }
        const value = await work(tx, claiming ? new Set(keys) : await tx.open(claim));
        const duplicates = await notAllNew();
        if (duplicates) throw duplicates;
        published = this.relay.takeDeletes();
        rows = await tx.close(published);
        committed = tx.committed;
        return value;
      } catch (e) {
        this.relay.returnDeletes(published);
        await tx.rollback().catch((rollbackFailed: Error) => (broken = rollbackFailed));
        // Its prepared statements would fail again: a new connection prepares them anew.
        if (sqlState(e) === STALE_PLAN || tx.unsurePrepared) broken ??= e as Error;
        // A failure of work that ran on a message handled before does not count: that message is left out.
        throw e instanceof AlreadyClaimed ? e : ((await notAllNew()) ?? e);
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
   * The handler of a consumer: each message's `works[subject]` runs in one transaction for the whole batch (one
   * after another, or by ordering key when the consumer has one: `ConsumerSpec.orderingKey`), guarded by the inbox
   * (pattern: "Idempotent consumer"): a message whose inbox key the inbox already holds (redelivered, re-published,
   * or twice in the batch) changes nothing. The batch runs speculatively, as if each key were new, its first
   * statement pipelined behind BEGIN and the claim (one round trip fewer); when the claim finds a key the inbox held,
   * the transaction rolls back — whatever the work did or threw — and the batch runs again without that message.
   * (So a repeat's work may run, but what it wrote never commits; an effect outside the transaction, such as a
   * notification channel's, is at-least-once as it is for any rolled-back transaction.) Per batch it measures how
   * long its messages waited in the stream, and its statements, round trips and time in Postgres
   * (`orderflow_stream_wait_seconds`, `orderflow_pg_statements_total`, `orderflow_pg_round_trips_total`,
   * `orderflow_pg_seconds_total`).
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
      const run = (batch: InboundMessage[], speculate: boolean) =>
        this.transact(
          stats,
          { consumer: inbox, keys: batch.map((msg) => msg.inboxKey) },
          async (tx, claimed) => {
            tx.messages = batch;
            const fresh = batch.filter((msg) => claimed.delete(msg.inboxKey));
            const work = (msg: InboundMessage) => works[msg.subject](tx, msg);
            if (spec.orderingKey) await byOrderingKey(fresh, spec.orderingKey, work);
            else for (const msg of fresh) await work(msg);
          },
          speculate,
        );
      try {
        // Speculatively first; when the inbox held some keys, again without their messages.
        await run(msgs, true).catch(async (e) => {
          if (!(e instanceof AlreadyClaimed)) throw e;
          const fresh = msgs.filter((msg) => e.fresh.has(msg.inboxKey));
          if (fresh.length > 0) await run(fresh, false);
        });
      } finally {
        m?.pgStatements.inc(consumer, stats.statements);
        m?.pgRoundTrips.inc(consumer, stats.roundTrips);
        m?.pgSeconds.inc(consumer, stats.ms / 1000);
      }
    };
  }
}
