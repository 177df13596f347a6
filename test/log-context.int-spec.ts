import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { AccountBalance, Namespace, StockLevel, Subjects } from '@orderflow/contracts';
import { deleteNamespaceStreams } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { adminDb, loadConfig, ServiceNames } from '@orderflow/runtime';
import { PipelineClient } from '../apps/cli/src/client';
import { order, waitFor } from './support/stack';

/**
 * What an operator reads in the apps' own logs: every line written while a message is handled names its order, saga,
 * trace, subject and stream position, though no handler passes them. The four apps run as real processes (`npm run
 * build` first) writing JSON lines to files, as they do under `orderflow services start` or in a container.
 */
describe('log context', () => {
  const id = `lc${process.pid}${randomUUID().slice(0, 6)}`;
  const env = { ...process.env, ORDERFLOW_NAMESPACE: id, PGDATABASE: `orderflow_${id}`, LOG_LEVEL: 'info' };
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
    client = await PipelineClient.connect(config.NATS_URL, id);
    apps = ServiceNames.map((app) => {
      const out = openSync(join(logDir, `${app}.log`), 'a');
      return spawn(process.execPath, [join(__dirname, '..', 'dist', 'apps', app, 'src', 'main.js')], { env, stdio: ['ignore', out, out] });
    });
    for (const app of ServiceNames) await waitFor(() => client.ping(app, 250), 30_000);
  });
  afterAll(async () => {
    await Promise.all(
      apps.map((child) => new Promise((r) => (child.exitCode !== null ? r(null) : (child.once('exit', r), child.kill('SIGTERM'))))),
    );
    await client?.close();
    const nc = await connect({ servers: config.NATS_URL });
    await deleteNamespaceStreams(await nc.jetstreamManager(), new Namespace(id));
    await nc.close();
    await dropDatabase(adminDb(config));
    rmSync(logDir, { recursive: true, force: true });
  });

  it('binds the order, saga, trace id, subject and stream sequence to every line a handler writes', async () => {
    await client.command<StockLevel>(Subjects.InventoryRestock, { sku: 'LOG-SKU', quantity: 5 }, Subjects.InventoryRestocked);
    await client.command<AccountBalance>(
      Subjects.PaymentDeposit,
      { customerId: 'log-rich', amount: 10_000, currency: 'USD' },
      Subjects.PaymentDeposited,
    );
    const traceId = randomBytes(16).toString('hex');
    const o = order('log-rich', [{ sku: 'LOG-SKU', quantity: 1, unitPrice: 500 }]);
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
    // Each field once, though the orchestrator's child logger binds the order and saga ids itself.
    const completed = raw('order').find((l) => l.includes(o.orderId) && l.includes('"saga completed"'))!;
    expect(completed.split('"orderId"').length - 1).toBe(1);
    expect(completed.split('"sagaId"').length - 1).toBe(1);

    // A line written outside any message carries none of it.
    const started = lines('order').find((l) => l.msg === 'started');
    expect(started).toBeDefined();
    expect(started).not.toHaveProperty('traceId');
    expect(started).not.toHaveProperty('orderId');
  });
});
