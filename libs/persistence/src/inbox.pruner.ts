import type { Logger } from 'pino';
import { DataSource } from 'typeorm';

/**
 * Deletes inbox rows older than `retentionMs`, `batch` rows per statement (short statements: few locks, no long
 * transaction), every `intervalMs`, on its own timer: never on the message path, never two passes at once.
 * The retention is at least the dead-letter retention (config), so a replay of a dead letter is still recognised.
 */
export class InboxPruner {
  private timer?: NodeJS.Timeout;
  private pass?: Promise<unknown>;
  private stopped = false;

  constructor(
    private readonly ds: DataSource,
    private readonly log: Logger,
    private readonly retentionMs: number,
    private readonly intervalMs: number,
    private readonly batch = 1000,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Deletes every row past the retention, a batch at a time; returns how many. */
  async pruneOnce(): Promise<number> {
    let total = 0;
    for (let n = this.batch; n === this.batch && !this.stopped; total += n) {
      const [, count] = await this.ds.query(
        `delete from inbox where ctid = any(array(
           select ctid from inbox where received_at < now() - make_interval(secs => $1::double precision / 1000) limit $2))`,
        [this.retentionMs, this.batch],
      );
      n = Number(count);
    }
    if (total > 0) this.log.info({ rows: total }, 'inbox pruned');
    return total;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.pass = this.pruneOnce()
        .catch((e) => this.log.warn({ err: e }, 'inbox pruning failed; will try again'))
        .finally(() => !this.stopped && this.schedule());
    }, this.intervalMs);
  }

  /** Stops the timer and waits for a pass in progress to end (after its current batch). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pass;
  }
}
