import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import {
  AuthorizationError,
  connect,
  jetstream,
  jetstreamManager,
  NatsConnection,
  PermissionViolationError,
} from '@orderflow/messaging/nats';
import { AppNames, AppTopology, Consumers, Identity, Namespace, Subjects } from '@orderflow/contracts';
import { natsAuthOptions } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { adminDb, Config, loadConfig, natsCredentials, startService } from '@orderflow/runtime';
import { runSetup } from '../apps/cli/src/setup/setup';
import { NatsControl, PrivateServer, startPrivateNats } from '../apps/cli/src/stack/infra';
import { OrderModule } from '../apps/order/src/order.module';
import { InventoryModule } from '../apps/inventory/src/inventory.module';
import { PaymentModule } from '../apps/payment/src/payment.module';
import { NotificationModule } from '../apps/notification/src/notification.module';
import { orderflow } from './support/cli';
import { waitFor } from './support/stack';

const MODULES = { order: OrderModule, inventory: InventoryModule, payment: PaymentModule, notification: NotificationModule };

/**
 * Identities and permissions on the broker, on a private nats-server that loads the config include
 * `orderflow setup` generated: every client proves an identity with its nkey, and the server refuses whatever the
 * identity's generated permissions do not allow. The four apps run in this process with their own keys.
 */
