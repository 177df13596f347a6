import {
  BrokenCircuitError,
  CircuitState,
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  IsolatedCircuitError,
} from 'cockatiel';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { Availability, classify, UnavailableError } from '@orderflow/messaging';

/**
 * A circuit breaker around one app's database (pattern: "Circuit breaker", M. Nygard, *Release It!*; library:
 * cockatiel). A connection-class failure (`classify` → `unavailable`) opens it: from then on `execute` fails
 * fast with an UnavailableError, the consume loops hold their messages (`whenAvailable`), the outbox sweep and the
 * saga deadline sweep skip their turns, and queries answer "unavailable". While open it probes with `select 1`,
 * half-opening after an exponential backoff (0.5 s doubling to `maxProbeDelayMs`); the first success closes it
 * and everything resumes.
 */
export class DatabaseBreaker implements Availability {
  private readonly policy;
  private closed: Promise<void> = Promise.resolve();
  private probing?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly ds: DataSource,
    private readonly log: Logger,
    maxProbeDelayMs = 2_000,
  ) {
    this.policy = circuitBreaker(
      handleWhen((e) => classify(e) === 'unavailable'),
      {
        halfOpenAfter: new ExponentialBackoff({ initialDelay: 500, maxDelay: maxProbeDelayMs }),
        breaker: new ConsecutiveBreaker(1),
      },
    );
    let reopen: (() => void) | undefined;
    this.policy.onBreak((reason) => {
      // A failed half-open probe breaks the circuit again: one warning per outage, not per probe.
      if (reopen) return;
      this.closed = new Promise<void>((r) => (reopen = r));
      this.log.warn(
        { err: 'error' in reason ? reason.error : undefined },
        'database unavailable: circuit open; consumers hold their messages, sweeps pause',
      );
      this.probing ??= this.probe();
    });
    this.policy.onReset(() => {
      this.log.info('database back: circuit closed; resuming');
      reopen?.();
      reopen = undefined;
    });
  }

  /** True while the circuit is closed (the database answered last time). */
  get available(): boolean {
    return this.policy.state === CircuitState.Closed;
  }

  /** Resolves when the circuit is closed (at once if it is). */
  whenAvailable(): Promise<void> {
    return this.closed;
  }

  /**
   * Runs `fn` through the breaker.
   * @throws UnavailableError when the circuit is open; whatever `fn` throws otherwise.
   */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await this.policy.execute(fn);
    } catch (e) {
      if (e instanceof BrokenCircuitError || e instanceof IsolatedCircuitError)
        throw new UnavailableError('the database is unavailable (circuit open)', { cause: e });
      throw e;
    }
  }

  /** While open: try `select 1` through the breaker; it lets one through once it half-opens. */
  private async probe(): Promise<void> {
    while (!this.available && !this.stopped) {
      await new Promise((r) => setTimeout(r, 250));
      await this.policy.execute(() => this.ds.query('select 1')).catch(() => undefined);
    }
    this.probing = undefined;
  }

  /** Stops probing (at shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.probing;
  }
}
