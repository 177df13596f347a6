import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { Command } from 'commander';
import { AccountBalance, Namespace, OrderCreated, StockLevel, Subjects } from '@orderflow/contracts';
import { deleteNamespaceStreams, JetStreamClient } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { AppName, AppNames } from '@orderflow/contracts/permissions';
import { adminDb, loadConfig, natsCredentials } from '@orderflow/runtime';
import {
  atRate,
  cpuSeconds,
  cpuSecondsOf,
  handlerMs,
  hopFigures,
  pct,
  peakRssMb,
  pssMb,
  round,
  rssMb,
  scrape,
  sum,
} from '../bench/measure';
import { benchMarkdown } from '../bench/report';
import { CliFailure } from '../cli.errors';
import { OutcomeListener, PipelineClient } from '../client';
import { cliConfig, cliCredentials, wholeNumber } from '../context';
import { prepareDeployment } from '../stack/deployment';
import { PrivateServer, startPrivateNats } from '../stack/infra';
import { AppProcesses } from '../stack/apps';
import { requireInfrastructure } from './services.command';

const KEYS = 100;
/** PlaceOrder's transactional hops until its outcome reaches the client: order.created, reserve, reserved, charge, charged, commit, committed. */
const SAGA_HOPS = 7;
/** The open loop at fixed rates: these fractions of the capacity the windowed run measured. */
const RATE_FRACTIONS = [0.25, 0.5, 1];
/** The servers whose CPU a run also reads (every process of that name on the machine). */
const SERVERS = ['postgres', 'nats-server'];

/** Publishes `o` and resolves with the milliseconds until its outcome event arrives. */
async function sagaLatency(client: PipelineClient, outcomes: OutcomeListener, o: OrderCreated): Promise<number> {
  const t = performance.now();
  const done = outcomes.outcomeOf(o.orderId);
  await client.publish(Subjects.OrderCreated, o);
  await done;
  return performance.now() - t;
}

/** The project's root (from dist/apps/cli/src/commands). */
const PROJECT = resolve(__dirname, '..', '..', '..', '..', '..');

interface BenchOptions {
  sagas: number;
  instances: number;
  burst: number;
  closed: number;
  window: number;
  floor: string;
  hops: number;
  rateSeconds: number;
  warmup: number;
  results: string | false;
}

/**
 * `orderflow bench`: the four apps as separate processes (as deployed), in a namespace and database of their own,
 * driven with PlaceOrder sagas that all confirm: a warm-up (`--warmup` sagas, not measured), a closed loop (one saga
 * at a time: latency) and an open loop (up to WINDOW in flight: throughput), then the open loop at fixed rates (a
 * quarter, half and all of that throughput: p50/p95/p99), and a burst (`--burst` sagas published at once). With
 * `--instances N`, inventory and payment run N instances each. Inside the apps (each instance found through the NATS
 * service API) it measures each app's CPU per saga (over the windowed run; the sum of its instances), its peak RSS and
 * its RSS after the burst and 3 s later (its largest instance's), the servers' CPU per saga (every postgres and
 * nats-server process), and per hop (durable consumer, from the apps' counters, over the windowed run and over the one
 * at a time) messages per batch, statements, round trips and time in Postgres, time in the transaction and time
 * waiting in the stream. Then the raw floor (`bench/floor.mjs`: bare nats + pg, one transaction and one publish per
 * hop, as many hops as PlaceOrder's, the same warm-up) runs in the same process tree on the same Postgres and
 * nats-server binary, and the figures are reported as ratios to it; and the CLI's own start-up (`--help`, and `saga
 * list` against the running apps). Prints one JSON line and writes it with a markdown summary to `bench/results/`.
 */
