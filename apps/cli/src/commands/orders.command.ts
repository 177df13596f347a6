import { Command } from 'commander';
import { OrderView, Subjects } from '@orderflow/contracts';
import { CliFailure, UsageError } from '../cli.errors';
import { withClient } from '../context';
import { print } from '../output';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function ordersCommand(): Command {
  const orders = new Command('orders').description('look at orders (asks the order service)');
  orders
    .command('show')
    .description('an order, its status and reason, and its saga step by step')
    .argument('<orderId>', 'the order id (UUID)')
    .option('--json', 'print JSON')
    .action(async (orderId: string, opts: { json?: boolean }, cmd: Command) => {
      if (!UUID.test(orderId)) throw new UsageError(`order id must be a UUID, got "${orderId}"`);
      const view = await withClient(cmd, (c) => c.query<OrderView>(Subjects.QueryOrder, { orderId }));
      if (!view) throw new CliFailure(`no order ${orderId}`);
      if (opts.json) return print(true, view);
      process.stdout.write(`order ${view.orderId}: ${view.status}${view.reason ? ` (${view.reason})` : ''}\nsaga ${view.saga.id}: ${view.saga.status}\n`);
      print(false, view, ['step', 'status', 'started', 'finished', 'error'], view.saga.steps.map((s) => [s.name, s.status, s.startedAt, s.finishedAt, s.error]));
    });
  return orders;
}