describe('identities and permissions on the broker', () => {
  const id = `auth${process.pid}${randomUUID().slice(0, 4)}`;
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-broker-auth-'));
  const natsConfig = join(dir, 'nats', 'orderflow-auth.conf');
  const ns = new Namespace(id);
  let nats: PrivateServer & NatsControl;
  let config: Config;
  const apps = new Map<string, INestApplication>();
  const conns: NatsConnection[] = [];

  /** A connection as `identity` (its key from the secrets folder, or `seed`). */
  const as = async (identity: Identity, seed?: Uint8Array) => {
    const creds = { ...natsCredentials(config, identity), ...(seed ? { seed } : {}) };
    // A short connect timeout: a connection made while the server reloads its config can hang unanswered (2.9).
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: 0, timeout: 2000, ...natsAuthOptions(creds) });
    conns.push(nc);
    return nc;
  };
  /** The server's refusal as a word: nats.js v3 rejects with a `PermissionViolationError`, or a request error caused by one. */
  const refusalOf = (e: Error) =>
    e instanceof PermissionViolationError || e.cause instanceof PermissionViolationError
      ? 'PERMISSIONS_VIOLATION'
      : `${e.name}: ${e.message}`;
  /** Publishes to JetStream as `identity`; resolves to 'stored' or the server's refusal code. */
  const publish = async (identity: Identity, subject: string, body: object = {}) => {
    const nc = await as(identity);
    return jetstream(nc, { timeout: 3000 })
      .publish(ns.subject(subject), Buffer.from(JSON.stringify(body)))
      .then(() => 'stored', refusalOf)
      .finally(() => nc.close());
  };
  /** A JetStream API request as `identity`; resolves to 'answered' or the server's refusal code. */
  const api = async (identity: Identity, subject: string) => {
    const nc = await as(identity);
    return nc
      .request(subject, Buffer.from('{}'), { timeout: 3000 })
      .then(() => 'answered', refusalOf)
      .finally(() => nc.close());
  };
  let operator: NatsConnection;
  const query = async <T = any>(subject: string, body: object): Promise<T> =>
    JSON.parse((await operator.request(ns.subject(subject), Buffer.from(JSON.stringify(body)), { timeout: 5000 })).string()).data;
  const startApp = async (name: keyof typeof MODULES) => apps.set(name, await startService((c) => MODULES[name].register(c), config));
  const outcome = async (orderId: string) => {
    let status: string | undefined;
    await waitFor(async () => {
      status = (await query(Subjects.QueryOrder, { orderId }).catch(() => undefined))?.status;
      return status === 'CONFIRMED' || status === 'CANCELLED';
    }, 30_000);
    return status;
  };

  beforeAll(async () => {
    const env = {
      ...process.env,
      ORDERFLOW_INSECURE: '',
      ORDERFLOW_SECRETS: join(dir, 'secrets'),
      ORDERFLOW_NAMESPACE: id,
      PGDATABASE: `orderflow_${id}`,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      OUTBOX_POLL_MS: '200',
    };
    await runSetup(loadConfig(env), { natsConfig, provision: false, database: false, addOperators: ['ops'] });
    const started = await startPrivateNats(dir, { authConfig: natsConfig });
    if (!started) throw new Error('nats-server is needed for this test');
    nats = started;
    config = loadConfig({ ...env, NATS_URL: nats.url });
    await runSetup(config, { natsConfig });
    for (const name of AppNames) await startApp(name);
    operator = await as('operator-ops');
    const js = jetstream(operator);
    await js.publish(ns.subject(Subjects.InventoryRestock), Buffer.from(JSON.stringify({ sku: 'AUTH-SKU', quantity: 100 })));
    await js.publish(
      ns.subject(Subjects.PaymentDeposit),
      Buffer.from(JSON.stringify({ customerId: 'auth-cust', amount: 100_000, currency: 'USD' })),
    );
    await waitFor(
      async () => (await query(Subjects.QueryAccount, { customerId: 'auth-cust' }).catch(() => undefined))?.balance === 100_000,
    );
  });
  afterAll(async () => {
    await Promise.all([...apps.values()].map((a) => a.close().catch(() => undefined)));
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    await nats?.stop();
    if (config) await dropDatabase(adminDb(config));
    rmSync(dir, { recursive: true, force: true });
  });

  const newOrder = () => ({
    orderId: randomUUID(),
    customerId: 'auth-cust',
    currency: 'USD',
    items: [{ sku: 'AUTH-SKU', quantity: 1, unitPrice: 100 }],
  });

  it('refuses a connection without credentials, and one with a key it does not know', async () => {
    await expect(connect({ servers: nats.url, maxReconnectAttempts: 0 })).rejects.toBeInstanceOf(AuthorizationError);
    const stranger = (await import('@nats-io/nkeys')).createUser().getSeed();
    await expect(as('ingress', stranger)).rejects.toBeInstanceOf(AuthorizationError);
  });

  it('ingress: order.created is stored and confirms; everything else it tries is refused by the server', async () => {
    const o = newOrder();
    expect(await publish('ingress', Subjects.OrderCreated, o)).toBe('stored');
    expect(await outcome(o.orderId)).toBe('CONFIRMED');

    const setup = await jetstreamManager(await as('setup'));
    const payment = await setup.streams.info(ns.stream('PAYMENT'));
    for (const subject of [
      Subjects.PaymentDeposit,
      Subjects.PaymentCharged,
      Subjects.InventoryRelease,
      Subjects.OrderRetrySaga,
      'ops.dlq.purged',
    ])
      expect([subject, await publish('ingress', subject, { customerId: 'auth-cust', amount: 1, currency: 'USD' })]).toEqual([
        subject,
        'PERMISSIONS_VIOLATION',
      ]);
    for (const subject of [
      `$JS.API.STREAM.DELETE.${ns.stream('DLQ')}`,
      `$JS.API.STREAM.PURGE.${ns.stream('OPS')}`,
      `$KV.${ns.stream('DLQ_STATE')}.1`,
    ])
      expect([subject, await api('ingress', subject)]).toEqual([subject, 'PERMISSIONS_VIOLATION']);
    const after = await setup.streams.info(ns.stream('PAYMENT'));
    expect(after.state.messages).toBe(payment.state.messages);
  });

  it.each(AppNames)('%s: publishes only what it sends, pulls only its own consumers, manages no stream', async (app) => {
    const own = AppTopology[app].consumers[0];
    expect(await api(app, `$JS.API.CONSUMER.INFO.${ns.stream(own.stream)}.${own.durable}`)).toBe('answered');
    const { consumers, observes = [] } = AppTopology[app];
    const foreign = Object.values(Consumers).find((c) => !consumers.includes(c) && !observes.includes(c))!;
    expect(await api(app, `$JS.API.CONSUMER.MSG.NEXT.${ns.stream(foreign.stream)}.${foreign.durable}`)).toBe('PERMISSIONS_VIOLATION');
    expect(await api(app, `$JS.API.CONSUMER.INFO.${ns.stream(foreign.stream)}.${foreign.durable}`)).toBe('PERMISSIONS_VIOLATION');
    expect(await api(app, `$JS.API.STREAM.CREATE.${ns.stream('ORDER')}X`)).toBe('PERMISSIONS_VIOLATION');
    expect(await api(app, `$JS.API.STREAM.DELETE.${ns.stream(own.stream)}`)).toBe('PERMISSIONS_VIOLATION');
    expect(await api(app, `$JS.API.CONSUMER.DELETE.${ns.stream(own.stream)}.${own.durable}`)).toBe('PERMISSIONS_VIOLATION');
    // The order app republishes replays of dead letters (to every subject a consumer pulls but operator commands).
    const replays = AppTopology[app].replaysDeadLetters
      ? [Subjects.PaymentDeposit, Subjects.OrderCreated, Subjects.InventoryRestock, Subjects.PaymentCharged]
      : [];
    const notSent = [
      Subjects.PaymentDeposit,
      Subjects.OrderCreated,
      Subjects.InventoryRestock,
      Subjects.PaymentCharged,
      Subjects.OrderRetrySaga,
      'ops.dlq.purged',
    ].filter((s) => !(AppTopology[app].sends as string[]).includes(s) && !(replays as string[]).includes(s));
    for (const subject of notSent) expect([subject, await publish(app, subject)]).toEqual([subject, 'PERMISSIONS_VIOLATION']);
  });

  it('an operator publishes no participant command or reply: those go through signed operator commands', async () => {
    for (const subject of [Subjects.PaymentCharge, Subjects.PaymentRefund, Subjects.PaymentCharged, Subjects.InventoryRelease])
      expect([subject, await publish('operator-ops', subject, { customerId: 'auth-cust', amount: 1, currency: 'USD' })]).toEqual([
        subject,
        'PERMISSIONS_VIOLATION',
      ]);
    expect(await publish('operator-ops', Subjects.PaymentDeposit, { customerId: 'auth-cust', amount: 1, currency: 'USD' })).toBe('stored');
  });

  /** The CLI as operator `ops`, on the authenticating server. */
  const cli = async (args: string[]) => {
    const r = await orderflow(null, [...args, '--json'], undefined, {
      NATS_URL: nats.url,
      ORDERFLOW_NAMESPACE: id,
      PGDATABASE: config.PGDATABASE,
      ORDERFLOW_INSECURE: '',
      ORDERFLOW_SECRETS: config.ORDERFLOW_SECRETS,
      ORDERFLOW_OPERATOR: 'ops',
    });
    if (r.code !== 0) throw new Error(`orderflow ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  it('runs the demo with authentication: one of each outcome', async () => {
    expect(
      (await cli(['demo', '--data-dir', join(dir, 'demo')])).map((o: { reason: string | null; status: string }) => o.reason ?? o.status),
    ).toEqual(['CONFIRMED', 'CONFIRMED', 'out_of_stock', 'unknown_sku', 'insufficient_funds', 'unknown_customer']);
  });

  it('an operator works the CLI as their identity: services, a poison order listed, patched, replayed, purged; saga show', async () => {
    expect((await cli(['services'])).map((i: { name: string }) => i.name).sort()).toEqual([...AppNames].sort());
    const poison = { ...newOrder(), currency: 'usd' };
    expect(await publish('ingress', Subjects.OrderCreated, poison)).toBe('stored');
    let entry: { seq: number; state: string } | undefined;
    await waitFor(async () => !!(entry = (await cli(['dlq', 'list', '--order', poison.orderId])).pop()));
    const fix = join(dir, 'fix.json');
    writeFileSync(fix, JSON.stringify({ currency: 'USD' }));
    const replayed = await cli(['dlq', 'replay', String(entry!.seq), '--patch', fix, '--why', 'lower-case currency']);
    expect(replayed.results).toEqual([expect.objectContaining({ action: 'replayed' })]);
    expect(await outcome(poison.orderId)).toBe('CONFIRMED');
    await waitFor(async () => (await cli(['dlq', 'list', '--order', poison.orderId])).pop().state === 'resolved');
    expect((await cli(['dlq', 'purge', String(entry!.seq), '--why', 'done', '--yes'])).results).toEqual([
      expect.objectContaining({ action: 'purged' }),
    ]);
    expect((await cli(['saga', 'show', poison.orderId])).attempts[0]).toMatchObject({ status: 'COMPLETED' });
  });

  it('setup run again changes nothing', async () => {
    const before = readFileSync(natsConfig, 'utf8');
    const rows = await runSetup(config, { natsConfig, addOperators: ['ops'] });
    expect(rows.filter((r) => r.what === 'key' || r.what === 'nats config').map((r) => r.status)).toEqual(
      expect.arrayContaining(['unchanged']),
    );
    expect(rows.filter((r) => r.status !== 'unchanged' && (r.what === 'key' || r.what === 'nats config'))).toEqual([]);
    expect(readFileSync(natsConfig, 'utf8')).toBe(before);
  });

  it('after rotating payment, the old key is refused and the restarted app works with the new one', async () => {
    const old = new TextEncoder().encode(readFileSync(join(dir, 'secrets', 'payment.nk'), 'utf8').trim());
    const rows = await runSetup(config, { natsConfig, rotate: 'payment', provision: false, database: false });
    expect(rows.find((r) => r.name === 'payment')?.status).toBe('rotated');
    // A restart loads the new config as a reload (SIGHUP) does; a reload's timing made this test flaky on 2.9: a
    // connection made while it was under way could hang.
    await nats.stop();
    await nats.start();
    operator = await as('operator-ops'); // the test's own connections do not reconnect
    await waitFor(() =>
      as('payment', old).then(
        (nc) => (void nc.close(), false),
        (e) => e instanceof AuthorizationError,
      ),
    );
    // The server dropped the app's connection (the old key is refused on reconnect); it closes without waiting for it
    // and starts with the new key.
    await apps.get('payment')!.close();
    await startApp('payment');
    const o = newOrder();
    expect(await publish('ingress', Subjects.OrderCreated, o)).toBe('stored');
    expect(await outcome(o.orderId)).toBe('CONFIRMED');
  });
});