export function benchCommand(): Command {
  return new Command('bench')
    .description('measure saga throughput and latency, and their ratio to the raw nats + pg floor')
    .option('--sagas <n>', 'open-loop sagas', wholeNumber('--sagas'), Number(process.env.N ?? 3000))
    .option('--closed <n>', 'closed-loop sagas', wholeNumber('--closed'), Number(process.env.N_CLOSED ?? 200))
    .option('--window <n>', 'sagas in flight in the open loop', wholeNumber('--window'), Number(process.env.WINDOW ?? 256))
    .option('--floor <path>', 'the floor benchmark', resolve(PROJECT, 'bench', 'floor.mjs'))
    .option('--hops <n>', "the floor's hops (PlaceOrder's transactional hops)", wholeNumber('--hops'), SAGA_HOPS)
    .option('--rate-seconds <n>', 'how long each fixed-rate run lasts', wholeNumber('--rate-seconds'), 10)
    .option('--warmup <n>', 'sagas run (32 in flight) and not measured before the closed loop', wholeNumber('--warmup', 0), 1000)
    .option('--instances <n>', 'instances of inventory and of payment', wholeNumber('--instances'), 1)
    .option('--burst <n>', 'sagas published at once at the end, then RSS is read (0: none)', wholeNumber('--burst', 0), 10_000)
    .option('--results <dir>', 'where to write <date>.json and <date>.md', resolve(PROJECT, 'bench', 'results'))
    .option('--no-results', 'write no results files')
    .action(async (opts: BenchOptions, cmd: Command) => {
      const base = cliConfig(cmd);
      await requireInfrastructure(base);
      const id = `bench${process.pid}`;
      // Its own namespace, database, keys and (unless ORDERFLOW_INSECURE=1, or NATS_URL authenticates) private nats-server.
      const dir = mkdtempSync(join(tmpdir(), 'orderflow-bench-'));
      const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
      const deployment = await prepareDeployment(
        loadConfig({ ...process.env, NATS_URL: base.NATS_URL, ORDERFLOW_NAMESPACE: id, PGDATABASE: `orderflow_${id}` }),
        dir,
        say,
        { secrets: join(dir, 'secrets') },
      );
      const { config } = deployment;
      // Any free metrics port: several instances of an app, and a stack already running, do not collide.
      const env = { ...deployment.env, LOG_LEVEL: 'warn', METRICS_PORT: '0' };
      const apps = new AppProcesses();
      let measured = false;
      const client = await PipelineClient.connect(config.NATS_URL, id, 1, cliCredentials(config));
      try {
        // The apps' logs go to files, so stdout holds only the result line (kept when the bench fails).
        const logs = join(dir, 'logs');
        mkdirSync(logs);
        const scaled: AppName[] = ['inventory', 'payment'];
        const copies = (app: AppName) => (scaled.includes(app) ? Math.max(1, opts.instances) : 1);
        await apps.startAndWait(
          AppNames.flatMap((app) => Array.from({ length: copies(app) }, () => app)),
          env,
          client,
          logs,
        );
        // Orders spread over KEYS SKUs and customers, as real traffic is: one hot stock row or account would
        // serialise every reservation or charge on its row lock and measure that instead of the pipeline.
        const total = opts.warmup + opts.sagas + opts.closed + opts.burst;
        const keys = Array.from({ length: KEYS }, (_, i) => i);
        await Promise.all(
          keys.map(async (i) => {
            await client.command<StockLevel>(
              Subjects.InventoryRestock,
              { sku: `BENCH-${i}`, quantity: total },
              Subjects.InventoryRestocked,
            );
            await client.command<AccountBalance>(
              Subjects.PaymentDeposit,
              { customerId: `bench-${i}`, amount: total * 100, currency: 'USD' },
              Subjects.PaymentDeposited,
            );
          }),
        );
        const outcomes = client.outcomes();
        let n = 0;
        const make = (): OrderCreated => {
          const i = n++ % KEYS;
          return {
            orderId: randomUUID(),
            customerId: `bench-${i}`,
            currency: 'USD',
            items: [{ sku: `BENCH-${i}`, quantity: 1, unitPrice: 100 }],
          };
        };

        const saga = () => sagaLatency(client, outcomes, make());
        // Each instance, found through the NATS service API: its pid (CPU, RSS) and its metrics URL.
        const instances = (await client.instances()).filter((i) => i.pid && i.metricsUrl);
        if (instances.length !== AppNames.reduce((n, app) => n + copies(app), 0))
          throw new CliFailure(`bench: ${instances.length} app instances answered the service API with a pid and a metrics URL`);
        const urls = instances.map((i) => i.metricsUrl!);
        const pidsOf = (app: string) => instances.filter((i) => i.name === app).map((i) => i.pid!);
        const cpuOf = (app: string) => pidsOf(app).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
        // CPU seconds of each app and server so far, and per saga (ms) since `from`: what a run at one load costs.
        const cpuNow = (): Record<string, number> => ({
          ...Object.fromEntries(AppNames.map((app) => [app, cpuOf(app)])),
          ...Object.fromEntries(SERVERS.map((comm) => [comm, cpuSecondsOf(comm)])),
        });
        const cpuPerSaga = (from: Record<string, number>, sagas: number) => {
          const to = cpuNow();
          return Object.fromEntries(Object.keys(to).map((k) => [k, round(((to[k] - from[k]) * 1000) / sagas, 2)]));
        };
        // Warm-up, not measured: the apps' code compiled (V8's optimising tiers) and their pools filled, as in a
        // service that has been running; one at a time right after start-up measures the JIT compiler as well.
        await windowed(opts.warmup, WARMUP_WINDOW, saga);
        // One saga at a time (latency and CPU), with the apps' counters per hop scraped around it.
        const idle = await scrape(urls);
        const closedFrom = cpuNow();
        const closed: number[] = [];
        for (let i = 0; i < opts.closed; i++) closed.push(await saga());
        const closed_cpu_ms_per_saga = cpuPerSaga(closedFrom, opts.closed);

        // The open loop with a window (capacity), measured from outside (latency) and from inside: each app's CPU and
        // its counters per hop (scraped before and after).
        const before = await scrape(urls);
        const windowFrom = cpuNow();
        const t0 = performance.now();
        const lat = await windowed(opts.sagas, opts.window, saga);
        const secs = (performance.now() - t0) / 1000;
        const after = await scrape(urls);
        const windowCpu = cpuPerSaga(windowFrom, opts.sagas);
        const cpu_ms_per_saga = Object.fromEntries(AppNames.map((app) => [app, windowCpu[app]]));
        const server_cpu_ms_per_saga = Object.fromEntries(SERVERS.map((comm) => [comm, windowCpu[comm]]));

        // The open loop at fixed rates: latency at a quarter, half and all of that capacity, the CPU per saga of
        // every app and server together (smaller batches cost more per message), and the figures per hop.
        const capacity = opts.sagas / secs;
        const rates = [];
        for (const fraction of RATE_FRACTIONS) {
          const scraped = await scrape(urls);
          const from = cpuNow();
          const run = await atRate(capacity * fraction, opts.rateSeconds, saga);
          const cpu_ms_per_saga = round(sum(cpuPerSaga(from, run.sagas)), 2);
          rates.push({ fraction, ...run, cpu_ms_per_saga, hops: hopFigures(scraped, await scrape(urls)) });
        }
        // A burst: `--burst` sagas published at once; then each app's resident set (its largest instance's).
        const burst = opts.burst > 0 ? await burstOf(opts.burst, saga) : null;
        const perApp = (read: (pid: number) => number) =>
          Object.fromEntries(AppNames.map((app) => [app, Math.max(...pidsOf(app).map(read))]));
        const peak_rss_mb = perApp(peakRssMb);
        if (burst) {
          burst.rss_mb_after = perApp(rssMb);
          burst.pss_mb_after = perApp(pssMb);
          // And once idle apps had time to give back what the burst left (`IdleHeapCompaction` checks each second).
          await new Promise((r) => setTimeout(r, SETTLE_MS));
          burst.rss_mb_settled = perApp(rssMb);
        }
        const ours = {
          nats_server: client.nc.info?.version,
          warmup_sagas: opts.warmup,
          sagas: opts.sagas,
          window: opts.window,
          instances: opts.instances,
          sagas_per_s: Math.round(capacity),
          p50_ms: round(pct(lat, 0.5)),
          p99_ms: round(pct(lat, 0.99)),
          closed_sagas: opts.closed,
          closed_p50_ms: round(pct(closed, 0.5), 2),
          closed_p99_ms: round(pct(closed, 0.99), 2),
          closed_cpu_ms_per_saga,
          rates,
          cpu_ms_per_saga,
          server_cpu_ms_per_saga,
          peak_rss_mb,
          burst,
          hops: hopFigures(before, after),
          handler_ms: handlerMs(before, after),
          closed_hops: hopFigures(idle, before),
        };
        // The CLI as an operator feels it, against these running apps: `--help`, and a query (start-up, connect, ask).
        const cli = { help_ms: await cliMs(['--help'], env), saga_list_ms: await cliMs(['saga', 'list', '--limit', '1'], env) };
        await apps.stop();

        // The floor is plain nats.js with every right, on the same nats-server binary as the apps: a private plain
        // server of its own when the apps had a private one, else NATS_URL as given.
        const hasFloor = existsSync(opts.floor);
        const floorNats = hasFloor && deployment.servers.some(isNats) ? await startPrivateNats(join(dir, 'floor')) : null;
        if (floorNats) deployment.servers.push(floorNats);
        const floor = hasFloor
          ? await runFloor(opts.floor, {
              ...env,
              NATS_URL: floorNats?.url ?? base.NATS_URL,
              PGHOST: config.PGHOST,
              PGPORT: String(config.PGPORT),
              PGUSER: config.PG_ADMIN_USER,
              PGPASSWORD: config.PG_ADMIN_PASSWORD,
              PGDATABASE: config.PGDATABASE,
              N: String(opts.sagas),
              N_CLOSED: String(opts.closed),
              WARMUP: String(opts.warmup),
              WINDOW: String(opts.window),
              HOPS: String(opts.hops),
            })
          : null;
        const ratio = floor && {
          throughput: round(ours.sagas_per_s / floor.sagas_per_s, 3),
          p50: round(ours.p50_ms / floor.p50_ms, 2),
          p99: round(ours.p99_ms / floor.p99_ms, 2),
          closed_p50: round(ours.closed_p50_ms / floor.closed_p50_ms, 2),
        };
        const result = { at: new Date().toISOString(), orderflow: ours, cli, floor, ratio_to_floor: ratio ?? `no floor at ${opts.floor}` };
        process.stdout.write(JSON.stringify(result) + '\n');
        if (opts.results) {
          mkdirSync(opts.results, { recursive: true });
          const name = join(opts.results, result.at.slice(0, 19).replace(/:/g, '-'));
          writeFileSync(`${name}.json`, JSON.stringify(result, null, 2) + '\n');
          writeFileSync(`${name}.md`, benchMarkdown(result));
          say(`results in ${name}.json and ${name}.md`);
        }
        measured = true;
      } finally {
        await apps.stop();
        await cleanUp(client, config, id);
        await client.close();
        await deployment.stop();
        if (measured) rmSync(dir, { recursive: true, force: true });
        else say(`the apps' logs are kept in ${join(dir, 'logs')}`);
      }
    });
}

