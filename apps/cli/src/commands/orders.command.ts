import { Command } from 'commander';
import { OrderView, Subjects } from '@orderflow/contracts';
import { CliFailure, UsageError } from '../cli.errors';
import { withClient } from '../context';
import { DeadLetters, DlqState } from '../dlq/dead-letters';
import { print } from '../output';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `orders show --json`: the order service's view plus the order's newest dead letter; `REJECTED` when only a dead letter exists. */
type Shown = (OrderView | (Omit<OrderView, 'status' | 'saga'> & { status: 'REJECTED'; saga: null })) & {
  deadLetter: { seq: number; error: string; state: DlqState } | null;
};

export function ordersCommand(): Command {
  const orders = new Command('orders').description('look at orders (asks the order service)');
  orders
    .command('show')
    .description('an order, its status and reason, and its newest saga attempt step by step (or the dead letter that rejected it)')
    .argument('<orderId>', 'the order id (UUID)')
    .option('--json', 'print JSON')
    .action(async (orderId: string, opts: { json?: boolean }, cmd: Command) => {
      if (!UUID.test(orderId)) throw new UsageError(`order id must be a UUID, got "${orderId}"`);
      const shown: Shown = await withClient(cmd, async (c) => {
        const view = await c.query<OrderView>(Subjects.QueryOrder, { orderId });
        const letter = (await (await DeadLetters.open(c)).ofOrder(orderId)).pop();
        const deadLetter = letter ? { seq: letter.seq, error: letter.error, state: letter.state } : null;
        if (view) return { ...view, deadLetter };
        if (!letter) throw new CliFailure(`no order ${orderId}`);
        return { orderId, status: 'REJECTED', reason: letter.error, saga: null, deadLetter };
      });
      if (opts.json) return print(true, shown);
      const out = process.stdout;
      if (!shown.saga) {
        out.write(
          `order ${orderId}: REJECTED — its ${Subjects.OrderCreated} was dead-lettered (${shown.reason}); see \`orderflow dlq show ${shown.deadLetter!.seq}\`\n`,
        );
        return;
      }
      out.write(
        `order ${shown.orderId}: ${shown.status}${shown.reason ? ` (${shown.reason})` : ''}\nsaga ${shown.saga.id} (attempt ${shown.saga.attempt}): ${shown.saga.status}${shown.saga.traceId ? `, trace ${shown.saga.traceId}` : ''}\n`,
      );
      print(
        false,
        shown,
        ['step', 'status', 'started', 'finished', 'error'],
        shown.saga.steps.map((s) => [s.name, s.status, s.startedAt, s.finishedAt, s.error]),
      );
      if (shown.deadLetter)
        out.write(
          `dead letter ${shown.deadLetter.seq} (${shown.deadLetter.state}): ${shown.deadLetter.error}; see \`orderflow dlq show ${shown.deadLetter.seq}\`\n`,
        );
    });
  return orders;
}
