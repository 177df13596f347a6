import { Command } from 'commander';
import { AppName, AppNames } from '@orderflow/contracts/permissions';
import { Config } from '@orderflow/runtime/config';
import { CliFailure, UsageError } from '../cli.errors';
import { cliConfig, wholeNumber, withClient } from '../context';
import { print } from '../output';
import { isRunning } from '../stack/state';
import { askStack } from '../stack/supervisor';

const START_HINT = 'start them with `docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d nats postgres`';

/** @throws CliFailure with one line per unreachable server, naming its URL. */
export async function requireInfrastructure(config: Config): Promise<void> {
  const { natsProblem, postgresProblem } = await import('../stack/infra');
  const problems = (await Promise.all([natsProblem(config.NATS_URL), postgresProblem(config)])).filter((p): p is string => !!p);
  if (problems.length) throw new CliFailure(`${problems.join('; ')}; ${START_HINT}`);
}

const DATA_DIR = process.env.ORDERFLOW_DATA_DIR ?? '.orderflow';

/** An app name, collected. @throws UsageError naming the apps there are. */
const appNames = (value: string, all: AppName[]): AppName[] => {
  if (!(AppNames as readonly string[]).includes(value))
    throw new UsageError(`no app named "${value}": the apps are ${AppNames.join(', ')}`);
  return [...all, value as AppName];
};

/** `services start|stop APP…`: one at a time, each answered once done (stopped, or started and ready). */
async function actOnStack(op: 'start' | 'stop', apps: AppName[], dataDir: string): Promise<void> {
  for (const app of apps) {
    const { message } = await askStack(dataDir, { op, app });
    process.stderr.write(`orderflow: ${message}\n`);
  }
}

/** `3h 12m`, `4m 10s`, `12s`: how long ago `started` was. */
function uptime(started: string | null): string {
  if (!started) return '?';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(started)) / 1000));
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

export function servicesCommand(): Command {
  const services = new Command('services').description(
    'the four service apps: list the running instances, check, start or stop the stack or one app',
  );
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
      const missing = AppNames.filter((app) => !rows.some((r) => r.name === app));
      if (missing.length) {
        process.stderr.write(`orderflow: no running instance of ${missing.join(', ')}\n`);
        process.exitCode = 1;
      }
    });
  services
    .command('start')
    .description(
      'without APPs: run setup, then run the stack: order, inventory, payment and notification as separate processes on a broker that ' +
        'authenticates, each restarted (with backoff) if it exits; Ctrl-C or `services stop` stops them. ' +
        'With APPs: start those apps in the running stack and return once they are ready',
    )
    .argument('[apps...]', `apps of the running stack to start: ${AppNames.join(', ')}`, appNames, [] as AppName[])
    .option('--data-dir <path>', 'where the stack keeps its state (a private nats-server, its config, its control socket)', DATA_DIR)
    .action(async (apps: AppName[], opts: { dataDir: string }, cmd: Command) => {
      if (apps.length) return actOnStack('start', apps, opts.dataDir);
      const { runStack } = await import('../stack/run');
      await runStack(cliConfig(cmd), opts.dataDir);
    });
  services
    .command('stop')
    .description(
      'stop apps of the running stack (their graceful shutdown; they stay down until `services start APP`); without APPs, the whole stack',
    )
    .argument('[apps...]', `apps to stop: ${AppNames.join(', ')}`, appNames, [] as AppName[])
    .option('--data-dir <path>', 'where the stack keeps its state', DATA_DIR)
    .action(async (apps: AppName[], opts: { dataDir: string }) => {
      if (apps.length) return actOnStack('stop', apps, opts.dataDir);
      const { pid } = await askStack(opts.dataDir, { op: 'shutdown' });
      process.stderr.write(`orderflow: stopping the stack (pid ${pid})…\n`);
      const deadline = Date.now() + 60_000;
      while (isRunning(pid)) {
        if (Date.now() > deadline) throw new CliFailure(`the stack (pid ${pid}) is still stopping after 60 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
      process.stderr.write('orderflow: the stack stopped\n');
    });
  services
    .command('status')
    .description('which service apps answer (the NATS service API: $SRV.PING.<app>)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const rows = await withClient(cmd, (client) => Promise.all(AppNames.map(async (app) => ({ app, up: await client.ping(app, 1000) }))));
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
