import { readdirSync, readFileSync } from 'node:fs';
import { parseExposition, Sample, total } from '../top/exposition';

export const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
/** The sum of a record's values (CPU ms per saga of several processes). */
export const sum = (r: Record<string, number> = {}) => Object.values(r).reduce((a, b) => a + b, 0);

export const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`: 100 on Linux). */
const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used, from /proc/PID/stat; 0 when it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces, so split after its closing parenthesis): utime is the 14th
    // field of the line, stime the 15th (proc(5)).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used so far by every process on this machine whose command name is `comm` (`postgres`, `nats-server`):
 * the servers' share of a run, as the difference of two readings. A process that exits between them takes its CPU
 * with it (Postgres backends live as long as the apps' pools, so a run's readings hold theirs).
 */
export function cpuSecondsOf(comm: string): number {
  let sum = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) sum += cpuSeconds(Number(pid));
    } catch {
      // it exited while we looked
    }
  }
  return sum;
}

/** A process's peak resident set so far (VmHWM, MB) from /proc/PID/status; 0 when it cannot be read. */
export const peakRssMb = (pid: number): number => statusMb(pid, 'VmHWM');

/** A process's resident set now (VmRSS, MB) from /proc/PID/status; 0 when it cannot be read. */
export const rssMb = (pid: number): number => statusMb(pid, 'VmRSS');

/**
 * A process's proportional set size now (Pss, MB) from /proc/PID/smaps_rollup: its resident set with each page
 * shared with other processes (the node binary's code, which every app maps) counted as its share; 0 when it cannot
 * be read. Source: Linux docs, "The /proc Filesystem" (smaps_rollup).
 */
export function pssMb(pid: number): number {
  try {
    const kb = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
}

function statusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Every sample of each app's `/metrics` (an app that does not answer gives none). */
export async function scrape(urls: string[]): Promise<Sample[]> {
  const texts = await Promise.all(
    urls.map((u) =>
      fetch(u).then(
        (r) => (r.ok ? r.text() : ''),
        () => '',
      ),
    ),
  );
  return texts.flatMap(parseExposition);
}

/** What one durable consumer did between two scrapes: a hop of the saga (or several, when it handles several subjects). */
export interface HopFigures {
  consumer: string;
  messages: number;
  /** Messages per batch transaction. */
  per_batch: number;
  /** Statements sent to Postgres per message (BEGIN … COMMIT of its batch shared among its messages). */
  statements_per_msg: number;
  /** Round trips to Postgres per message: waits for an answer (statements sent together or pipelined share one). */
  round_trips_per_msg: number;
  round_trips_per_batch: number;
  /** Milliseconds per message waiting on Postgres. */
  pg_ms_per_msg: number;
  /** Milliseconds per message in its batch transaction (Postgres included). */
  tx_ms_per_msg: number;
  /** Mean milliseconds a message waited in its stream before its batch started. */
  stream_wait_ms: number;
}

/**
 * The per-hop figures of the pipeline between scrapes `before` and `after`: per durable consumer, from the apps'
 * counters (`orderflow_pg_statements_total`, `orderflow_pg_round_trips_total`, `orderflow_pg_seconds_total`, `orderflow_batch_*`,
 * `orderflow_stream_wait_seconds`); plus the outbox relay's deletes as their own line.
 */
export function hopFigures(before: Sample[], after: Sample[]): HopFigures[] {
  const delta = (name: string, where: Record<string, string>) => total(after, name, where) - total(before, name, where);
  const consumers = [...new Set(after.filter((s) => s.name === 'orderflow_pg_round_trips_total').map((s) => s.labels.consumer))].sort();
  return consumers.flatMap((consumer) => {
    const where = { consumer };
    const roundTrips = delta('orderflow_pg_round_trips_total', where);
    const batches = delta('orderflow_batch_size_count', where);
    const messages = consumer === 'outbox relay' ? roundTrips : delta('orderflow_batch_size_sum', where);
    if (messages <= 0) return [];
    const per = (x: number, d = 2) => round(x / messages, d);
    const waits = delta('orderflow_stream_wait_seconds_count', where);
    return [
      {
        consumer,
        messages,
        per_batch: batches ? round(messages / batches, 2) : 0,
        statements_per_msg: per(delta('orderflow_pg_statements_total', where)),
        round_trips_per_msg: per(roundTrips),
        round_trips_per_batch: batches ? round(roundTrips / batches, 2) : 1,
        pg_ms_per_msg: per(delta('orderflow_pg_seconds_total', where) * 1000, 3),
        tx_ms_per_msg: per(delta('orderflow_batch_duration_seconds_sum', where) * 1000, 3),
        stream_wait_ms: waits ? round((delta('orderflow_stream_wait_seconds_sum', where) * 1000) / waits, 2) : 0,
      },
    ];
  });
}

/** Milliseconds per message in each subject's handler (its Nest pipeline and statements) between two scrapes. */
export function handlerMs(before: Sample[], after: Sample[]): Record<string, number> {
  const subjects = [...new Set(after.filter((s) => s.name === 'orderflow_handler_duration_seconds_count').map((s) => s.labels.subject))];
  const out: Record<string, number> = {};
  for (const subject of subjects.sort()) {
    const d = (name: string) => total(after, name, { subject }) - total(before, name, { subject });
    const n = d('orderflow_handler_duration_seconds_count');
    if (n > 0) out[subject] = round((d('orderflow_handler_duration_seconds_sum') * 1000) / n, 3);
  }
  return out;
}

/**
 * Runs `saga` at `rate` per second for about `seconds` (at least 50 sagas), each started on schedule whatever the
 * others are doing (an open loop: a queue shows as latency); resolves with their latencies' percentiles.
 */
export async function atRate(rate: number, seconds: number, saga: () => Promise<number>) {
  const n = Math.max(50, Math.round(rate * seconds));
  const lat: number[] = [];
  const all: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    all.push(saga().then((ms) => void lat.push(ms)));
  }
  await Promise.all(all);
  return {
    rate_per_s: round(rate, 0),
    sagas: n,
    p50_ms: round(pct(lat, 0.5)),
    p95_ms: round(pct(lat, 0.95)),
    p99_ms: round(pct(lat, 0.99)),
  };
}
