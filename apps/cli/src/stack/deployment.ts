import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Config, loadConfig, natsCredentials } from '@orderflow/runtime';
import { CliFailure } from '../cli.errors';
import { runSetup } from '../setup/setup';
import { natsStateFile } from './state';
import { natsProblem, natsStatus, postgresProblem, PrivateServer, startPrivateNats, startPrivatePostgres } from './infra';

const HINT = 'start them with `docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d nats postgres`';

/** Runs `start`, turning a failure (initdb or pg_ctl refusing, say) into one line. */
async function startPrivate<T>(name: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    const detail = ((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim().split('\n')[0];
    throw new CliFailure(`could not start a private ${name}: ${detail}`, { cause: e });
  }
}

/** A deployment ready for the apps: the environment to start them with, and the private servers to stop afterwards. */
export interface Deployment {
  config: Config;
  env: Record<string, string | undefined>;
  servers: PrivateServer[];
  stop(): Promise<void>;
}

/**
 * Gets a deployment ready to run the apps, secure by default (`npm start`, `npm run demo`, `orderflow bench`):
 * 1. `orderflow setup`'s keys and nats-server config include (under `dataDir`);
 * 2. a broker that authenticates: NATS at `NATS_URL` if it refuses anonymous clients (it is taken to load that
 *    include); if it lets anyone in, or does not answer, a private nats-server with the include on a free port, its URL
 *    recorded in `<dataDir>/nats/state.json` for other terminals. With `ORDERFLOW_INSECURE=1`, `NATS_URL` as it is
 *    (a private plain server only when it does not answer);
 * 3. Postgres at `PGHOST:PGPORT`, or (with `privatePostgres`) a private cluster when it does not answer;
 * 4. streams, consumers, bucket and databases provisioned (setup, as the `setup` identity).
 * @throws CliFailure naming what is missing.
 */
export async function prepareDeployment(
  base: Config,
  dataDir: string,
  say: (line: string) => void,
  opts: { privatePostgres?: boolean; secrets?: string } = {},
): Promise<Deployment> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const natsConfig = join(dir, 'nats', 'orderflow-auth.conf');
  const env: Record<string, string | undefined> = {
    ...process.env,
    NATS_URL: base.NATS_URL,
    ORDERFLOW_NAMESPACE: base.ORDERFLOW_NAMESPACE,
    ORDERFLOW_SECRETS: resolve(opts.secrets ?? base.ORDERFLOW_SECRETS),
  };
  let config = loadConfig(env);
  const servers: PrivateServer[] = [];
  const stop = async () => {
    for (const s of servers.reverse()) {
      say(`stopping the private ${s.name}`);
      await s.stop().catch((e: Error) => say(`could not stop ${s.name}: ${e.message}`));
    }
    servers.length = 0;
    rmSync(natsStateFile(dir), { force: true });
  };
  try {
    const insecure = config.ORDERFLOW_INSECURE === '1';
    if (!insecure) await runSetup(config, { natsConfig, provision: false, database: false });
    const { problem: anonymous, refused: refusesAnonymous } = await natsStatus(config.NATS_URL);
    if (insecure ? !!anonymous : !refusesAnonymous) {
      const why = anonymous ?? `NATS at ${config.NATS_URL} lets anyone in`;
      const nats = await startPrivate('nats-server', () => startPrivateNats(dir, insecure ? {} : { authConfig: natsConfig }));
      if (!nats) throw new CliFailure(`${why}, and nats-server is not installed; ${HINT}`);
      servers.push(nats);
      env.NATS_URL = nats.url;
      writeFileSync(natsStateFile(dir), JSON.stringify({ url: nats.url, pid: nats.pid, authConfig: natsConfig }) + '\n');
      say(`${why}; started a private ${nats.name}${insecure ? '' : ' that authenticates every client'}`);
    } else if (!insecure) {
      const problem = await natsProblem(config.NATS_URL, natsCredentials(config, 'setup'));
      if (problem) throw new CliFailure(`${problem} (does the server include ${natsConfig}?)`);
    }
    const pgDown = await postgresProblem(config);
    if (pgDown) {
      if (!opts.privatePostgres) throw new CliFailure(`${pgDown}; ${HINT}`);
      const pg = await startPrivate('postgres', () => startPrivatePostgres(dir));
      if (!pg) throw new CliFailure(`${pgDown}, and the PostgreSQL server is not installed; ${HINT}`);
      servers.push(pg);
      Object.assign(env, { PGHOST: '127.0.0.1', PGPORT: String(pg.port), PG_ADMIN_USER: 'postgres', PG_ADMIN_PASSWORD: '' });
      say(`${pgDown}; started a private ${pg.name}`);
    }
    config = loadConfig(env);
    await runSetup(config, { natsConfig, keys: !insecure });
    return { config, env, servers, stop };
  } catch (e) {
    await stop();
    if (e instanceof CliFailure) throw e;
    throw new CliFailure(`setup: ${(e as Error).message}`, { cause: e });
  }
}
