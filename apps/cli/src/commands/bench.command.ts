import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { Command } from 'commander';
import { AccountBalance, Namespace, OrderCreated, StockLevel, Subjects } from '@orderflow/contracts';
import { deleteNamespaceStreams, JetStreamClient } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { AppNames } from '@orderflow/contracts/permissions';
import { adminDb, loadConfig, natsCredentials } from '@orderflow/runtime';
import { CliFailure } from '../cli.errors';
import { OutcomeListener, PipelineClient } from '../client';
import { cliConfig, cliCredentials, wholeNumber } from '../context';
import { prepareDeployment } from '../stack/deployment';
import { AppProcesses } from '../stack/apps';
import { requireInfrastructure } from './services.command';

const KEYS = 100;
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

/** Publishes `o` and resolves with the milliseconds until its outcome event arrives. */
async function sagaLatency(client: PipelineClient, outcomes: OutcomeListener, o: OrderCreated): Promise<number> {
  const t = performance.now();
  const done = outcomes.outcomeOf(o.orderId);
  await client.publish(Subjects.OrderCreated, o);
  await done;
  return performance.now() - t;
}

/**
 * `orderflow bench`: the four apps as separate processes (as deployed), in a namespace and database of
 * their own, driven with PlaceOrder sagas that all confirm: a closed loop (one saga at a time: latency)
 * and an open loop (up to WINDOW in flight: throughput). Then the raw floor (`bench/floor.mjs`:
 * bare nats + pg, 5 hops) runs in the same process tree on the same servers, and the figures are reported
 * as ratios to it; and the CLI's own start-up (`--help`, and `saga list` against the running apps). Prints one JSON
 * line.
 */
export function benchCommand(): Command {
  return new Command('bench')
    .description('measure saga throughput and latency, and their ratio to the raw nats + pg floor')
    .option('--sagas <n>', 'open-loop sagas', wholeNumber('--sagas'), Number(process.env.N ?? 3000))
    .option('--closed <n>', 'closed-loop sagas', wholeNumber('--closed'), Number(process.env.N_CLOSED ?? 200))
    .option('--window <n>', 'sagas in flight in the open loop', wholeNumber('--window'), Number(process.env.WINDOW ?? 256))
    .option('--floor <path>', 'the floor benchmark', resolve(__dirname, '..', '..', '..', '..', '..', 'bench', 'floor.mjs'))
    .action(async (opts: { sagas: number; closed: number; window: number; floor: string }, cmd: Command) => {
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
      const env = { ...deployment.env, LOG_LEVEL: 'warn' };
      const apps = new AppProcesses();
      let measured = false;
      const client = await PipelineClient.connect(config.NATS_URL, id, 1, cliCredentials(config));
      try {
        // The apps' logs go to files, so stdout holds only the result line (kept when the bench fails).
        const logs = join(dir, 'logs');
        mkdirSync(logs);
        await apps.startAndWait([...AppNames], env, client, logs);
        // Orders spread over KEYS SKUs and customers, as real traffic is: one hot stock row or account would
        // serialise every reservation or charge on its row lock and measure that instead of the pipeline.
        const total = opts.sagas + opts.closed;
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

        const closed: number[] = [];
        for (let i = 0; i < opts.closed; i++) closed.push(await sagaLatency(client, outcomes, make()));

        const lat: number[] = [];
        const inflight = new Set<Promise<void>>();
        const t0 = performance.now();
        for (let i = 0; i < opts.sagas; i++) {
          const p: Promise<void> = sagaLatency(client, outcomes, make())
            .then((ms) => void lat.push(ms))
            .finally(() => inflight.delete(p));
          inflight.add(p);
          if (inflight.size >= opts.window) await Promise.race(inflight);
        }
        await Promise.all(inflight);
        const secs = (performance.now() - t0) / 1000;
        const ours = {
          sagas: opts.sagas,
          window: opts.window,
          sagas_per_s: Math.round(opts.sagas / secs),
          p50_ms: round(pct(lat, 0.5)),
          p99_ms: round(pct(lat, 0.99)),
          closed_sagas: opts.closed,
          closed_p50_ms: round(pct(closed, 0.5), 2),
          closed_p99_ms: round(pct(closed, 0.99), 2),
        };
        // The CLI as an operator feels it, against these running apps: `--help`, and a query (start-up, connect, ask).
        const cli = { help_ms: await cliMs(['--help'], env), saga_list_ms: await cliMs(['saga', 'list', '--limit', '1'], env) };
        await apps.stop();

        const floor = existsSync(opts.floor)
          ? await runFloor(opts.floor, {
              ...env,
              // The floor is plain nats.js with every right: it runs on NATS_URL as given (same binary, same machine).
              NATS_URL: base.NATS_URL,
              PGHOST: config.PGHOST,
              PGPORT: String(config.PGPORT),
              PGUSER: config.PG_ADMIN_USER,
              PGPASSWORD: config.PG_ADMIN_PASSWORD,
              PGDATABASE: config.PGDATABASE,
              N: String(opts.sagas),
              N_CLOSED: String(opts.closed),
              WINDOW: String(opts.window),
            })
          : null;
        const ratio = floor && {
          throughput: round(ours.sagas_per_s / floor.sagas_per_s, 3),
          p50: round(ours.p50_ms / floor.p50_ms, 2),
          p99: round(ours.p99_ms / floor.p99_ms, 2),
          closed_p50: round(ours.closed_p50_ms / floor.closed_p50_ms, 2),
        };
        process.stdout.write(JSON.stringify({ orderflow: ours, cli, floor, ratio_to_floor: ratio ?? `no floor at ${opts.floor}` }) + '\n');
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
