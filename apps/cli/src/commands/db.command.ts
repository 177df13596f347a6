import { Command } from 'commander';
import { openServiceDatabase, ServiceDefinition } from '@orderflow/runtime';
import { orderMigrations } from '../../../order/src/order.module';
import { inventoryMigrations } from '../../../inventory/src/inventory.module';
import { paymentMigrations } from '../../../payment/src/payment.module';
import { notificationMigrations } from '../../../notification/src/notification.module';
import { CliFailure } from '../cli.errors';
import { cliConfig } from '../context';
import { print } from '../output';

/** Every service's database definition: what `db migrate` prepares (the apps also do it at start-up). */
export const serviceDefinitions: ServiceDefinition[] = [
  { service: 'order', migrations: orderMigrations },
  { service: 'inventory', migrations: inventoryMigrations },
  { service: 'payment', migrations: paymentMigrations },
  { service: 'notification', migrations: notificationMigrations },
];

export function dbCommand(): Command {
  const db = new Command('db').description('the database');
  db.command('migrate')
    .description('create the database, each service role and schema if missing, and apply pending migrations (idempotent)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const config = cliConfig(cmd);
      const rows: { service: string; schema: string; migrations: number }[] = [];
      for (const def of serviceDefinitions) {
        const ds = await openServiceDatabase(config, def).catch((e: Error) => {
          throw new CliFailure(e.message);
        });
        const [{ n }] = await ds.query('select count(*)::int as n from migrations');
        rows.push({ service: def.service, schema: ds.driver.schema ?? '', migrations: n });
        await ds.destroy();
      }
      print(
        !!opts.json,
        rows,
        ['service', 'schema', 'migrations applied'],
        rows.map((r) => [r.service, r.schema, r.migrations]),
      );
    });
  return db;
}
