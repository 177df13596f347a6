import type { Logger } from 'pino';

/** What `IdleHeapCompaction` reads and does; `processProbe()` in an app, a fake in tests. */
export interface ProcessProbe {
  /** The process's CPU time so far (user + system), ms. */
  cpuMs(): number;
  /** The process's resident set now, MB. */
  rssMb(): number;
  /** A full, memory-reducing garbage collection, synchronous. */
  compact(): void;
  /** A monotonic clock, ms. */
  now(): number;
}

/** V8's `gc` extension as `--expose-gc` installs it (options: V8 `src/extensions/gc-extension.cc`). */
type ExposedGc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

/**
 * This process's probe; undefined when node runs without `--expose-gc` (no way to ask V8 for a compaction). The
 * `last-resort` flavour is what V8 runs under memory pressure: full collections until nothing more is freed, with
 * compaction, and the heap's pooled pages given back to the system.
 */
export function processProbe(): ProcessProbe | undefined {
  const gc = (globalThis as { gc?: ExposedGc }).gc;
  if (typeof gc !== 'function') return undefined;
  return {
    cpuMs: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1000;
    },
    rssMb: () => process.memoryUsage.rss() / 1_048_576,
    compact: () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }),
    now: () => performance.now(),
  };
}

/** Below this share of one core over a check's interval, the process counts as idle. */
const IDLE_CPU_SHARE = 0.05;

/**
 * Gives back the memory a burst left behind, once the process is idle. Under load V8 grows its heap and keeps the
 * pages after the load is gone: the order app stayed at 161–170 MB after the bench's 10,000-saga burst, its live heap
 * about 43 MB, and V8's own memory reducer did not bring it down. Every `checkMs` this looks at the CPU the process
 * used since the last check; when that is under 5 % of a core (idle: no batch in progress) and the resident set grew by
 * `growthMb` or more since the last compaction (or the start), it runs one full, memory-reducing collection (65–90 ms
 * for the order app, while nothing else runs) and takes the resident set after it as the new mark. So an idle app
 * compacts once per burst, a busy one never, and an app whose memory does not grow never.
 * Source: V8 blog, "Getting garbage collection for free" (2015: collecting in idle time, the memory reducer); Node.js
 * docs, "--expose-gc".
 */
export class IdleHeapCompaction {
  private timer?: NodeJS.Timeout;
  private lastCpuMs = 0;
  private lastAt = 0;
  private markMb = 0;

  constructor(
    private readonly probe: ProcessProbe,
    private readonly growthMb: number,
    private readonly log: Logger,
    private readonly checkMs = 1000,
    private readonly onCompacted?: () => void,
  ) {}

  /** Starts the checks (a timer that does not keep the process alive); the resident set now is the first mark. */
  start(): void {
    if (this.timer) return;
    this.markMb = this.probe.rssMb();
    this.lastCpuMs = this.probe.cpuMs();
    this.lastAt = this.probe.now();
    this.timer = setInterval(() => this.check(), this.checkMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check (the timer's). @returns whether it compacted. */
  check(): boolean {
    const [cpuMs, now] = [this.probe.cpuMs(), this.probe.now()];
    const idle = cpuMs - this.lastCpuMs < IDLE_CPU_SHARE * (now - this.lastAt);
    const rssMb = this.probe.rssMb();
    const compacting = idle && rssMb - this.markMb >= this.growthMb;
    if (compacting) {
      this.probe.compact();
      this.markMb = this.probe.rssMb();
      this.log.info(
        { rssMbBefore: Math.round(rssMb), rssMbAfter: Math.round(this.markMb), ms: Math.round(this.probe.now() - now) },
        'idle: heap compacted',
      );
      this.onCompacted?.();
    } else if (rssMb < this.markMb) {
      this.markMb = rssMb; // it shrank by itself: growth counts from here
    }
    // A compaction's own CPU and time are not the next interval's.
    [this.lastCpuMs, this.lastAt] = compacting ? [this.probe.cpuMs(), this.probe.now()] : [cpuMs, now];
    return compacting;
  }
}
