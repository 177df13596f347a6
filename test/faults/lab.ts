import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, jetstream, JetStreamManager, jetstreamManager, NatsConnection } from '@orderflow/messaging/nats';
import { Pool } from 'pg';
import { Identity, Namespace, StreamName, Subjects } from '@orderflow/contracts';
import { deleteNamespaceStreams, natsAuthOptions, natsServers } from '@orderflow/messaging';
import { AppName, AppNames } from '@orderflow/contracts';
import { loadConfig, natsCredentials, withAppProcessEnv } from '@orderflow/runtime';
import { runSetup } from '../../apps/cli/src/setup/setup';
import {
  freePort,
  NatsControl,
  natsProblem,
  PostgresControl,
  PrivateServer,
  startPrivateNats,
  startPrivatePostgres,
} from '../../apps/cli/src/stack/infra';
import { provisionAll } from '../support/provision';
import { waitFor } from '../support/stack';

/**
 * The fault lab: private servers this suite may crash (a Postgres cluster made with initdb, one nats-server or a
 * cluster of three), and the four apps run as separate OS processes from `dist/`, one or more instances each,
 * that it can kill -9 by PID. Nothing here touches the shared servers on the standard ports. The lab's nats-servers
 * authenticate, as in production: `orderflow setup` makes the keys and the auth include for the lab's namespace.
 */

/** The lab's identities: every key (in `secrets`), the nats-server include for namespace `ns`, and the lab operator. */
export interface LabIdentities {
  ns: string;
  secrets: string;
  authConfig: string;
  /** The environment that makes the apps, setup and the CLI use them. */
  env: Record<string, string>;
}

/** Creates the lab's keys and auth include (what `orderflow setup --no-provision --no-database` does). */
export async function labIdentities(dir: string): Promise<LabIdentities> {
  const ns = `f${randomUUID().slice(0, 8)}`;
  const secrets = join(dir, 'secrets');
  const authConfig = join(dir, 'nats-auth', 'orderflow-auth.conf');
  const env = { ORDERFLOW_INSECURE: '', ORDERFLOW_SECRETS: secrets, ORDERFLOW_NAMESPACE: ns, ORDERFLOW_OPERATOR: 'lab' };
  await runSetup(loadConfig({ ...process.env, ...env }), {
    natsConfig: authConfig,
    provision: false,
    database: false,
    addOperators: ['lab'],
  });
  return { ns, secrets, authConfig, env };
}

/** Connection options for `identity` of the lab. */
const as = (lab: LabIdentities, identity: Identity) =>
  natsAuthOptions(natsCredentials(loadConfig({ ...process.env, ...lab.env }), identity));

/** Starts three clustered nats-servers (routes on loopback) and waits until JetStream has a meta leader. */
export async function startNatsCluster(dir: string, lab: LabIdentities, size = 3): Promise<(PrivateServer & NatsControl)[]> {
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })));
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`);
  const nodes = await Promise.all(
    ports.map((p, i) =>
      startPrivateNats(dir, {
        port: p.client,
        serverName: `n${i + 1}`,
        cluster: { name: 'orderflow-faults', port: p.route, routes: routes.filter((_, j) => j !== i) },
        authConfig: lab.authConfig,
        waitReady: false,
      }),
    ),
  );
  if (nodes.some((n) => !n)) throw new Error('nats-server is needed for the fault suite');
  const url = nodes.map((n) => n!.url).join(',');
  // JetStream answers once the servers have met and elected a meta leader.
  await waitFor(async () => !(await natsProblem(url, natsCredentials(loadConfig({ ...process.env, ...lab.env }), 'setup'))), 30_000, 250);
  return nodes as (PrivateServer & NatsControl)[];
}

export async function startLabPostgres(dir: string): Promise<PrivateServer & PostgresControl> {
  const pg = await startPrivatePostgres(dir);
  if (!pg) throw new Error('the PostgreSQL server binaries (initdb, pg_ctl) are needed for the fault suite');
  return pg;
}

/** The compiled entry point of an app (`npm run build` makes it). */
function appEntry(app: AppName): string {
  const file = join(__dirname, '..', '..', 'dist', 'apps', app, 'src', 'main.js');
  if (!existsSync(file)) throw new Error(`${file} is missing; run \`npm run build\` first (npm run test:faults does)`);
  return file;
}

/** One OS process of an app, its output in `<logDir>/<app>-<n>.log`. */
export class AppInstance {
  private child?: ChildProcess;
  private logOffset = 0;