/**
 * Runs `n` sagas published all at once and resolves with their throughput and latency percentiles once each has
 * its outcome (`rss_mb_after`, `pss_mb_after` and `rss_mb_settled` are filled in by the caller).
 */
async function burstOf(n: number, saga: () => Promise<number>) {
  const t0 = performance.now();
  const lat = await Promise.all(Array.from({ length: n }, saga));
  return {
    sagas: n,
    sagas_per_s: Math.round(n / ((performance.now() - t0) / 1000)),
    p50_ms: round(pct(lat, 0.5)),
    p99_ms: round(pct(lat, 0.99)),
    rss_mb_after: {} as Record<string, number>,
    pss_mb_after: {} as Record<string, number>,
    rss_mb_settled: {} as Record<string, number>,
  };
}

/** Milliseconds `orderflow ARGS` takes as a process, the median of 5. @throws CliFailure when it fails. */
async function cliMs(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await new Promise<void>((ok, fail) =>
      execFile(process.execPath, [resolve(__dirname, '..', 'main.js'), ...args], { env }, (err, _out, stderr) =>
        err ? fail(new CliFailure(`bench: orderflow ${args.join(' ')} failed: ${stderr.trim() || err.message}`)) : ok(),
      ),
    );
    times.push(performance.now() - t);
  }
  return Math.round(pct(times, 0.5));
}

