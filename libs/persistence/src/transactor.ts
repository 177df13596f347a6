import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { InboundMessage, MessageHandler, OutgoingMessage } from '@orderflow/messaging';
import { OutboxRelay, OutboxRow } from './outbox.relay';

/** One database transaction of a service: its state changes, the messages it sends (outbox) and the inbox. */
export class Tx {
  /** @internal */ readonly outgoing: OutgoingMessage[] = [];

  constructor(readonly manager: EntityManager) {}

  /** Queues `msg` in the outbox; it is written in this transaction and published after commit. */
  send(msg: OutgoingMessage): void {
    this.outgoing.push(msg);
  }

  /**
   * Records `(consumer, messageId)` in the inbox (pattern: "Idempotent consumer").
   * @returns false when it was already there: the message was handled before and must change nothing.
   */
  async claim(consumer: string, messageId: string): Promise<boolean> {
    const rows = await this.query(
      'insert into inbox (consumer, message_id) values ($1, $2) on conflict do nothing returning 1',
      [consumer, messageId],
    );
    return rows.length === 1;
  }

  /** Runs SQL in this transaction; returns the rows (also for `update … returning` / `delete … returning`). */
  async query<T = any>(sql: string, params?: unknown[]): Promise<T[]> {
    const result = await this.manager.queryRunner!.query(sql, params, true);
    return result.records;
  }
}

/** Runs units of work: state change + inbox + outbox in one Postgres transaction, then hands the outbox rows to the relay. */
export class Transactor {
  constructor(private readonly ds: DataSource, private readonly relay: OutboxRelay) {}

  async run<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    let rows: OutboxRow[] = [];
    const result = await this.ds.transaction(async (manager) => {
      const tx = new Tx(manager);
      const value = await work(tx);
      if (tx.outgoing.length > 0) rows = await insertOutbox(manager, tx.outgoing);
      return value;
    });
    if (rows.length > 0) this.relay.publishCommitted(rows);
    return result;
  }

  /**
   * A consumer handler that runs `work` in a transaction guarded by the inbox: a redelivered or
   * re-published message (same id) is acked without effect.
   */
  inboxed<T>(consumer: string, work: (tx: Tx, msg: InboundMessage<T>) => Promise<void>): MessageHandler<T> {
    return (msg) =>
      this.run(async (tx) => {
        if (await tx.claim(consumer, msg.messageId)) await work(tx, msg);
      });
  }
}

async function insertOutbox(manager: EntityManager, messages: OutgoingMessage[]): Promise<OutboxRow[]> {
  const rows: OutboxRow[] = messages.map(({ subject, body, ...headers }) => ({ id: randomUUID(), subject, headers, payload: body }));
  const params = rows.flatMap((r) => [r.id, r.subject, JSON.stringify(r.headers), JSON.stringify(r.payload)]);
  const values = rows.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}, $${i * 4 + 4})`);
  await manager.query(`insert into outbox (id, subject, headers, payload) values ${values.join(', ')}`, params);
  return rows;
}
