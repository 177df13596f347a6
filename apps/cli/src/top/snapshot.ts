import { AppNames } from '@orderflow/contracts/permissions';
import { PipelineClient, ServiceInstance } from '../client';
import { parseExposition, Sample, total } from './exposition';

/** What `orderflow top` shows, summed over every instance that answered (`--once --json` prints it). */
export interface TopSnapshot {
  at: string;
  instances: { name: string; id: string; metricsUrl: string | null; scraped: boolean }[];
  /** Apps with no running instance (none answered the NATS service API). */
  missing: string[];
  /**
   * Attempts started and ended (COMPLETED or CANCELLED) since the apps started, ended per second; running, compensating
   * and FAILED now (read from the order database, as `saga list` reads them).
   */
  sagas: { started: number; finished: number; perSecond: number | null; running: number; compensating: number; failed: number };
  outcomes: { status: string; reason: string | null; count: number }[];
  /** Saga duration percentiles (ms), from the histogram's buckets since the apps started (or over the live window). */
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
  deadLetters: { total: number; bySubject: { subject: string; fingerprint: string; count: number }[] };
  outbox: { app: string; rows: number; lagSeconds: number }[];
  consumers: { stream: string; consumer: string; pending: number; ackPending: number }[];
}

/** The parsed `/metrics` of each instance by instance id (those that do not answer within `timeoutMs` are left out). */
export interface Scrape {
  at: number;
  instances: ServiceInstance[];
  families: Map<string, Sample[]>;
}

/**
 * The hosts whose metrics URLs `top` fetches: `ORDERFLOW_METRICS_HOSTS` (comma-separated), default loopback. A
 * `metrics_url` is what an instance advertises on the broker; fetching any URL it names would let whoever registers a
 * service make the CLI send requests into the operator's network.
 */
export function metricsHosts(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const hosts = (env.ORDERFLOW_METRICS_HOSTS ?? 'localhost,127.0.0.1,::1')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  return new Set(hosts);
}

/** True when `url` is http(s) on one of `hosts`. */
export function fetchable(url: string, hosts: Set<string>): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && hosts.has(u.hostname.replace(/^\[|\]$/g, '').toLowerCase());
  } catch {
    return false;
  }
}

/**
 * Scrapes every instance in the namespace, found through the NATS service API (`metrics_url` in its metadata), on the
 * hosts `metricsHosts` allows; others are shown as not scraped.
 */
export async function scrape(client: PipelineClient, timeoutMs = 900, hosts = metricsHosts()): Promise<Scrape> {
  const instances = await client.instances(Math.min(timeoutMs, 500));
  const families = new Map<string, Sample[]>();
  await Promise.all(
    instances.map(async (i) => {
      if (!i.metricsUrl || !fetchable(i.metricsUrl, hosts)) return;
      try {
        const res = await fetch(i.metricsUrl, { signal: AbortSignal.timeout(timeoutMs) });
        if (res.ok) families.set(i.id, parseExposition(await res.text()));
      } catch {
        // An instance that does not answer is shown as not scraped.
      }
    }),
  );
  return { at: Date.now(), instances, families };
}

const all = (s: Scrape): Sample[] => [...s.families.values()].flat();
const named = (s: Scrape, name: string) => all(s).filter((x) => x.name === name);
const sum = (s: Scrape, name: string) => total(all(s), name);

/** Cumulative bucket counts of the saga duration histogram (upper bound → count), summed over instances and labels. */
function buckets(s: Scrape): Map<number, number> {
  const out = new Map<number, number>();
  for (const b of named(s, 'orderflow_saga_duration_seconds_bucket')) {
    const bound = Number(b.labels.le === '+Inf' ? Infinity : b.labels.le);
    out.set(bound, (out.get(bound) ?? 0) + b.value);
  }
  return out;
}

/** The q-quantile of cumulative buckets, interpolated linearly inside its bucket (as PromQL's histogram_quantile). */
export function quantile(q: number, cumulative: Map<number, number>): number | null {
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  const total = cumulative.get(Infinity) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let [prevBound, prevCount] = [0, 0];
  for (const b of bounds) {
    const c = cumulative.get(b)!;
    if (c >= rank) {
      if (b === Infinity) return prevBound;
      return prevBound + (b - prevBound) * ((rank - prevCount) / Math.max(c - prevCount, 1e-9));
    }
    [prevBound, prevCount] = [b, c];
  }
  return prevBound;
}