/** How long after the burst's last saga the apps' resident sets are read again (`rss_mb_settled`). */
const SETTLE_MS = 3000;

/** Sagas in the warm-up's open loop at once. */
const WARMUP_WINDOW = 32;

const isNats = (s: PrivateServer) => s.name.startsWith('nats-server');

/** Runs `n` sagas with up to `window` in flight; resolves with their latencies (ms), in the order they finished. */
async function windowed(n: number, window: number, saga: () => Promise<number>): Promise<number[]> {
  const lat: number[] = [];
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < n; i++) {
    const p: Promise<void> = saga()
      .then((ms) => void lat.push(ms))
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return lat;
}

function runFloor(script: string, env: NodeJS.ProcessEnv): Promise<any> {
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, [script], { env, cwd: process.cwd(), maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) return reject(new CliFailure(`bench: the floor failed: ${err.message}`));
      resolvePromise(JSON.parse(stdout.trim().split('\n').pop()!).floor);
    });
  });
}

async function cleanUp(client: PipelineClient, config: ReturnType<typeof loadConfig>, id: string) {
  // As `setup`: the operator's identity may not delete streams.
  const admin = await JetStreamClient.connect(
    config.NATS_URL,
    new Namespace(id),
    pino({ level: 'silent' }),
    'orderflow-bench',
    natsCredentials(config, 'setup'),
  );
  await deleteNamespaceStreams(admin.jsm, new Namespace(id)).finally(() => admin.close());
  await dropDatabase(adminDb(config));
}
