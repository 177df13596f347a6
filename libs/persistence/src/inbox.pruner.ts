import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { PeriodicTask } from './periodic.task';

/**
 * Deletes inbox rows older than `retentionMs`, `batch` rows per statement (short statements: few locks, no long
 * transaction), every `intervalMs`, on its own timer: never on the message path, never two passes at once.
 * The retention is at least the dead-letter retention (config), so a replay of a dead letter is still recognised.
 */
export class InboxPruner {
  private readonly timer: PeriodicTask;
  private stopped = false;

  constructor(
    private readonly ds: DataSource,
    private readonly log: Logger,
    private readonly retentionMs: number,
    intervalMs: number,
    private readonly batch = 1000,
  ) {
    this.timer = new PeriodicTask('inbox pruning', intervalMs, () => this.pruneOnce(), log);
  }

  start(): void {
    this.stopped = false;
    this.timer.start();
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

  /** Stops the timer and waits for a pass in progress to end (after its current batch). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.timer.stop();
  }
}
