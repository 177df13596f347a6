import { HopFigures, sum } from './measure';

/** What `orderflow bench` measured (its JSON line). */
export interface BenchResult {
  at: string;
  orderflow: {
    /** The version of the nats-server the apps ran on. */
    nats_server?: string;
    warmup_sagas?: number;
    instances?: number;
    sagas_per_s: number;
    p50_ms: number;
    p99_ms: number;
    closed_p50_ms: number;
    closed_p99_ms: number;
    /** Each process's CPU per saga (ms) one saga at a time. */
    closed_cpu_ms_per_saga?: Record<string, number>;
    /** `cpu_ms_per_saga`: every app and server together. */
    rates: {
      fraction: number;
      rate_per_s: number;
      sagas: number;
      p50_ms: number;
      p95_ms: number;
      p99_ms: number;
      cpu_ms_per_saga?: number;
    }[];
    cpu_ms_per_saga: Record<string, number>;
    server_cpu_ms_per_saga: Record<string, number>;
    peak_rss_mb: Record<string, number>;
    /**
     * `pss_mb_after`: each app's proportional set (the pages it shares with the others, the node binary's, split).
     * `rss_mb_settled`: each app's resident set `SETTLE_MS` after the burst's last saga, once it had time to compact.
     */
    burst?: {
      sagas: number;
      sagas_per_s: number;
      p50_ms: number;
      p99_ms: number;
      rss_mb_after: Record<string, number>;
      pss_mb_after?: Record<string, number>;
      rss_mb_settled?: Record<string, number>;
    } | null;
    hops: HopFigures[];
    handler_ms: Record<string, number>;
    closed_hops: HopFigures[];
  };
  cli: { help_ms: number; saga_list_ms: number };
  floor: {
    hops: number;
    sagas_per_s: number;
    p50_ms: number;
    p99_ms: number;
    closed_p50_ms: number;
    cpu_ms_per_saga?: Record<string, number>;
    nats_server?: string;
  } | null;
  ratio_to_floor: { throughput: number; closed_p50: number; p50: number; p99: number } | string;
}

const table = (head: string[], rows: (string | number)[][]) =>
  [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

const hopTable = (hops: HopFigures[]) =>
  table(
    [
      'consumer',
      'messages',
      'per batch',
      'statements / msg',
      'round trips / msg',
      'round trips / batch',
      'Postgres ms / msg',
      'transaction ms / msg',
      'stream wait ms',
    ],
    hops.map((h) => [
      h.consumer,
      h.messages,
      h.per_batch,
      h.statements_per_msg,
      h.round_trips_per_msg,
      h.round_trips_per_batch,
      h.pg_ms_per_msg,
      h.tx_ms_per_msg,
      h.stream_wait_ms,
    ]),
  );

const round2 = (n: number) => Math.round(n * 100) / 100;

/** The markdown summary written next to a run's JSON (`bench/results/<date>.md`). */
export function benchMarkdown(r: BenchResult): string {
  const o = r.orderflow;
  const ratio = typeof r.ratio_to_floor === 'string' ? null : r.ratio_to_floor;
  const apps = Object.keys(o.cpu_ms_per_saga);
  const servers = Object.keys(o.server_cpu_ms_per_saga ?? {});
  const floorCpu = r.floor?.cpu_ms_per_saga ?? {};
  const closedCpu = o.closed_cpu_ms_per_saga ?? {};
  return [
    `# orderflow bench, ${r.at}`,
    '',
    `nats-server ${o.nats_server ?? '?'} (the floor's: ${r.floor?.nats_server ?? '?'}); ${o.warmup_sagas ?? 0} sagas of warm-up, not measured.`,
    '',
    ...(o.instances && o.instances > 1 ? [`${o.instances} instances each of inventory and payment.`, ''] : []),
    table(
      ['', 'orderflow', `floor (${r.floor?.hops ?? '?'} hops)`, 'ratio'],
      [
        ['open loop, sagas/s', o.sagas_per_s, r.floor?.sagas_per_s ?? '—', ratio?.throughput ?? '—'],
        [
          'open loop p50 / p99, ms',
          `${o.p50_ms} / ${o.p99_ms}`,
          r.floor ? `${r.floor.p50_ms} / ${r.floor.p99_ms}` : '—',
          ratio ? `${ratio.p50} / ${ratio.p99}` : '—',
        ],
        ['one at a time p50, ms', o.closed_p50_ms, r.floor?.closed_p50_ms ?? '—', ratio?.closed_p50 ?? '—'],
      ],
    ),
    '',
    '## Open loop at fixed rates',
    '',
    table(
      ['share of capacity', 'sagas/s', 'sagas', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU ms per saga, all processes'],
      o.rates.map((x) => [`${x.fraction * 100} %`, x.rate_per_s, x.sagas, x.p50_ms, x.p95_ms, x.p99_ms, x.cpu_ms_per_saga ?? '—']),
    ),
    '',
    '## CPU per saga (over the windowed run, and one saga at a time) and memory',
    '',
    table(
      [
        'process',
        'CPU ms per saga',
        'one at a time: CPU ms per saga',
        'peak RSS MB',
        'RSS MB after the burst',
        'PSS MB after the burst',
        'RSS MB 3 s after the burst',
        'floor: CPU ms per saga',
      ],
      [
        ...apps.map((a) => [
          a,
          o.cpu_ms_per_saga[a],
          closedCpu[a] ?? '—',
          o.peak_rss_mb[a] ?? '—',
          o.burst?.rss_mb_after[a] ?? '—',
          o.burst?.pss_mb_after?.[a] ?? '—',
          o.burst?.rss_mb_settled?.[a] ?? '—',
          '',
        ]),
        ['the floor itself', '', '', '', '', '', '', floorCpu.floor ?? '—'],
        ...servers.map((s) => [s, o.server_cpu_ms_per_saga[s], closedCpu[s] ?? '—', '', '', '', '', floorCpu[s] ?? '—']),
        [
          '**all**',
          round2(sum(o.cpu_ms_per_saga) + sum(o.server_cpu_ms_per_saga)),
          o.closed_cpu_ms_per_saga ? round2(sum(closedCpu)) : '—',
          '',
          '',
          '',
          '',
          floorCpu.floor ? round2(sum(floorCpu)) : '—',
        ],
      ],
    ),
    ...(o.burst
      ? [
          '',
          `Burst: ${o.burst.sagas} sagas published at once, ${o.burst.sagas_per_s} sagas/s, p50 ${o.burst.p50_ms} ms, p99 ${o.burst.p99_ms} ms.`,
        ]
      : []),
    '',
    '## Per hop (durable consumer), over the windowed run',
    '',
    hopTable(o.hops),
    '',
    '## Per hop, one saga at a time',
    '',
    hopTable(o.closed_hops),
    '',
    table(
      ['subject', 'handler ms / msg (its statements included; by ordering key, the round trips it shares with its batch)'],
      Object.entries(o.handler_ms).map(([s, ms]) => [s, ms]),
    ),
    '',
    `CLI: \`--help\` ${r.cli.help_ms} ms, \`saga list\` ${r.cli.saga_list_ms} ms.`,
    '',
  ].join('\n');
}