/**
 * The snapshot of `now`; with `before` (an earlier scrape) the saga rate and latency are over the time between the
 * two, otherwise latency is since the apps started and the rate unknown.
 */
export function snapshot(now: Scrape, before?: Scrape): TopSnapshot {
  // Ended for good: a FAILED attempt is counted again when it later ends (resumed, then COMPLETED or CANCELLED).
  const ended = (s: Scrape) =>
    total(
      all(s).filter((x) => x.labels.status !== 'FAILED'),
      'orderflow_sagas_finished_total',
    );
  const finished = ended(now);
  const seconds = before ? (now.at - before.at) / 1000 : 0;
  let hist = buckets(now);
  if (before) {
    const old = buckets(before);
    const window = new Map([...hist].map(([b, n]) => [b, n - (old.get(b) ?? 0)]));
    if ((window.get(Infinity) ?? 0) > 0) hist = window;
  }
  const ms = (q: number) => {
    const v = quantile(q, hist);
    return v === null ? null : Math.round(v * 1000 * 10) / 10;
  };
  const outcomes = new Map<string, { status: string; reason: string | null; count: number }>();
  for (const m of named(now, 'orderflow_sagas_finished_total')) {
    const status = m.labels.status ?? '?';
    const reason = m.labels.reason || null;
    const key = `${status}/${reason}`;
    const o = outcomes.get(key) ?? { status, reason, count: 0 };
    o.count += m.value;
    outcomes.set(key, o);
  }
  const letters = new Map<string, { subject: string; fingerprint: string; count: number }>();
  for (const m of named(now, 'orderflow_dead_letters_total')) {
    const key = `${m.labels.subject}/${m.labels.fingerprint}`;
    const l = letters.get(key) ?? { subject: m.labels.subject ?? '?', fingerprint: m.labels.fingerprint ?? '?', count: 0 };
    l.count += m.value;
    letters.set(key, l);
  }
  const outbox = new Map<string, { app: string; rows: number; lagSeconds: number }>();
  for (const [id, samples] of now.families) {
    const app = now.instances.find((i) => i.id === id)?.name ?? id;
    const one = (name: string) => total(samples, name);
    const o = outbox.get(app) ?? { app, rows: 0, lagSeconds: 0 };
    o.rows += one('orderflow_outbox_size');
    o.lagSeconds = Math.max(o.lagSeconds, one('orderflow_outbox_lag_seconds'));
    outbox.set(app, o);
  }
  // Every instance of a consumer reads the same JetStream consumer info: take one reading per consumer, not a sum.
  const consumers = new Map<string, TopSnapshot['consumers'][number]>();
  for (const m of named(now, 'orderflow_consumer_pending')) {
    const { stream = '?', consumer = '?' } = m.labels;
    const ackPending = total(all(now), 'orderflow_consumer_ack_pending', { stream, consumer, app: m.labels.app });
    consumers.set(`${stream}/${consumer}`, { stream, consumer, pending: m.value, ackPending });
  }
  // The saga gauges are read from the order database by each order instance: one reading, not a sum.
  const gauge = (status: string) => Math.max(0, ...[...now.families.values()].map((f) => total(f, 'orderflow_sagas', { status })));
  return {
    at: new Date(now.at).toISOString(),
    instances: now.instances.map((i) => ({ name: i.name, id: i.id, metricsUrl: i.metricsUrl, scraped: now.families.has(i.id) })),
    missing: AppNames.filter((app) => !now.instances.some((i) => i.name === app)),
    sagas: {
      started: sum(now, 'orderflow_sagas_started_total'),
      finished,
      perSecond: before && seconds > 0 ? Math.round(((finished - ended(before)) / seconds) * 10) / 10 : null,
      running: gauge('RUNNING'),
      compensating: gauge('COMPENSATING'),
      failed: gauge('FAILED'),
    },
    outcomes: [...outcomes.values()].filter((o) => o.count > 0).sort((a, b) => b.count - a.count),
    latencyMs: { p50: ms(0.5), p95: ms(0.95), p99: ms(0.99) },
    deadLetters: { total: sum(now, 'orderflow_dead_letters_total'), bySubject: [...letters.values()].sort((a, b) => b.count - a.count) },
    outbox: [...outbox.values()].sort((a, b) => a.app.localeCompare(b.app)),
    consumers: [...consumers.values()].sort((a, b) => a.stream.localeCompare(b.stream) || a.consumer.localeCompare(b.consumer)),
  };
}
