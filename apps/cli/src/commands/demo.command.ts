import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { AccountBalance, formatMoney, OrderCreated, StockLevel, Subjects } from '@orderflow/contracts';
import { AppName, AppNames } from '@orderflow/contracts/permissions';
import { PipelineClient } from '../client';
import { cliConfig, cliCredentials } from '../context';
import { printOutcomes } from '../output';
import { AppProcesses } from '../stack/apps';
import { Deployment, prepareDeployment } from '../stack/deployment';
import { publishOrders } from './publish.command';

const say = (line: string) => process.stderr.write(`demo: ${line}\n`);

/**
 * The demo's orders, one of each outcome. Names carry a run id so every run starts from fresh stock and
 * accounts, whatever earlier runs left in the database.
 */
export function demoOrders(run: string) {
  const sku = (s: string) => `${s}-${run}`;
  const customer = (c: string) => `${c}-${run}`;
  const o = (c: string, items: [string, number, number][]): OrderCreated => ({
    orderId: randomUUID(),
    customerId: customer(c),
    currency: 'USD',
    items: items.map(([s, quantity, unitPrice]) => ({ sku: sku(s), quantity, unitPrice })),
  });
  return {
    stock: [
      [sku('BOOK'), 20],
      [sku('PEN'), 100],
      [sku('LAMP'), 2],
    ] as [string, number][],
    deposits: [
      [customer('alice'), 50_000],
      [customer('bob'), 500],
    ] as [string, number][],
    orders: [
      o('alice', [
        ['BOOK', 2, 1250],
        ['PEN', 3, 199],
      ]), // confirmed
      o('alice', [['PEN', 10, 199]]), // confirmed
      o('alice', [['LAMP', 5, 3999]]), // out_of_stock
      o('alice', [['GHOST', 1, 100]]), // unknown_sku
      o('bob', [['BOOK', 1, 1250]]), // insufficient_funds (stock released)
      o('mallory', [['PEN', 1, 199]]), // unknown_customer
    ],
  };
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'start what is missing, seed stock and accounts, publish a mixed batch of orders, print the outcomes, stop what it started',
    )
    .option('--data-dir <path>', 'where private servers and app logs go', process.env.ORDERFLOW_DATA_DIR ?? '.orderflow')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { dataDir: string; json?: boolean }, cmd: Command) => {
      const base = cliConfig(cmd);
      const dataDir = resolve(opts.dataDir);
      const dir = join(dataDir, 'demo');
      mkdirSync(dir, { recursive: true });
      const apps = new AppProcesses();
      let client: PipelineClient | undefined;
      let deployment: Deployment | undefined;
      try {
        deployment = await prepareDeployment(base, dataDir, say, { privatePostgres: true });
        const { config } = deployment;
        const env = { ...deployment.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
        client = await PipelineClient.connect(config.NATS_URL, config.ORDERFLOW_NAMESPACE, 1, cliCredentials(config));

        const missing: AppName[] = [];
        for (const app of AppNames) if (!(await client.ping(app))) missing.push(app);
        if (missing.length) {
          const logs = join(dir, 'logs');
          mkdirSync(logs, { recursive: true });
          await apps.startAndWait(missing, env, client, logs);
          say(`started ${missing.join(', ')} (logs in ${logs})`);
        } else {
          say('using the services already running');
        }

        const run = randomUUID().slice(0, 6);
        const plan = demoOrders(run);
        for (const [sku, qty] of plan.stock)
          await client.command<StockLevel>(Subjects.InventoryRestock, { sku, quantity: qty }, Subjects.InventoryRestocked);
        for (const [customerId, amount] of plan.deposits)
          await client.command<AccountBalance>(Subjects.PaymentDeposit, { customerId, amount, currency: 'USD' }, Subjects.PaymentDeposited);
        say(
          `seeded ${plan.stock.map(([s, q]) => `${s}×${q}`).join(', ')}; deposits ${plan.deposits.map(([c, a]) => `${c} ${formatMoney(a, 'USD')}`).join(', ')}`,
        );
        say(`publishing ${plan.orders.length} orders and waiting for their outcomes`);
        const outcomes = (await publishOrders(client, plan.orders, true, 30_000)).outcomes!;
        printOutcomes(!!opts.json, outcomes);
        if (outcomes.some((o) => o.status === 'PENDING')) process.exitCode = 1;
      } finally {
        await client?.close();
        if (apps.running.length) say(`stopping ${apps.running.join(', ')}`);
        await apps.stop();
        await deployment?.stop();
      }
    });
}
