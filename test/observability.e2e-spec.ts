import { randomBytes } from 'node:crypto';
import { Subjects } from '@orderflow/contracts';
import { parseExposition, Sample, total } from '../apps/cli/src/top/exposition';
import { orderflow, orderflowJson } from './support/cli';
import { order, Stack, waitFor } from './support/stack';

type App = 'order' | 'inventory' | 'payment' | 'notification';
const APPS: App[] = ['order', 'inventory', 'payment', 'notification'];
type Scrape = Sample[];
const value = total;

/**
 * What an operator sees of a running pipeline: one trace per saga across the four apps, Prometheus counters that
 * move by exactly what happened, and `orderflow top`. (Readiness under a stopped Postgres: outage.e2e-spec.ts.)
 */
describe('observability', () => {
  let stack: Stack;
  const scrape = async (app: App): Promise<Scrape> => {
    const res = await fetch(`${stack.httpUrl(app)}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return parseExposition(await res.text());
  };
  const scrapeAll = async () =>
    Object.fromEntries(await Promise.all(APPS.map(async (a) => [a, await scrape(a)] as const))) as Record<App, Scrape>;

  beforeAll(async () => {
    stack = await Stack.start();
    await stack.restock('OBS-SKU', 100);
    await stack.deposit('obs-rich', 1_000_000);
    await stack.deposit('obs-poor', 1);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('continues a given traceparent through every message of the saga, and orders show returns the trace id', async () => {
    const traceId = randomBytes(16).toString('hex');
    const o = order('obs-rich', [{ sku: 'OBS-SKU', quantity: 1, unitPrice: 500 }]);
    await stack.publish(Subjects.OrderCreated, o, undefined, { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });

    const seen: { subject: string; traceId: string | undefined }[] = [];
    for (const stream of ['ORDER', 'INVENTORY', 'PAYMENT']) {
      const { state } = await stack.jsm.streams.info(stack.ns.stream(stream as 'ORDER'));
      for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
        const m = await stack.jsm.streams.getMessage(stack.ns.stream(stream as 'ORDER'), { seq }).catch(() => undefined);
        if (!m || JSON.parse(Buffer.from(m.data).toString()).orderId !== o.orderId) continue;
        seen.push({ subject: stack.ns.logical(m.subject), traceId: m.header?.get('traceparent')?.split('-')[1] });
      }
    }
    expect(seen.map((s) => s.subject).sort()).toEqual(
      [
        Subjects.OrderCreated,
        Subjects.InventoryReserve,
        Subjects.InventoryReserved,
        Subjects.PaymentCharge,
        Subjects.PaymentCharged,
        Subjects.InventoryCommit,
        Subjects.InventoryCommitted,
        Subjects.OrderConfirmed,
      ].sort(),
    );
    expect(seen.filter((s) => s.traceId !== traceId)).toEqual([]);

    const shown = await orderflowJson(stack, ['orders', 'show', o.orderId]);
    expect(shown.saga.traceId).toBe(traceId);
    expect((await orderflowJson(stack, ['saga', 'show', o.orderId])).traceId).toBe(traceId);
  });

  it('moves the consumed, published, saga and dead-letter counters by exactly what N orders of known outcomes did', async () => {
    const before = await scrapeAll();
    const rich = Array.from({ length: 3 }, () => order('obs-rich', [{ sku: 'OBS-SKU', quantity: 2, unitPrice: 100 }]));
    const poor = Array.from({ length: 2 }, () => order('obs-poor', [{ sku: 'OBS-SKU', quantity: 1, unitPrice: 100 }]));
    for (const o of [...rich, ...poor]) await stack.publish(Subjects.OrderCreated, o);
    await stack.publish(Subjects.OrderCreated, { orderId: 'not-a-uuid', items: [] });
    for (const o of rich) expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    for (const o of poor) expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'insufficient_funds' });

    // app, metric, labels → how much it must have moved
    const expected: [App, string, Record<string, string>, number][] = [
      ['order', 'orderflow_sagas_started_total', { type: 'PlaceOrder' }, 5],
      ['order', 'orderflow_sagas_finished_total', { type: 'PlaceOrder', status: 'COMPLETED', reason: '' }, 3],
      ['order', 'orderflow_sagas_finished_total', { type: 'PlaceOrder', status: 'CANCELLED', reason: 'insufficient_funds' }, 2],
      ['order', 'orderflow_saga_duration_seconds_count', { type: 'PlaceOrder', status: 'COMPLETED' }, 3],
      ['order', 'orderflow_messages_consumed_total', { subject: Subjects.OrderCreated, outcome: 'acked' }, 5],
      ['order', 'orderflow_messages_consumed_total', { subject: Subjects.OrderCreated, outcome: 'dead_lettered' }, 1],
      ['order', 'orderflow_dead_letters_total', { subject: Subjects.OrderCreated }, 1],
      ['order', 'orderflow_messages_consumed_total', { subject: Subjects.InventoryReserved, outcome: 'acked' }, 5],
      ['order', 'orderflow_messages_consumed_total', { subject: Subjects.PaymentDeclined, outcome: 'acked' }, 2],
      ['order', 'orderflow_messages_published_total', { subject: Subjects.InventoryReserve }, 5],
      ['order', 'orderflow_messages_published_total', { subject: Subjects.PaymentCharge }, 5],
      ['order', 'orderflow_messages_published_total', { subject: Subjects.InventoryRelease }, 2],
      ['order', 'orderflow_messages_published_total', { subject: Subjects.InventoryCommit }, 3],
      ['order', 'orderflow_messages_published_total', { subject: Subjects.OrderConfirmed }, 3],
      ['order', 'orderflow_messages_published_total', { subject: Subjects.OrderCancelled }, 2],
      ['inventory', 'orderflow_messages_consumed_total', { subject: Subjects.InventoryReserve, outcome: 'acked' }, 5],
      ['inventory', 'orderflow_messages_consumed_total', { subject: Subjects.InventoryRelease, outcome: 'acked' }, 2],
      ['inventory', 'orderflow_messages_consumed_total', { subject: Subjects.InventoryCommit, outcome: 'acked' }, 3],
      ['inventory', 'orderflow_messages_published_total', {}, 10],
      ['payment', 'orderflow_messages_consumed_total', { subject: Subjects.PaymentCharge, outcome: 'acked' }, 5],
      ['payment', 'orderflow_messages_published_total', { subject: Subjects.PaymentCharged }, 3],
      ['payment', 'orderflow_messages_published_total', { subject: Subjects.PaymentDeclined }, 2],
      ['notification', 'orderflow_messages_consumed_total', { subject: Subjects.OrderConfirmed, outcome: 'acked' }, 3],
      ['notification', 'orderflow_messages_consumed_total', { subject: Subjects.OrderCancelled, outcome: 'acked' }, 2],
    ];
    const moved = (after: Record<App, Scrape>) =>
      expected.map(([app, name, labels]) => [app, name, labels, value(after[app], name, labels) - value(before[app], name, labels)]);
    // The last counters move a moment after the outcome (the notification's ack, the last pubacks).
    await waitFor(async () => JSON.stringify(moved(await scrapeAll())) === JSON.stringify(expected)).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(moved(await scrapeAll())).toEqual(expected);

    const after = await scrape('order');
    expect(value(after, 'orderflow_sagas', { status: 'RUNNING' })).toBe(0);
    expect(value(after, 'orderflow_outbox_size')).toBe(0);
    expect(value(after, 'orderflow_consumer_pending', { consumer: 'order-placement' })).toBe(0);
    expect(after.some((s) => s.name === 'process_cpu_seconds_total')).toBe(true);
  });

  it('orderflow top --once --json reports what the pipeline did', async () => {
    const top = await orderflowJson(stack, ['top', '--once']);
    expect(top.instances.map((i: { name: string; scraped: boolean }) => `${i.name}:${i.scraped}`).sort()).toEqual(
      APPS.map((a) => `${a}:true`).sort(),
    );
    expect(top.sagas).toMatchObject({ started: 6, finished: 6, running: 0, compensating: 0, failed: 0 });
    expect(top.outcomes).toEqual([
      { status: 'COMPLETED', reason: null, count: 4 },
      { status: 'CANCELLED', reason: 'insufficient_funds', count: 2 },
    ]);
    expect(top.deadLetters.total).toBe(1);
    expect(top.deadLetters.bySubject[0]).toMatchObject({ subject: Subjects.OrderCreated, count: 1 });
    expect(top.latencyMs.p50).toBeGreaterThan(0);
    expect(top.consumers.length).toBeGreaterThan(5);
    expect(top.missing).toEqual([]);
    // Into a pipe: the same in text, without a colour code.
    const text = await orderflow(stack, ['top', '--once']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^orderflow top — .*\napps: .*order ×1/);
    expect(text.stdout).toMatch(/· 6 started, 6 ended\n/);
    // eslint-disable-next-line no-control-regex -- what a terminal would act on
    expect(text.stdout).not.toMatch(/\u001b/);
  });
});