  constructor(
    readonly app: AppName,
    readonly n: number,
    private readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts it and waits for its `started` log line. @throws Error naming the log when it exits or takes over 60 s. */
  async start(): Promise<void> {
    try {
      this.logOffset = readFileSync(this.logFile).length;
    } catch {
      this.logOffset = 0;
    }
    const out = openSync(this.logFile, 'a');
    this.child = spawn(process.execPath, [appEntry(this.app)], { env: withAppProcessEnv(this.env), stdio: ['ignore', out, out] });
    closeSync(out);
    await waitFor(
      () => {
        if (!this.running) throw new Error(`${this.app}#${this.n} exited while starting; see ${this.logFile}`);
        return readFileSync(this.logFile).subarray(this.logOffset).includes('"msg":"started"');
      },
      60_000,
      100,
    );
  }

  /** Sends `signal` (SIGKILL: a crash; SIGTERM: a graceful stop) and waits for the process to end. */
  kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return Promise.resolve();
    return new Promise((r) => {
      child.once('exit', () => r());
      child.kill(signal);
    });
  }
}

/** Reference data every scenario starts with. */
export const Seed = {
  skus: ['SKU-A', 'SKU-B', 'SKU-C'],
  unitsPerSku: 1_000_000,
  customers: Array.from({ length: 8 }, (_, i) => `cust-${i}`),
  balance: 1_000_000_000,
  /** A customer whose account holds 1 minor unit: every order of theirs is declined and compensated. */
  broke: 'cust-broke',
};

/**
 * One deployment under test: the lab's namespace on the lab's NATS (its streams made at start and deleted at stop:
 * one deployment at a time), its own database on the lab's Postgres, the apps as processes. The test drives it as the
 * lab operator (orders, deposits, restocks); `stop()` ends the processes (SIGTERM) and deletes its streams as `setup`.
 */
