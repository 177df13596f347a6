import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { JetStreamClient, OutgoingMessage } from '@orderflow/messaging';

const BATCH = 256;

interface OutboxRow {
  id: string;
  subject: string;
  headers: Omit<OutgoingMessage, 'subject' | 'body'>;
  payload: object;
}

/**
 * Transactional outbox relay (pattern: "Transactional outbox", microservices.io). Publishes the rows of the
 * service's `outbox` table to JetStream with `Nats-Msg-Id` = row id, then deletes them, in one transaction
 * that holds the rows `FOR UPDATE SKIP LOCKED` (several instances share the work). A crash between publish
 * and delete re-publishes the row, and the stream's duplicate window drops the copy.
 * Woken by `kick()` after every commit that wrote to the outbox, and by a timer for rows a crash left behind.
 */
export class OutboxRelay {
  private running = false;
  private again = false;
  private timer?: NodeJS.Timeout;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly ds: DataSource,
    private readonly client: JetStreamClient,
    private readonly log: Logger,
    private readonly pollMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.kick();
  }

  /** Publishes pending rows soon; calls made while a pass runs fold into one more pass. */
  kick(): void {
    if (!this.timer) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.idle = this.drain().finally(() => (this.running = false));
  }

  private async drain(): Promise<void> {
    try {
      do {
        this.again = false;
        while ((await this.publishBatch()) === BATCH);
      } while (this.again);
    } catch (e) {
      // Left in the table: the next kick or tick retries.
      this.log.warn({ err: e }, 'outbox relay pass failed; will retry');
    }
  }

  private publishBatch(): Promise<number> {
    return this.ds.transaction(async (m) => {
      const rows: OutboxRow[] = await m.query(
        'select id, subject, headers, payload from outbox order by created_at limit $1 for update skip locked',
        [BATCH],
      );
      if (rows.length === 0) return 0;
      await Promise.all(rows.map((r) => this.client.publish({ ...r.headers, subject: r.subject, body: r.payload }, r.id)));
      await m.query('delete from outbox where id = any($1::uuid[])', [rows.map((r) => r.id)]);
      return rows.length;
    });
  }

  /** Stops the timer and waits for the pass in progress. Rows still pending are published at the next start. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.idle;
  }
}
