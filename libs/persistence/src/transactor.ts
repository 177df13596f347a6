import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { ConsumerSpec, Message } from '@orderflow/contracts';
import { traceparentOf } from '@orderflow/telemetry';
import { BatchHandler, InboundMessage, OutgoingMessage } from '@orderflow/messaging';
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

/** One database transaction of a service: its state changes, the messages it sends (outbox) and the inbox. */
export class Tx implements Sql {
  /** @internal */ readonly outgoing: OutgoingMessage[] = [];
  /** @internal */ readonly committed: (() => void)[] = [];

  constructor(readonly manager: EntityManager) {}

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
   * Records `(consumer, id)` in the inbox for each id, in one statement.
   * @returns the ids that were not there yet: the others were handled before and must change nothing.
   */
  async claimAll(consumer: string, messageIds: string[]): Promise<Set<string>> {
    const rows = await this.query<{ message_id: string }>(
      'insert into inbox (consumer, message_id) select $1, unnest($2::text[]) on conflict do nothing returning message_id',
      [consumer, messageIds],
    );
    return new Set(rows.map((r) => r.message_id));
  }

  /** Runs SQL in this transaction; returns the rows (also for `update … returning` / `delete … returning`). */
  async query<T extends object>(sql: string, params?: unknown[]): Promise<T[]> {
    const result = await this.manager.queryRunner!.query(sql, params, true);
    return result.records;
  }
}

/**
 * Runs units of work: state change + inbox + outbox in one Postgres transaction (through the database's circuit
 * breaker), then hands the outbox rows to the relay.
 */
export class Transactor {
  constructor(
    private readonly ds: DataSource,
    private readonly relay: OutboxRelay,
    private readonly breaker: DatabaseBreaker,
  ) {}

  /** False while the database's circuit is open: timers with work of their own skip their turn. */
  get available(): boolean {
    return this.breaker.available;
  }

  /** @throws UnavailableError at once while the circuit is open. */
  async run<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    let rows: OutboxRow[] = [];
    let committed: (() => void)[] = [];
    const result = await this.breaker.execute(() =>
      this.ds.transaction(async (manager) => {
        const tx = new Tx(manager);
        const value = await work(tx);
        if (tx.outgoing.length > 0) rows = await insertOutbox(manager, tx.outgoing);
        committed = tx.committed;
        return value;
      }),
    );
    if (rows.length > 0) this.relay.publishCommitted(rows);
    for (const fn of committed) fn();
    return result;
  }

  /**
   * The handler of a consumer: each message's `works[subject]` runs in one transaction for the whole batch,
   * guarded by the inbox (pattern: "Idempotent consumer"): a message whose inbox key the inbox already holds
   * (redelivered, re-published, or twice in the batch) changes nothing.
   * @throws Error at once when `works` lacks a subject the consumer handles.
   */
  handler(spec: ConsumerSpec, works: Record<string, Work>): BatchHandler {
    for (const subject of spec.handles) {
      if (!works[subject]) throw new Error(`consumer ${spec.durable} handles ${subject} but has no work for it`);
    }
    // The durable name alone is not unique: the saga's `order-saga-replies` exists on two streams.
    const inbox = `${spec.stream}/${spec.durable}`;
    return (msgs) =>
      this.run(async (tx) => {
        const claimed = await tx.claimAll(
          inbox,
          msgs.map((m) => m.inboxKey),
        );
        for (const msg of msgs) {
          if (claimed.delete(msg.inboxKey)) await works[msg.subject](tx, msg);
        }
      });
  }
}

async function insertOutbox(manager: EntityManager, messages: OutgoingMessage[]): Promise<OutboxRow[]> {
  const rows: OutboxRow[] = messages.map(({ subject, body, id, ...headers }) => ({
    id: id ?? randomUUID(),
    subject,
    headers,
    payload: body,
  }));
  const params = rows.flatMap((r) => [r.id, r.subject, JSON.stringify(r.headers), JSON.stringify(r.payload)]);
  const values = rows.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`);
  await manager.query(`insert into outbox (id, subject, headers, payload) values ${values.join(', ')}`, params);
  return rows;
}
