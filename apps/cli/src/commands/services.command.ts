import { Command } from 'commander';
import { Config, ServiceNames } from '@orderflow/runtime';
import { CliFailure } from '../cli.errors';
import { cliConfig, wholeNumber, withClient } from '../context';
import { print } from '../output';
import { AppProcesses } from '../stack/apps';
import { prepareDeployment } from '../stack/deployment';
import { natsProblem, postgresProblem } from '../stack/infra';

const START_HINT = 'start them with `docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d nats postgres`';

/** @throws CliFailure with one line per unreachable server, naming its URL. */
export async function requireInfrastructure(config: Config): Promise<void> {
  const problems = (await Promise.all([natsProblem(config.NATS_URL), postgresProblem(config)])).filter((p): p is string => !!p);
  if (problems.length) throw new CliFailure(`${problems.join('; ')}; ${START_HINT}`);
}

/** `3h 12m`, `4m 10s`, `12s`: how long ago `started` was. */
function uptime(started: string | null): string {
  if (!started) return '?';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(started)) / 1000));
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

export function servicesCommand(): Command {
  const services = new Command('services').description('the four service apps: list the running instances, check, start');
  services
    .command('list', { isDefault: true })
    .description('every running instance in this namespace, from the NATS service API ($SRV.INFO / $SRV.STATS)')
    .option('--json', 'print JSON')
    .option('--wait <ms>', 'how long to collect replies', wholeNumber('--wait', 100, 60_000), 1000)
    .action(async (opts: { json?: boolean; wait: number }, cmd: Command) => {
      const rows = await withClient(cmd, (client) => client.instances(opts.wait));
      print(
        !!opts.json,
        rows,
        ['service', 'instance', 'version', 'pid', 'up', 'endpoints (requests / errors / avg ms)'],
        rows.map((r) => [
          r.name,
          r.id,
          r.version,
          r.pid ?? '',
          uptime(r.started),
          r.endpoints.map((e) => `${e.name}: ${e.requests} / ${e.errors} / ${e.averageMs}`).join('\n'),
        ]),
      );
      const missing = ServiceNames.filter((app) => !rows.some((r) => r.name === app));
      if (missing.length) {
        process.stderr.write(`orderflow: no running instance of ${missing.join(', ')}\n`);
        process.exitCode = 1;
      }
    });
  services
    .command('start')
    .description(
      'run setup, then start order, inventory, payment and notification as separate processes on a broker that authenticates (Ctrl-C stops them)',
    )
    .option('--data-dir <path>', 'where a private nats-server and its config go', process.env.ORDERFLOW_DATA_DIR ?? '.orderflow')
    .action(async (opts: { dataDir: string }, cmd: Command) => {
      const say = (line: string) => process.stderr.write(`orderflow: ${line}\n`);
      const deployment = await prepareDeployment(cliConfig(cmd), opts.dataDir, say);
      const { config, env } = deployment;
      const apps = new AppProcesses();
      const stop = async (code: number) => {
        await apps.stop();
        await deployment.stop();
        process.exit(code);
      };
      apps.start(ServiceNames, env, (app, code) => {
        say(`the ${app} service exited (code ${code}); stopping the others`);
        void stop(1);
      });
      process.once('SIGINT', () => void stop(0));
      process.once('SIGTERM', () => void stop(0));
      say(
        `started ${ServiceNames.join(', ')} (NATS ${config.NATS_URL}, Postgres ${config.PGHOST}:${config.PGPORT}/${config.PGDATABASE}); Ctrl-C stops them`,
      );
      await new Promise<never>(() => undefined);
    });
  services
    .command('status')
    .description('which service apps answer (the NATS service API: $SRV.PING.<app>)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const rows = await withClient(cmd, (client) =>
        Promise.all(ServiceNames.map(async (app) => ({ app, up: await client.ping(app, 1000) }))),
      );
      print(
        !!opts.json,
        rows,
        ['service', 'status'],
        rows.map((r) => [r.app, r.up ? 'up' : 'down']),
      );
      if (rows.some((r) => !r.up)) process.exitCode = 1;
    });
  return services;
}
