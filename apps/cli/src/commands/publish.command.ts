import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { OrderCreated, SagaSummary, Subjects } from '@orderflow/contracts';
import { UsageError } from '../cli.errors';
import { Outcome, PipelineClient } from '../client';
import { currencyCode, wholeNumber, withClient } from '../context';
import { countsLine, printOutcomes, print } from '../output';
import { progress } from '../progress';
import { newestAttempts, standing } from '../saga/newest';
import { generateOrders, parseItem, readOrders, toOrder } from './order-input';

interface PublishOptions {
  customer?: string;
  item: string[];
  currency: string;
  orderId?: string;
  file?: string;
  count?: number;
  wait?: boolean;
  json?: boolean;
  timeout: number;
}

/**
 * Publishes orders, `window` at a time, and (with `wait`) waits for each outcome, with a progress bar on a
 * terminal; null without `wait`. When `signal` aborts (Ctrl-C), it stops publishing and waiting and returns
 * the outcomes of what was published so far.
 */
export async function publishOrders(
  client: PipelineClient,
  orders: OrderCreated[],
  wait: boolean,
  timeoutMs: number,
  signal?: AbortSignal,
  window = 256,
): Promise<{ published: OrderCreated[]; outcomes: Outcome[] | null }> {
  const listener = wait ? client.outcomes() : undefined;
  const publishedAt = new Map<string, number>();
  const published: OrderCreated[] = [];
  for (let i = 0; i < orders.length && !signal?.aborted; i += window) {
    await Promise.all(
      orders.slice(i, i + window).map(async (o) => {
        const msgId = randomUUID();
        listener?.expect(msgId, o.orderId);
        publishedAt.set(o.orderId, Date.now());
        await client.publish(Subjects.OrderCreated, o, msgId);
        published.push(o);
      }),
    );
  }
  if (!listener) return { published, outcomes: null };
  const bar = progress('outcomes', publishedAt.size);
  let outcomes: Outcome[];
  try {
    outcomes = await listener.wait(publishedAt, timeoutMs, () => bar.tick(), signal);
  } finally {
    bar.stop();
  }
  await addStandings(client, outcomes);
  return { published, outcomes };
}

/** Says, for each PENDING outcome, which step its saga waits on and since when (asked once, for all of them). */
async function addStandings(client: PipelineClient, outcomes: Outcome[]): Promise<void> {
  const pending = outcomes.filter((o) => o.status === 'PENDING');
  if (!pending.length) return;
  const newest = await newestAttempts(
    client,
    pending.map((o) => o.orderId),
  ).catch(() => new Map<string, SagaSummary>()); // the order service is down: nothing more to say
  for (const o of pending) {
    const s = newest.get(o.orderId);
    o.waiting = s ? { sagaId: s.sagaId, attempt: s.attempt, status: s.status, step: s.step, since: s.updatedAt } : null;
    o.reason = s ? standing(s) : 'no saga yet (the order service has not taken it)';
  }
}

/** "3 orders: 2 CONFIRMED, 1 CANCELLED" on stderr; the PENDING ones by the step they wait on. */
export function summarise(outcomes: Outcome[]): void {
  process.stderr.write(`${outcomes.length} order(s): ${countsLine(outcomes.map((o) => o.status))}\n`);
  const pending = outcomes.filter((o) => o.status === 'PENDING');
  if (pending.length)
    process.stderr.write(
      `PENDING by where they wait: ${countsLine(pending.map((o) => (o.waiting ? `at ${o.waiting.step}` : 'not taken yet')))}\n`,
    );
}

export function publishCommand(): Command {
  return new Command('publish')
    .description('publish order.created events (from flags, a file, or generated)')
    .argument('<event>', 'the event to publish: order.created')
    .option('--customer <id>', 'customer id')
    .option(
      '--item <SKU:QTY:UNIT_PRICE>',
      'an order line, unit price in minor units (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--currency <code>', 'ISO 4217 currency', currencyCode, 'USD')
    .option('--order-id <uuid>', 'order id (default: a new UUID)')
    .option('--file <path|->', 'orders as one JSON object, an array, or NDJSON; - for stdin')
    .option('--count <n>', 'publish N generated orders (each with --customer and --item when given)', wholeNumber('--count', 1, 1_000_000))
    .option('--wait', 'wait for each outcome and print it')
    .option('--timeout <ms>', 'how long --wait waits', wholeNumber('--timeout', 1), 30000)
    .option('--json', 'print JSON instead of a table')
    .action(async (event: string, opts: PublishOptions, cmd: Command) => {
      if (event !== Subjects.OrderCreated) throw new UsageError(`can only publish ${Subjects.OrderCreated}, not "${event}"`);
      const orders = ordersFrom(opts);
      // Ctrl-C: stop, print what was published so far with the statuses known, exit 130.
      const interrupt = new AbortController();
      const onSigint = () => interrupt.abort();
      process.once('SIGINT', onSigint);
      try {
        const { published, outcomes } = await withClient(cmd, (client) =>
          publishOrders(client, orders, !!opts.wait, opts.timeout, interrupt.signal),
        );
        if (outcomes) {
          printOutcomes(!!opts.json, outcomes);
          summarise(outcomes);
          // An order with no outcome within --timeout, or rejected, is a failure of the run.
          if (outcomes.some((o) => o.status === 'PENDING' || o.status === 'REJECTED' || o.status === 'DUPLICATE')) process.exitCode = 1;
        } else {
          print(
            !!opts.json,
            published.map((o) => ({ orderId: o.orderId })),
            ['order id', 'status'],
            published.map((o) => [o.orderId, 'published']),
          );
        }
        if (interrupt.signal.aborted) {
          process.stderr.write(`interrupted: ${published.length} of ${orders.length} order(s) published\n`);
          process.exitCode = 130;
        }
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}

function ordersFrom(opts: PublishOptions): OrderCreated[] {
  if (opts.file !== undefined && opts.count !== undefined) throw new UsageError('use either --file or --count, not both');
  if (opts.file !== undefined) {
    if (opts.customer || opts.item.length || opts.orderId)
      throw new UsageError('--file cannot be combined with --customer, --item or --order-id');
    return readOrders(opts.file);
  }
  if (opts.count !== undefined) {
    if (opts.orderId) throw new UsageError('--order-id cannot be combined with --count');
    return generateOrders(
      opts.count,
      opts.customer ?? 'demo-customer',
      opts.currency,
      opts.item.length ? opts.item.map(parseItem) : undefined,
    );
  }
  if (!opts.customer) throw new UsageError('--customer is required (or use --file or --count)');
  if (opts.item.length === 0) throw new UsageError('at least one --item SKU:QTY:UNIT_PRICE is required');
  const record: Record<string, unknown> = { customerId: opts.customer, currency: opts.currency, items: opts.item.map(parseItem) };
  if (opts.orderId) record.orderId = opts.orderId;
  return [toOrder(record, 'order')];
}
