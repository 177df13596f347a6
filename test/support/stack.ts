import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { connect, headers as natsHeaders, jetstream, JetStreamManager, jetstreamManager, NatsConnection } from '@orderflow/messaging/nats';
import { Pool } from 'pg';
import { Namespace, Subjects } from '@orderflow/contracts';
import { deleteNamespaceStreams } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { adminDb, Config, loadConfig, startService } from '@orderflow/runtime';
import { conservationViolations } from './invariants';
import { provisionAll } from './provision';
import { OrderModule } from '../../apps/order/src/order.module';
import { InventoryModule } from '../../apps/inventory/src/inventory.module';
import { PaymentModule } from '../../apps/payment/src/payment.module';
import { NotificationModule } from '../../apps/notification/src/notification.module';
import { waitFor } from './wait';

const APP_MODULES = { order: OrderModule, inventory: InventoryModule, payment: PaymentModule, notification: NotificationModule };

export interface DeadLetter {
  subject: string;
  data: string;
  headers: Record<string, string>;
}

/**
 * The four real apps, booted in this process against the real NATS and Postgres, isolated by a
 * namespace of their own (subjects `<ns>.…`, streams `<NS>_…`) and a fresh database, both removed by `stop()`.
 * Tests talk to the apps only as any client would: a plain NATS connection. `db` (the admin role) is there
 * for asserting the final state of every schema.
 */
export class Stack {
  readonly ns: Namespace;
  apps: INestApplication[] = [];
  nc!: NatsConnection;
  jsm!: JetStreamManager;
  db!: Pool;

  private constructor(readonly config: Config) {
    this.ns = new Namespace(config.ORDERFLOW_NAMESPACE);
  }

  static async start(overrides: Record<string, string> = {}): Promise<Stack> {
    const id = `it${process.pid}${randomUUID().slice(0, 6)}`;
    const config = loadConfig({
      ...process.env,
      ORDERFLOW_NAMESPACE: id,
      PGDATABASE: `orderflow_${id}`,
      RETRY_BACKOFF_MS: '50,100',
      MAX_DELIVER: '3',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      OUTBOX_POLL_MS: '200',
      ...overrides,
    });
    const stack = new Stack(config);
    stack.nc = await connect({ servers: config.NATS_URL });
    stack.jsm = await jetstreamManager(stack.nc);
    await provisionAll(config);
    const started = await Promise.allSettled(Object.values(APP_MODULES).map((m) => startService((c) => m.register(c), config)));
    stack.apps = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(stack.apps.map((a) => a.close()));
      await stack.nc.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    stack.db = new Pool({
      host: config.PGHOST,
      port: config.PGPORT,
      user: config.PG_ADMIN_USER,
      password: config.PG_ADMIN_PASSWORD || undefined,
      database: config.PGDATABASE,
      max: 2,
    });
    // An idle client whose server went away (tests that stop Postgres) is dropped by the pool; nothing to report.
    stack.db.on('error', () => undefined);
    return stack;
  }

  /** Stops one app (graceful shutdown, as on SIGTERM); `start` brings up a new instance of it. */
  async stopApp(name: keyof typeof APP_MODULES): Promise<void> {
    const i = Object.keys(APP_MODULES).indexOf(name);
    await this.apps[i].close();
  }

  async startApp(name: keyof typeof APP_MODULES): Promise<void> {
    const i = Object.keys(APP_MODULES).indexOf(name);
    this.apps[i] = await startService((c) => APP_MODULES[name].register(c), this.config);
  }

  /** Publishes to JetStream like any client; `body` is JSON-encoded unless it is already a string. */
  /** The base URL of an app's HTTP port (`/metrics`, `/health/*`). */
  httpUrl(name: keyof typeof APP_MODULES): string {
    const { port } = this.apps[Object.keys(APP_MODULES).indexOf(name)].getHttpServer().address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async publish(subject: string, body: unknown, msgId: string = randomUUID(), headers: Record<string, string> = {}): Promise<void> {
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    await jetstream(this.nc).publish(this.ns.subject(subject), data, { msgID: msgId, headers: h });
  }

  /** Asks a service over NATS request/reply; returns the reply envelope. */
  async query<T = any>(subject: string, body: object): Promise<{ ok: boolean; data?: T; error?: { code: string; message: string } }> {
    const reply = await this.nc.request(this.ns.subject(subject), Buffer.from(JSON.stringify(body)), { timeout: 5000 });
    return JSON.parse(reply.string());
  }

  async restock(sku: string, quantity: number) {
    const before = (await this.query(Subjects.QueryStock, { sku })).data?.available ?? 0;
    await this.publish(Subjects.InventoryRestock, { sku, quantity });
    await waitFor(async () => (await this.query(Subjects.QueryStock, { sku })).data?.available === before + quantity);
  }

  async deposit(customerId: string, amount: number, currency = 'USD') {
    const before = (await this.query(Subjects.QueryAccount, { customerId })).data?.balance ?? 0;
    await this.publish(Subjects.PaymentDeposit, { customerId, amount, currency });
    await waitFor(async () => (await this.query(Subjects.QueryAccount, { customerId })).data?.balance === before + amount);
  }

  /** Waits until the order is no longer PENDING, and the notification of its newest saga attempt is recorded; returns the order row. */
  async outcome(orderId: string): Promise<{ status: string; reason: string | null }> {
    let row: any;
    await waitFor(async () => {
      [row] = (await this.db.query('select status, reason from orders.orders where order_id = $1', [orderId])).rows;
      if (!row || row.status === 'PENDING') return false;
      const n = await this.db.query(
        'select 1 from notifications.notifications where saga_id = (select id from orders.saga_instances where business_key = $1 order by attempt desc limit 1)',
        [orderId],
      );
      return n.rowCount === 1;
    });
    return row;
  }

  /** Every message of the dead-letter stream, oldest first. */
  async deadLetters(): Promise<DeadLetter[]> {
    const stream = this.ns.stream('DLQ');
    const info = await this.jsm.streams.info(stream);
    const out: DeadLetter[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await this.jsm.streams.getMessage(stream, { seq });
      if (!m) continue; // deleted
      const h: Record<string, string> = {};
      for (const [k] of m.header ?? []) h[k] = m.header.get(k);
      out.push({ subject: this.ns.logical(m.subject), data: Buffer.from(m.data).toString('utf8'), headers: h });
    }
    return out;
  }

  /** What breaks the stock and money invariants (see `conservationViolations`); empty when they hold. */
  conservationViolations(): Promise<unknown[]> {
    return conservationViolations(this.db);
  }

  /** The saga attempts of an order, oldest first. */
  async sagas(orderId: string): Promise<{ id: string; attempt: number; status: string; reason: string | null; history: any[] }[]> {
    return (
      await this.db.query(
        'select id, attempt, status, reason, history from orders.saga_instances where business_key = $1 order by attempt',
        [orderId],
      )
    ).rows;
  }

  async stop(): Promise<void> {
    await Promise.all(this.apps.map((a) => a.close().catch(() => undefined)));
    await deleteNamespaceStreams(this.jsm, this.ns);
    await this.nc.close();
    await this.db.end();
    await dropDatabase(adminDb(this.config));
  }
}

export { waitFor };

export const order = (customerId: string, items: { sku: string; quantity: number; unitPrice: number }[], currency = 'USD') => ({
  orderId: randomUUID(),
  customerId,
  currency,
  items,
});
