import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, jetstreamManager } from '@orderflow/messaging/nats';
import { AccountBalance, AppNames, Namespace, OrderView, StockLevel, Subjects } from '@orderflow/contracts';
import { deleteNamespaceStreams } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { adminDb, loadConfig } from '@orderflow/runtime';
import { PipelineClient } from '../apps/cli/src/client';
import { provisionAll } from './support/provision';
import { order, waitFor } from './support/stack';

/** A span as the OTLP/HTTP JSON exporter sends it (the fields these tests read). */
interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
  events?: { name: string; attributes: { key: string; value: { stringValue?: string } }[] }[];
}

/**
 * What an operator sees of the apps from outside, with the four apps running as real processes (`npm run build`
 * first), as under `orderflow services start` or in containers: the JSON lines they write to their log files, and
 * the spans they export with OTLP/HTTP to a collector this test runs.
 */
describe('the apps as processes: logs and traces', () => {
  const id = `at${process.pid}${randomUUID().slice(0, 6)}`;
  const spans: ExportedSpan[] = [];
  const collector: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const sent = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: ExportedSpan[] }[] }[] };
      for (const rs of sent.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const env: NodeJS.ProcessEnv = { ...process.env, ORDERFLOW_NAMESPACE: id, PGDATABASE: `orderflow_${id}`, LOG_LEVEL: 'info' };
  const config = loadConfig(env);
  const logDir = mkdtempSync(join(tmpdir(), 'orderflow-logs-'));
  let apps: ChildProcess[] = [];
  let client: PipelineClient;

  const raw = (app: string): string[] =>
    readFileSync(join(logDir, `${app}.log`), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'));
  const lines = (app: string): Record<string, unknown>[] => raw(app).map((l) => JSON.parse(l));

  beforeAll(async () => {
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    env.OTEL_BSP_SCHEDULE_DELAY = '100';
    client = await PipelineClient.connect(config.NATS_URL, id);
    await provisionAll(config);
    apps = AppNames.map((app) => {
      const out = openSync(join(logDir, `${app}.log`), 'a');
      return spawn(process.execPath, [join(__dirname, '..', 'dist', 'apps', app, 'src', 'main.js')], { env, stdio: ['ignore', out, out] });
    });
    for (const app of AppNames) await waitFor(() => client.ping(app, 250), 30_000);
    await client.command<StockLevel>(Subjects.InventoryRestock, { sku: 'AT-SKU', quantity: 5 }, Subjects.InventoryRestocked);
    await client.command<AccountBalance>(
      Subjects.PaymentDeposit,
      { customerId: 'at-rich', amount: 10_000, currency: 'USD' },
      Subjects.PaymentDeposited,
    );
  });
  afterAll(async () => {
    await Promise.all(
      apps.map((child) => new Promise((r) => (child.exitCode !== null ? r(null) : (child.once('exit', r), child.kill('SIGTERM'))))),
    );
    await client?.close();
    const nc = await connect({ servers: config.NATS_URL });
    await deleteNamespaceStreams(await jetstreamManager(nc), new Namespace(id));
    await nc.close();
    await dropDatabase(adminDb(config));
    rmSync(logDir, { recursive: true, force: true });
    collector.close();
  });

  it('binds the order, saga, trace id, subject and stream sequence to every line a handler writes', async () => {
    const traceId = randomBytes(16).toString('hex');
    const o = order('at-rich', [{ sku: 'AT-SKU', quantity: 1, unitPrice: 500 }]);
    await client.publish(Subjects.OrderCreated, o, undefined, { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });

    // The notification handler logs with only its own fields; the order app's saga lines come from the orchestrator.
    const notified = () => lines('notification').find((l) => l.orderId === o.orderId && String(l.msg).startsWith('notify'));
    await waitFor(() => !!notified() && lines('order').some((l) => l.msg === 'saga completed' && l.orderId === o.orderId));

    const context = {
      orderId: o.orderId,
      sagaId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      traceId,
      stream: expect.any(String),
      seq: expect.any(Number),
    };
    expect(notified()).toMatchObject({ ...context, app: 'notification', subject: Subjects.OrderConfirmed });
    const order_ = lines('order').filter((l) => l.orderId === o.orderId);
    expect(order_.find((l) => l.msg === 'saga started')).toMatchObject({ ...context, subject: Subjects.OrderCreated });
    expect(order_.find((l) => l.msg === 'saga completed')).toMatchObject({ ...context, subject: Subjects.InventoryCommitted });
    // One saga: the same saga id on every line of this order.
    expect(new Set(order_.map((l) => l.sagaId)).size).toBe(1);
    expect(notified()!.sagaId).toBe(order_[0].sagaId);
    // Each field once, though the orchestrator names the order and saga on the line itself (the mixin gives them too).
    const completed = raw('order').find((l) => l.includes(o.orderId) && l.includes('"saga completed"'))!;
    expect(completed.split('"orderId"').length - 1).toBe(1);
    expect(completed.split('"sagaId"').length - 1).toBe(1);

    // A line written outside any message carries none of it.
    const started = lines('order').find((l) => l.msg === 'started');
    expect(started).toBeDefined();
    expect(started).not.toHaveProperty('traceId');
    expect(started).not.toHaveProperty('orderId');
  });

  it('exports one trace per saga: each hop a send span, its transaction and process spans, the transitions as events', async () => {
    const o = order('at-rich', [{ sku: 'AT-SKU', quantity: 1, unitPrice: 700 }]);
    await client.publish(Subjects.OrderCreated, o); // no traceparent: the trace starts where it is consumed
    let view: OrderView | undefined;
    await waitFor(async () => (view = await client.query<OrderView>(Subjects.QueryOrder, { orderId: o.orderId }))?.status === 'CONFIRMED');
    const traceId = view!.saga.traceId!;

    const ofTrace = () => spans.filter((s) => s.traceId === traceId);
    const named = (name: string) => ofTrace().filter((s) => s.name === name);
    const hops: [string, string, string][] = [
      [Subjects.OrderCreated, Subjects.InventoryReserve, 'inventory-commands'],
      [Subjects.InventoryReserve, Subjects.InventoryReserved, 'order-saga-replies'],
      [Subjects.InventoryReserved, Subjects.PaymentCharge, 'payment-commands'],
      [Subjects.PaymentCharge, Subjects.PaymentCharged, 'order-saga-replies'],
      [Subjects.PaymentCharged, Subjects.InventoryCommit, 'inventory-commands'],
      [Subjects.InventoryCommit, Subjects.InventoryCommitted, 'order-saga-replies'],
      [Subjects.InventoryCommitted, Subjects.OrderConfirmed, 'notification-order-confirmed'],
    ];
    // Each app exports its own batches: wait until the last of them arrived (2 spans for the first hop, 3 per hop after).
    await waitFor(() => ofTrace().length >= 2 + 3 * hops.length);
    const byId = new Map(ofTrace().map((s) => [s.spanId, s]));
    const parentOf = (s: ExportedSpan) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);
    const one = (name: string) => {
      expect(named(name).map((s) => s.name)).toEqual([name]);
      return named(name)[0];
    };

    // The first hop: the batch transaction that consumed order.created is the root, its process span a child.
    const placement = one('order-placement transaction');
    expect(placement.parentSpanId || undefined).toBeUndefined();
    expect(parentOf(one(`${Subjects.OrderCreated} process`))).toBe(placement);

    // Every later hop: a send span, child of the process span that wrote the message; the receiving app's process
    // span and its batch transaction, both children of that send span.
    for (const [from, subject, consumer] of hops) {
      const send = one(`${subject} send`);
      expect(parentOf(send)?.name).toBe(`${from} process`);
      const processed = one(`${subject} process`);
      expect(parentOf(processed)).toBe(send);
      expect(named(`${consumer} transaction`).filter((t) => parentOf(t) === send)).toHaveLength(1);
      const attributes = Object.fromEntries(processed.attributes.map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)]));
      expect(attributes).toMatchObject({
        'messaging.destination.name': subject,
        'messaging.consumer.group.name': consumer,
        'messaging.nats.delivery_attempt': 1,
        'orderflow.order_id': o.orderId,
        'orderflow.saga_id': view!.saga.id,
      });
      expect(attributes['messaging.nats.stream_sequence']).toBeGreaterThan(0);
    }

    // The saga's transitions, as events of the spans whose handlers made them.
    const transitions = ofTrace().flatMap((s) =>
      (s.events ?? [])
        .filter((e) => e.name === 'saga.transition')
        .map((e) => `${s.name}: ${e.attributes.find((a) => a.key === 'saga.status')?.value.stringValue}`),
    );
    expect(transitions).toEqual([
      `${Subjects.OrderCreated} process: RUNNING`,
      `${Subjects.InventoryReserved} process: RUNNING`,
      `${Subjects.PaymentCharged} process: RUNNING`,
      `${Subjects.InventoryCommitted} process: COMPLETED`,
    ]);
  });
});