export class Pipeline {
  readonly ns: Namespace;
  readonly db: Pool;
  readonly instances: AppInstance[] = [];
  nc!: NatsConnection;
  jsm!: JetStreamManager;
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly name: string,
    readonly natsUrl: string,
    pg: PostgresControl,
    private readonly logDir: string,
    overrides: Record<string, string>,
    private readonly lab: LabIdentities,
  ) {
    this.ns = new Namespace(lab.ns);
    this.env = {
      ...process.env,
      ...lab.env,
      NATS_URL: natsUrl,
      PGHOST: '127.0.0.1',
      PGPORT: String(pg.port),
      PGDATABASE: `faults_${randomUUID().slice(0, 8)}`,
      PG_ADMIN_USER: 'postgres',
      PG_ADMIN_PASSWORD: '',
      LOG_LEVEL: 'info',
      ...overrides,
    };
    this.db = new Pool({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: this.env.PGDATABASE, max: 2 });
    this.db.on('error', () => undefined);
  }

  /** Starts `instances` processes of every app (instance 1 of all first), then seeds stock and accounts. */
  async start(instances = 1): Promise<void> {
    this.nc = await connect({
      servers: natsServers(this.natsUrl),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...as(this.lab, 'operator-lab'),
    });
    this.jsm = await jetstreamManager(this.nc);
    await this.deleteStreams(); // what a scenario that failed may have left
    // A cluster that has just elected its meta leader may not count every peer yet: an R3 stream then finds "no
    // suitable peers for placement" (err_code 10005) for a moment. Setup is idempotent: run it again until it places.
    const placing = Date.now() + 30_000;
    for (;;) {
      try {
        await provisionAll(loadConfig(this.env));
        break;
      } catch (e) {
        if (!String(e).includes('no suitable peers') || Date.now() > placing) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    for (let n = 1; n <= instances; n++) {
      const batch = AppNames.map((app) => new AppInstance(app, n, this.env, join(this.logDir, `${this.name}-${app}-${n}.log`)));
      this.instances.push(...batch);
      await Promise.all(batch.map((i) => i.start()));
    }
    await this.seed();
  }

  instance(app: AppName, n = 1): AppInstance {
    const found = this.instances.find((i) => i.app === app && i.n === n);
    if (!found) throw new Error(`no instance ${app}#${n}`);
    return found;
  }

  /** Publishes to JetStream with a fresh message id unless one is given; resolves once the stream stored it. */
  async publish(subject: string, body: unknown, msgId: string = randomUUID()): Promise<void> {
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    await jetstream(this.nc, { timeout: 3000 }).publish(this.ns.subject(subject), data, { msgID: msgId });
  }

  /** Restocks a SKU through the inventory app and waits until it is stored. */
  async restock(sku: string, quantity: number): Promise<void> {
    await this.publish(Subjects.InventoryRestock, { sku, quantity });
    await waitFor(
      async () =>
        ((await this.db.query('select restocked::int as n from inventory.stock where sku = $1', [sku]).catch(() => ({ rows: [] }))).rows[0]
          ?.n ?? 0) >= quantity,
      30_000,
      100,
    );
  }

  private async seed(): Promise<void> {
    for (const sku of Seed.skus) await this.publish(Subjects.InventoryRestock, { sku, quantity: Seed.unitsPerSku });
    for (const c of Seed.customers) await this.publish(Subjects.PaymentDeposit, { customerId: c, amount: Seed.balance, currency: 'USD' });
    await this.publish(Subjects.PaymentDeposit, { customerId: Seed.broke, amount: 1, currency: 'USD' });
    await waitFor(
      async () => {
        const q = (sql: string) =>
          this.db.query(sql).then(
            (r) => Number(r.rows[0].n),
            () => 0,
          );
        return (
          (await q('select count(*) as n from inventory.stock')) === Seed.skus.length &&
          (await q('select count(*) as n from payments.accounts')) === Seed.customers.length + 1
        );
      },
      30_000,
      100,
    );
  }

  /** Asks a service over NATS (as the lab operator); returns the reply's data. @throws Error when it answers an error. */
  async query(subject: string, body: object): Promise<any> {
    const reply = JSON.parse(
      (await this.nc.request(this.ns.subject(subject), Buffer.from(JSON.stringify(body)), { timeout: 5000 })).string(),
    );
    if (!reply.ok) throw new Error(`${subject}: ${reply.error.message}`);
    return reply.data;
  }

  /** Runs the `orderflow` CLI (from `dist/`) on this deployment, as the lab operator. */
  cli(args: string[]) {
    const main = join(__dirname, '..', '..', 'dist', 'apps', 'cli', 'src', 'main.js');
    return spawnSync(process.execPath, [main, ...args], { env: this.env, encoding: 'utf8', timeout: 300_000, maxBuffer: 256 << 20 });
  }

  /** Starts the CLI with `args` as the lab operator, without waiting: for a run the test interrupts. */
  cliStart(args: string[]): { child: ChildProcess; done: Promise<{ status: number | null; stdout: string; stderr: string }> } {
    const main = join(__dirname, '..', '..', 'dist', 'apps', 'cli', 'src', 'main.js');
    const child = spawn(process.execPath, [main, ...args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
      child.once('close', (status) => resolve({ status, stdout, stderr })),
    );
    return { child, done };
  }

  /** Messages on the dead-letter stream. */
  async deadLetters(): Promise<number> {
    return (await this.jsm.streams.info(this.ns.stream('DLQ'))).state.messages;
  }

  /** The `Dlq-Error` of every dead letter (empty for an advisory). */
  async deadLetterErrors(): Promise<string[]> {
    const out: string[] = [];
    const { state } = await this.jsm.streams.info(this.ns.stream('DLQ'));
    for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
      const m = await this.jsm.streams.getMessage(this.ns.stream('DLQ'), { seq }).catch(() => undefined);
      if (m) out.push(m.header?.get('Dlq-Error') ?? '');
    }
    return out;
  }

  /** The server that leads `stream` (on a cluster). */
  async leaderOf(stream: StreamName): Promise<string | undefined> {
    return (await this.jsm.streams.info(this.ns.stream(stream))).cluster?.leader;
  }

  async stop(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.kill('SIGTERM')));
    await this.deleteStreams();
    await this.nc?.close().catch(() => undefined);
    await this.db.end();
  }

  /** Deletes the namespace's streams and bucket, as `setup` (the only identity that may). */
  private async deleteStreams(): Promise<void> {
    const nc = await connect({ servers: natsServers(this.natsUrl), maxReconnectAttempts: 0, ...as(this.lab, 'setup') });
    try {
      await deleteNamespaceStreams(await jetstreamManager(nc), this.ns);
    } finally {
      await nc.close();
    }
  }

  /** Kills any process still running (a failed test), without waiting. */
  killAll(): void {
    for (const i of this.instances) if (i.running) void i.kill('SIGKILL');
  }
}
