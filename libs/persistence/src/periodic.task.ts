import type { Logger } from 'pino';

/**
 * Runs `task` every `intervalMs`, off the message path and never two runs at once: the next run is scheduled when
 * one ends, so a slow run delays the next instead of overlapping it. While `enabled()` is false (a circuit open)
 * a turn is skipped. A failed run is logged and the next one tries again; `stop()` clears the timer and waits for
 * a run in progress.
 */
export class PeriodicTask {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly task: () => Promise<unknown>,
    private readonly log: Logger,
    private readonly enabled: () => boolean = () => true,
  ) {}

  /** Starts the timer; the first run comes after `firstAfterMs` (default: one interval). Starting it again while it runs does nothing. */
  start(firstAfterMs = this.intervalMs): void {
    // A second timer would run the task twice as often and outlive stop() (it keeps the process alive).
    if (this.timer && !this.stopped) return;
    this.stopped = false;
    this.timer = setTimeout(() => this.run(), firstAfterMs);
  }

  private run(): void {
    if (this.stopped) return;
    const turn = this.enabled() ? this.task() : Promise.resolve();
    this.running = turn
      .then(
        () => undefined,
        (e: unknown) => this.log.warn({ err: e }, `${this.name} failed; will try again`),
      )
      .finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(() => this.run(), this.intervalMs);
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
