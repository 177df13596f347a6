import { Command } from 'commander';
import { CliFailure } from '../cli.errors';
import { cliConfig } from '../context';
import { print } from '../output';
import { migrateDatabases } from '../setup/setup';

export function dbCommand(): Command {
  const db = new Command('db').description('the database');
  db.command('migrate')
    .description(
      "setup's database step, with the admin credentials: the database, each service's owner and runtime roles (a password each), schema, migrations and grants (idempotent)",
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const done = await migrateDatabases(cliConfig(cmd), true).catch((e: Error) => {
        throw new CliFailure(e.message, { cause: e });
      });
      const rows = done.map(({ service, schema, runtime, migrations }) => ({ service, schema, runtime, migrations }));
      print(
        !!opts.json,
        rows,
        ['service', 'schema', 'runtime role', 'migrations applied'],
        rows.map((r) => [r.service, r.schema, r.runtime, r.migrations]),
      );
    });
  return db;
}
