import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative } from 'node:path';
import { connect, jetstreamManager } from '@orderflow/messaging/nats';
import { Client } from 'pg';
import { isNatsAuthFailure, natsAuthOptions, NatsCredentials, natsConnectProblem, natsServers } from '@orderflow/messaging';
import { isAuthFailure } from '@orderflow/persistence';
import { adminDb, Config } from '@orderflow/runtime';

/**
 * Whether NATS with JetStream answers at `url` to `creds` (or anonymously): `problem` null when it does, else why not;
 * `refused` when it answered but refused the credentials (a server that authenticates, to an anonymous client).
 */
export async function natsStatus(url: string, creds?: NatsCredentials): Promise<{ problem: string | null; refused: boolean }> {
  try {
    const nc = await connect({ servers: natsServers(url), timeout: 2000, maxReconnectAttempts: 0, ...natsAuthOptions(creds) });
    try {
      await jetstreamManager(nc, { timeout: 2000 });
      return { problem: null, refused: false };
    } catch {
      return { problem: `NATS at ${url} answers but has no JetStream (start nats-server with -js)`, refused: false };
    } finally {
      await nc.close();
    }
  } catch (e) {
    return { problem: natsConnectProblem(url, e), refused: isNatsAuthFailure(e) };
  }
}

/** Null when NATS with JetStream answers at `url` (to `creds`, or anonymously), else why not. */
export const natsProblem = async (url: string, creds?: NatsCredentials): Promise<string | null> => (await natsStatus(url, creds)).problem;

