import { Command } from 'commander';
import { Config, ServiceNames } from '@orderflow/runtime';
import { CliFailure } from '../cli.errors';
import { cliConfig, withClient } from '../context';
import { print } from '../output';
import { AppProcesses } from '../stack/apps';
import { natsProblem, postgresProblem } from '../stack/infra';

const START_HINT = 'start them with `docker compose up -d nats postgres`';

/** @throws CliFailure with one line per unreachable server, naming its URL. */
export async function requireInfrastructure(config: Config): Promise<void> {
  const problems = (await Promise.all([natsProblem(config.NATS_URL), postgresProblem(config)])).filter((p): p is string => !!p);
  if (problems.length) throw new CliFailure(`${problems.join('; ')}; ${START_HINT}`);
}

export function servicesCommand(): Command {
  const services = new Command('services').description('the four service apps');
  services
    .command('start')
    .description('start order, inventory, payment and notification as separate processes (Ctrl-C stops them)')
    .action(async (_opts: unknown, cmd: Command) => {
      const config = cliConfig(cmd);
      await requireInfrastructure(config);
      const apps = new AppProcesses();
      const stop = async (code: number) => {
        await apps.stop();
        process.exit(code);
      };
      const env = { ...process.env, NATS_URL: config.NATS_URL, ORDERFLOW_NAMESPACE: config.ORDERFLOW_NAMESPACE };
      apps.start(ServiceNames, env, (app, code) => {
        process.stderr.write(`orderflow: the ${app} service exited (code ${code}); stopping the others\n`);
        void stop(1);
      });
      process.once('SIGINT', () => void stop(0));
      process.once('SIGTERM', () => void stop(0));
      process.stderr.write(
        `orderflow: started ${ServiceNames.join(', ')} (NATS ${config.NATS_URL}, Postgres ${config.PGHOST}:${config.PGPORT}/${config.PGDATABASE}); Ctrl-C stops them\n`,
      );
      await new Promise<never>(() => undefined);
    });
  services
    .command('status')
    .description('which service apps answer (query.<app>.ping over NATS)')
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
