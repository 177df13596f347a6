import pino from 'pino';
import { IdleHeapCompaction, ProcessProbe } from './idle-heap-compaction';

/** A process whose clock, CPU time and resident set the test moves; a compaction brings the resident set to `afterMb`. */
class FakeProcess implements ProcessProbe {
  at = 0;
  cpu = 0;
  rss = 100;
  afterMb = 100;
  compactions = 0;
  cpuMs = () => this.cpu;
  rssMb = () => this.rss;
  now = () => this.at;
  compact = () => {
    this.compactions++;
    this.rss = this.afterMb;
  };
  /** `ms` pass, `cpuMs` of them on the CPU. */
  advance(ms: number, cpuMs: number): void {
    this.at += ms;
    this.cpu += cpuMs;
  }
}

describe('IdleHeapCompaction', () => {
  const log = pino({ level: 'silent' });
  let proc: FakeProcess;
  let compaction: IdleHeapCompaction;

  beforeEach(() => {
    proc = new FakeProcess();
    compaction = new IdleHeapCompaction(proc, 16, log, 60_000);
    compaction.start();
  });
  afterEach(() => compaction.stop());

  it('compacts an idle process whose resident set grew by the threshold, once', () => {
    proc.rss = 120;
    proc.afterMb = 104;
    proc.advance(1000, 10);
    expect(compaction.check()).toBe(true);
    proc.advance(1000, 10);
    expect(compaction.check()).toBe(false);
    expect(proc.compactions).toBe(1);
  });

  it('leaves a busy process alone, however much it grew, and compacts once it is idle', () => {
    proc.rss = 170;
    proc.afterMb = 130;
    proc.advance(1000, 800);
    expect(compaction.check()).toBe(false);
    proc.advance(1000, 49);
    expect(compaction.check()).toBe(true);
    expect(proc.compactions).toBe(1);
  });

  it('leaves an idle process that grew less than the threshold alone', () => {
    proc.rss = 115;
    proc.advance(1000, 0);
    expect(compaction.check()).toBe(false);
    expect(proc.compactions).toBe(0);
  });

  it('counts growth from the resident set after the last compaction, or from where it shrank to by itself', () => {
    proc.rss = 130;
    proc.afterMb = 110;
    proc.advance(1000, 0);
    expect(compaction.check()).toBe(true); // the mark is now 110
    proc.rss = 125;
    proc.advance(1000, 0);
    expect(compaction.check()).toBe(false); // 15 MB over the mark
    proc.rss = 90;
    proc.advance(1000, 0);
    expect(compaction.check()).toBe(false); // shrank: the mark is now 90
    proc.rss = 106;
    proc.afterMb = 95;
    proc.advance(1000, 0);
    expect(compaction.check()).toBe(true);
    expect(proc.compactions).toBe(2);
  });
});