/** Null when Postgres answers as the admin role, else why not. */
export async function postgresProblem(config: Config): Promise<string | null> {
  const target = adminDb(config, undefined, 'postgres');
  const c = new Client({ ...target, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('select 1');
    return null;
  } catch (e) {
    const where = `Postgres at postgres://${target.user}@${target.host}:${target.port}`;
    const why = (e as Error).message;
    return isAuthFailure(e)
      ? `${where} refused the login of role ${target.user}: ${why} (check PG_ADMIN_PASSWORD)`
      : `${where} is unreachable (${why})`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface PrivateServer {
  name: string;
  stop(): Promise<void>;
}

const which = (bin: string, extra: string[]) =>
  [...(process.env.PATH ?? '').split(':'), ...extra].map((d) => join(d, bin)).find((p) => existsSync(p));

/** A route between clustered nats-servers: the cluster's name, this server's route port, the others' route URLs. */
export interface NatsClusterOptions {
  name: string;
  port: number;
  routes: string[];
}

/** A private nats-server that tests can crash (`kill('SIGKILL')`) and start again on the same port and store. */
export interface NatsControl {
  url: string;
  port: number;
  serverName: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  /** Makes the server read its config again (SIGHUP): new keys and permissions apply to new connections. */
  reload(): void;
  /** The server process's pid. */
  readonly pid: number | undefined;
}

/**
 * Starts `nats-server -js` on a free port (or `opts.port`) with its store under `dir`; null when nats-server is not
 * installed. With `opts.cluster` it joins a cluster over routes on loopback (JetStream then needs every server). With
 * `opts.authConfig` (the include `orderflow setup` writes) it authenticates every client against it; `reload()` makes
 * it read the include again (SIGHUP), e.g. after a key rotation.
 */
export async function startPrivateNats(
  dir: string,
  opts: { port?: number; serverName?: string; cluster?: NatsClusterOptions; waitReady?: boolean; authConfig?: string } = {},
): Promise<(PrivateServer & NatsControl) | null> {
  const bin = which('nats-server', ['/usr/sbin', '/usr/local/bin']);
  if (!bin) return null;
  const port = opts.port ?? (await freePort());
  const serverName = opts.serverName ?? 'orderflow';
  const store = join(dir, 'nats', serverName);
  mkdirSync(store, { recursive: true });
  let args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store, '-n', serverName];
  if (opts.cluster)
    args.push(
      '--cluster_name',
      opts.cluster.name,
      '--cluster',
      `nats://127.0.0.1:${opts.cluster.port}`,
      '--routes',
      opts.cluster.routes.join(','),
    );
  if (opts.authConfig) {
    // Everything in the config file, none as flags: a reload (SIGHUP) refuses options that flags set. nats-server
    // resolves an include relative to the including file.
    const conf = join(dir, 'nats', `${serverName}.conf`);
    const lines = [
      `server_name: ${JSON.stringify(serverName)}`,
      `listen: "127.0.0.1:${port}"`,
      `jetstream: { store_dir: ${JSON.stringify(store)} }`,
      `log_file: ${JSON.stringify(join(dir, 'nats', `${serverName}.log`))}`,
      `include ${JSON.stringify(relative(dirname(conf), opts.authConfig))}`,
    ];
    // Routes between the lab's own servers on loopback; clients authenticate, routes need no account.
    if (opts.cluster)
      lines.push(
        `cluster: { name: ${JSON.stringify(opts.cluster.name)}, listen: "127.0.0.1:${opts.cluster.port}", routes: ${JSON.stringify(opts.cluster.routes)} }`,
      );
    writeFileSync(conf, lines.join('\n') + '\n');
    args = ['-c', conf];
  }
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess;
  const start = async () => {
    child = spawn(bin, args, { stdio: 'ignore' });
    if (opts.waitReady === false) return;
    // Up once it answers: with authentication, refusing an anonymous client is an answer.
    const down = async () => {
      const { problem, refused } = await natsStatus(url);
      return !!problem && !refused;
    };
    for (let i = 0; i < 100 && (await down()); i++) await new Promise((r) => setTimeout(r, 100));
  };
  const kill = (signal: NodeJS.Signals = 'SIGTERM') =>
    new Promise<void>((r) =>
      child.exitCode !== null || child.signalCode !== null ? r() : (child.once('exit', () => r()), child.kill(signal)),
    );
  await start();
  return {
    name: `nats-server (${url})`,
    url,
    port,
    serverName,
    kill,
    start,
    stop: () => kill('SIGTERM'),
    reload: () => void child.kill('SIGHUP'),
    get pid() {
      return child.pid;
    },
  };
}

/** What tests do to a private cluster: stop it as a crash would (`-m immediate`), start it again. */
export interface PostgresControl {
  port: number;
  crash(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Starts a throw-away PostgreSQL cluster (initdb) on a free port under `dir`; null when the PostgreSQL server
 * binaries are not installed. Trust auth, or with `adminPassword` scram-sha-256 for every login (the admin role
 * `postgres` gets that password). As root it runs as the `postgres` user, as Postgres requires.
 */
export async function startPrivatePostgres(
  dir: string,
  opts: { adminPassword?: string } = {},
): Promise<(PrivateServer & PostgresControl) | null> {
  const roots = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .sort()
        .reverse()
        .map((v) => `/usr/lib/postgresql/${v}/bin`)
    : [];
  const bin = [...roots, ...(process.env.PATH ?? '').split(':')].find(
    (d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')),
  );
  if (!bin) return null;
  const data = join(dir, 'postgres');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : join(bin, cmd), asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args, { stdio: 'pipe' });
  mkdirSync(data, { recursive: true });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
    chownSync(data, uid, gid);
  }
  const auth = ['--auth=trust'];
  if (opts.adminPassword) {
    const pwfile = join(dir, 'admin-password');
    writeFileSync(pwfile, opts.adminPassword, { mode: 0o644 });
    auth.splice(0, 1, '--auth=scram-sha-256', `--pwfile=${pwfile}`);
  }
  if (!existsSync(join(data, 'PG_VERSION'))) run('initdb', ['-D', data, '-U', 'postgres', ...auth, '-E', 'UTF8']);
  const start = () =>
    run('pg_ctl', ['-D', data, '-l', join(data, 'server.log'), '-w', '-o', `-p ${port} -k ${data} -c listen_addresses=127.0.0.1`, 'start']);
  start();
  return {
    name: `postgres (127.0.0.1:${port})`,
    port,
    stop: async () => {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    },
    crash: async () => {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    start: async () => {
      start();
    },
  };
}
