import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  ChargePayment,
  CommitStock,
  Consumers,
  ConsumerSpec,
  parseMessage,
  RefundPayment,
  ReleaseStock,
  ReserveStock,
  Subjects,
} from '@orderflow/contracts';
import { InboundMessage } from '@orderflow/messaging';
import { DatabaseBreaker, OutboxRelay, readSql, Transactor, Tx } from '@orderflow/persistence';
import { EnvConfig } from '@orderflow/runtime';
import { PostgresSagaStore, SagaInstance, Sagas, SagaState } from '@orderflow/saga';
import { PipelineMetrics } from '@orderflow/telemetry';
import { PlaceOrderData, placeOrderSaga } from '../../apps/order/src/place-order/place-order.saga';
import { inventoryManifest } from '../../apps/inventory/src/manifest';
import { orderManifest } from '../../apps/order/src/manifest';
import { SagaInstances1763800000450 } from '../../apps/order/src/migrations/1763800000450-saga-instances';
import { OrdersRepository } from '../../apps/order/src/orders/orders.repository';
import { OperatorsRepository } from '../../apps/order/src/operations/operators.repository';
import { StockRepository } from '../../apps/inventory/src/stock/stock.repository';
import { StockService } from '../../apps/inventory/src/stock/stock.service';
import { paymentManifest } from '../../apps/payment/src/manifest';
import { AccountsRepository } from '../../apps/payment/src/accounts/accounts.repository';
import { AccountsService } from '../../apps/payment/src/accounts/accounts.service';
import { messagingDatabase, silentLog } from '../support/database';

/** The db tier: the participants' repositories on a real Postgres with their own migrations (no NATS, no Nest). */
const inTx = <T>(ds: DataSource, work: (tx: Tx) => T | Promise<T>) => ds.transaction((m) => Tx.within(m, work));
const sqlState = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

/** A message of a consumer batch as the consumer hands it over, `key` its message id and inbox key. */
const inbound = (subject: string, body: unknown, key: string, stream: string, extra: Partial<InboundMessage> = {}): InboundMessage => ({
  subject,
  body,
  messageId: key,
  inboxKey: key,
  attempt: 1,
  stream,
  sequence: 1,
  ...extra,
});

/**
 * A `Transactor` on `ds` as an app has one (its relay publishes nowhere), and the round trips its batch transactions
 * counted for a consumer (`orderflow_pg_round_trips_total`). Stop `relay` at the end.
 */
function batchTransactor(ds: DataSource) {
  const metrics = new PipelineMetrics('db-test');
  const breaker = new DatabaseBreaker(ds, silentLog);
  const relay = new OutboxRelay(ds, { publish: async () => ({ duplicate: false }) }, silentLog, 60_000, breaker);
  const transactor = new Transactor(ds, relay, breaker, metrics);
  const roundTrips = async (spec: ConsumerSpec) =>
    (await metrics.registry.getSingleMetric('orderflow_pg_round_trips_total')!.get()).values.find((v) => v.labels.consumer === spec.durable)
      ?.value;
  return { metrics, breaker, relay, transactor, roundTrips };
}

describe('StockRepository', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  const repo = new StockRepository();
  beforeAll(async () => ({ ds, drop } = await messagingDatabase(inventoryManifest)));
  afterAll(() => drop());

  it('restocks a new SKU and adds to it, refusing a total past the maximum', async () => {
    await inTx(ds, (tx) => repo.restock(tx, 'INK', 5, 100));
    expect(await inTx(ds, (tx) => repo.restock(tx, 'INK', 3, 100))).toEqual({ sku: 'INK', available: 8, reserved: 0, sold: 0 });
    expect(await inTx(ds, (tx) => repo.restock(tx, 'INK', 93, 100))).toBeUndefined();
    expect(await repo.level(readSql(ds), 'INK')).toEqual({ sku: 'INK', available: 8, reserved: 0, sold: 0 });
  });

  it('locks only SKUs that exist; a reservation moves its units as it is recorded and as it ends; never below zero', async () => {
    await inTx(ds, (tx) => repo.restock(tx, 'PEN', 10, 1000));
    const orderId = randomUUID();
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const reservation = (sagaId: string, quantity: number, status: 'RESERVED' | 'REJECTED' = 'RESERVED') => ({
      sagaId,
      orderId,
      status,
      items: [{ sku: 'PEN', quantity }],
      reason: status === 'RESERVED' ? null : ('out_of_stock' as const),
    });
    await inTx(ds, async (tx) => {
      expect(await repo.lockAvailable(tx, ['PEN', 'NOPE'])).toEqual(new Map([['PEN', 10]]));
      repo.insertReservation(tx, reservation(a, 3), new Map([['PEN', 3]]));
      repo.insertReservation(tx, reservation(b, 1), new Map([['PEN', 1]]));
      repo.insertReservation(tx, reservation(c, 5, 'REJECTED'), new Map([['PEN', 5]])); // a rejection moves nothing
    });
    expect(await repo.level(readSql(ds), 'PEN')).toEqual({ sku: 'PEN', available: 6, reserved: 4, sold: 0 });
    await inTx(ds, (tx) => repo.settle(tx, a, 'COMMITTED', new Map([['PEN', 3]])));
    await inTx(ds, (tx) => repo.settle(tx, b, 'RELEASED', new Map([['PEN', 1]])));
    expect(await repo.level(readSql(ds), 'PEN')).toEqual({ sku: 'PEN', available: 7, reserved: 0, sold: 3 });
    expect((await repo.reservationsOf(readSql(ds), orderId)).map((r) => [r.saga_id, r.status])).toEqual([
      [a, 'COMMITTED'],
      [b, 'RELEASED'],
      [c, 'REJECTED'],
    ]);
    // The check constraint holds the line: more than is available cannot move (23514, check_violation), and the
    // reservation is not recorded either.
    const d = randomUUID();
    expect(await sqlState(inTx(ds, (tx) => repo.insertReservation(tx, reservation(d, 8), new Map([['PEN', 8]]))))).toBe('23514');
    expect(await inTx(ds, (tx) => repo.lockReservation(tx, d))).toBeUndefined();
  });

  it('keeps one reservation per attempt: a release that came first stays, and the order lists every attempt oldest first', async () => {
    const orderId = randomUUID();
    const [first, second] = [randomUUID(), randomUUID()];
    await inTx(ds, (tx) =>
      repo.insertReservation(
        tx,
        { sagaId: first, orderId, status: 'REJECTED', items: [{ sku: 'PEN', quantity: 1 }], reason: 'out_of_stock' },
        new Map([['PEN', 1]]),
      ),
    );
    await inTx(ds, (tx) => repo.insertReleased(tx, second, orderId));
    await inTx(ds, (tx) => repo.insertReleased(tx, second, orderId)); // again: no second row
    await inTx(ds, async (tx) => {
      expect(await repo.lockReservation(tx, second)).toMatchObject({ saga_id: second, order_id: orderId, status: 'RELEASED', items: [] });
      repo.settle(tx, first, 'RELEASED', new Map()); // a rejected reservation holds no units
    });
    const rows = await repo.reservationsOf(readSql(ds), orderId);
    expect(rows.map((r) => [r.saga_id, r.status, r.reason])).toEqual([
      [first, 'RELEASED', 'out_of_stock'],
      [second, 'RELEASED', null],
    ]);
    expect(await inTx(ds, (tx) => repo.lockReservation(tx, randomUUID()))).toBeUndefined();
  });
});

describe('StockService: a batch of commands', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  beforeAll(async () => ({ ds, drop } = await messagingDatabase(inventoryManifest)));
  afterAll(() => drop());

  it('locks what the batch names in one round trip; its own moves and a second command of an attempt are seen', async () => {
    const { relay, transactor, roundTrips } = batchTransactor(ds);
    const repo = new StockRepository();
    const stock = new StockService(repo);
    await inTx(ds, async (tx) => {
      await repo.restock(tx, 'PEN', 5, 1000);
      await repo.restock(tx, 'INK', 5, 1000);
    });
    const orderId = randomUUID();
    const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    let n = 0;
    // Validated bodies, as the consumer hands them over (only those are read ahead).
    const types = {
      [Subjects.InventoryReserve]: ReserveStock,
      [Subjects.InventoryRelease]: ReleaseStock,
      [Subjects.InventoryCommit]: CommitStock,
    };
    const command = (subject: keyof typeof types, sagaId: string, items?: { sku: string; quantity: number }[]) =>
      inbound(subject, parseMessage<object>(types[subject], { orderId, sagaId, ...(items && { items }) }), `m${++n}`, 'INVENTORY');
    const outcomes: unknown[] = [];
    const spec = Consumers.inventoryCommands;
    const handler = transactor.handler(spec, {
      [Subjects.InventoryReserve]: async (tx, msg) => void outcomes.push((await stock.reserve(tx, msg.body)).reserved),
      [Subjects.InventoryRelease]: (tx, msg) => stock.release(tx, msg.body),
      [Subjects.InventoryCommit]: (tx, msg) => stock.commit(tx, msg.body),
      [Subjects.InventoryRestock]: async (tx, msg) => void (await stock.restock(tx, msg.body)),
    });
    try {
      await handler([
        command(Subjects.InventoryReserve, a, [{ sku: 'PEN', quantity: 3 }]),
        command(Subjects.InventoryReserve, b, [
          { sku: 'PEN', quantity: 2 },
          { sku: 'INK', quantity: 1 },
        ]),
        command(Subjects.InventoryReserve, c, [{ sku: 'PEN', quantity: 1 }]), // none left: a and b took all five
        command(Subjects.InventoryCommit, a), // reserved in this batch: read again
        command(Subjects.InventoryRelease, b), // its units go back to available
        command(Subjects.InventoryReserve, d, [{ sku: 'PEN', quantity: 2 }]), // b's two, released above
      ]);
      expect(outcomes).toEqual([true, true, false, true]);
      // BEGIN, the claim and the locks of every reservation and SKU named; the commit's and the release's reads of what
      // this batch reserved; the writes with COMMIT: four round trips (one read per command would take seven).
      expect(await roundTrips(spec)).toBe(4);
      const read = readSql(ds);
      expect(await repo.level(read, 'PEN')).toEqual({ sku: 'PEN', available: 0, reserved: 2, sold: 3 });
      expect(await repo.level(read, 'INK')).toEqual({ sku: 'INK', available: 5, reserved: 0, sold: 0 });
      const statuses = new Map((await repo.reservationsOf(read, orderId)).map((r) => [r.saga_id, r.status]));
      expect(statuses).toEqual(
        new Map([
          [a, 'COMMITTED'],
          [b, 'RELEASED'],
          [c, 'REJECTED'],
          [d, 'RESERVED'],
        ]),
      );
    } finally {
      await relay.stop();
    }
  });

  it("locks the stock of the batch's reservations with the rest: two instances' batches wait for each other, never deadlock", async () => {
    const { relay, transactor } = batchTransactor(ds);
    const repo = new StockRepository();
    const stock = new StockService(repo);
    await inTx(ds, async (tx) => {
      await repo.restock(tx, 'S3', 10, 1000);
      await repo.restock(tx, 'S5', 10, 1000);
    });
    const orderId = randomUUID();
    let n = 0;
    const command = (subject: string, type: new () => object, sagaId: string, items?: { sku: string; quantity: number }[]) =>
      inbound(subject, parseMessage<object>(type, { orderId, sagaId, ...(items && { items }) }), `d${++n}`, 'INVENTORY');
    const reserve = (sagaId: string, sku: string) => command(Subjects.InventoryReserve, ReserveStock, sagaId, [{ sku, quantity: 1 }]);
    const commit = (sagaId: string) => command(Subjects.InventoryCommit, CommitStock, sagaId);
    const [x, y, z, w] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    // Y holds S3 and W holds S5, reserved before.
    let gate = Promise.resolve();
    const spec = Consumers.inventoryCommands;
    const handler = transactor.handler(spec, {
      [Subjects.InventoryReserve]: async (tx, msg) => {
        await stock.reserve(tx, msg.body);
        await gate;
      },
      [Subjects.InventoryRelease]: (tx, msg) => stock.release(tx, msg.body),
      [Subjects.InventoryCommit]: (tx, msg) => stock.commit(tx, msg.body),
      [Subjects.InventoryRestock]: async (tx, msg) => void (await stock.restock(tx, msg.body)),
    });
    try {
      await handler([reserve(y, 'S3'), reserve(w, 'S5')]);
      // Batch A reserves S5 then commits Y (S3); batch B reserves S3 then commits W (S5). A pauses after its reserve
      // while B starts: had A locked S5 alone, B would lock S3 and wait for S5, and A's commit would wait for S3.
      let open!: () => void;
      gate = new Promise<void>((r) => (open = r));
      const a = handler([reserve(x, 'S5'), commit(y)]);
      await new Promise((r) => setTimeout(r, 100));
      gate = Promise.resolve();
      const b = handler([reserve(z, 'S3'), commit(w)]);
      await new Promise((r) => setTimeout(r, 200));
      open();
      const started = Date.now();
      await Promise.all([a, b]);
      // A deadlock is broken only after deadlock_timeout (1 s): one batch would fail with 40P01 after that wait.
      expect(Date.now() - started).toBeLessThan(900);
      const read = readSql(ds);
      expect(await repo.level(read, 'S3')).toEqual({ sku: 'S3', available: 8, reserved: 1, sold: 1 });
      expect(await repo.level(read, 'S5')).toEqual({ sku: 'S5', available: 8, reserved: 1, sold: 1 });
    } finally {
      await relay.stop();
    }
  });
});

describe('AccountsRepository', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  const repo = new AccountsRepository();
  beforeAll(async () => ({ ds, drop } = await messagingDatabase(paymentManifest)));
  afterAll(() => drop());

  it('opens an account on the first deposit and adds to it in its currency only, up to the maximum', async () => {
    await inTx(ds, (tx) => repo.deposit(tx, 'ann', 'USD', 500, 1000));
    expect(await inTx(ds, (tx) => repo.deposit(tx, 'ann', 'USD', 250, 1000))).toEqual({
      customer_id: 'ann',
      currency: 'USD',
      balance: 750,
    });
    expect(await inTx(ds, (tx) => repo.deposit(tx, 'ann', 'EUR', 1, 1000))).toBeUndefined();
    expect(await inTx(ds, (tx) => repo.deposit(tx, 'ann', 'USD', 251, 1000))).toBeUndefined();
    expect(await repo.account(readSql(ds), 'ann')).toEqual({ customer_id: 'ann', currency: 'USD', balance: 750 });
  });

  it('moves the balance with its ledger entry, never below zero; the ledger keeps one entry of each kind per attempt', async () => {
    const of = { orderId: randomUUID(), sagaId: randomUUID() };
    await inTx(ds, (tx) => repo.deposit(tx, 'bob', 'USD', 1000, 10_000));
    await inTx(ds, async (tx) => {
      expect(await repo.lockAccount(tx, 'bob')).toEqual({ customer_id: 'bob', currency: 'USD', balance: 1000 });
      repo.record(tx, { customerId: 'bob', of, kind: 'CHARGE', amount: 400, currency: 'USD' }, -400);
    });
    const balance = async () => (await repo.account(readSql(ds), 'bob'))?.balance;
    expect(await balance()).toBe(600);
    // Past the balance (23514, the balance >= 0 check): neither the balance nor the ledger changes.
    const other = { orderId: randomUUID(), sagaId: randomUUID() };
    const overdraw = { customerId: 'bob', of: other, kind: 'CHARGE' as const, amount: 601, currency: 'USD' };
    expect(await sqlState(inTx(ds, (tx) => repo.record(tx, overdraw, -601)))).toBe('23514');
    expect(await repo.entriesOf(readSql(ds), other.orderId)).toEqual([]);
    // A decline moves nothing.
    await inTx(ds, (tx) => repo.record(tx, { customerId: 'bob', of: other, kind: 'DECLINE', amount: 0, currency: 'USD', reason: 'x' }));
    expect(await balance()).toBe(600);
    // A second charge of the same attempt: the ledger's (saga_id, kind) key refuses it (23505), and the balance stays.
    expect(
      await sqlState(inTx(ds, (tx) => repo.record(tx, { customerId: 'bob', of, kind: 'CHARGE', amount: 400, currency: 'USD' }, -400))),
    ).toBe('23505');
    expect(await balance()).toBe(600);
    await inTx(ds, (tx) => repo.record(tx, { customerId: 'bob', of, kind: 'REFUND', amount: 400, currency: 'USD' }, 400));
    expect(await balance()).toBe(1000);
    const entries = await inTx(ds, (tx) => repo.lockEntries(tx, of.orderId, of.sagaId));
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['CHARGE', 400],
      ['REFUND', 400],
    ]);
    expect((await repo.entriesOf(readSql(ds), of.orderId)).map((e) => e.kind)).toEqual(['CHARGE', 'REFUND']);
  });
});

describe('AccountsService: a batch of commands', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  beforeAll(async () => ({ ds, drop } = await messagingDatabase(paymentManifest)));
  afterAll(() => drop());

  it('locks and reads what the batch names in one round trip; its own balance changes and a second command of an order are seen', async () => {
    const { relay, transactor, roundTrips } = batchTransactor(ds);
    const repo = new AccountsRepository();
    const payments = new AccountsService(repo);
    await inTx(ds, (tx) => payments.deposit(tx, { customerId: 'ann', amount: 1000, currency: 'USD' }));
    const [o1, o2, o3] = [randomUUID(), randomUUID(), randomUUID()];
    const [s1, s2, s3] = [randomUUID(), randomUUID(), randomUUID()];
    let n = 0;
    const command = (subject: string, orderId: string, sagaId: string, amount?: number) =>
      inbound(
        subject,
        amount === undefined
          ? parseMessage(RefundPayment, { orderId, sagaId, customerId: 'ann' })
          : parseMessage(ChargePayment, { orderId, sagaId, customerId: 'ann', amount, currency: 'USD' }),
        `m${++n}`,
        'PAYMENT',
      );
    const outcomes: unknown[] = [];
    const spec = Consumers.paymentCommands;
    const handler = transactor.handler(spec, {
      [Subjects.PaymentCharge]: async (tx, msg) => void outcomes.push(await payments.charge(tx, msg.body)),
      [Subjects.PaymentRefund]: async (tx, msg) => void outcomes.push(await payments.refund(tx, msg.body)),
      [Subjects.PaymentDeposit]: async (tx, msg) => void (await payments.deposit(tx, msg.body)),
    });
    try {
      await handler([
        command(Subjects.PaymentCharge, o1, s1, 600),
        command(Subjects.PaymentCharge, o2, s2, 600), // 400 left after the first
        command(Subjects.PaymentRefund, o1, s1), // charged in this batch: its ledger read again
        command(Subjects.PaymentCharge, o3, s3, 900), // the refund's 600 is back
      ]);
      expect(outcomes).toEqual([
        { charged: true, amount: 600 },
        { charged: false, reason: 'insufficient_funds', detail: 'balance 400 < 600' },
        600,
        { charged: true, amount: 900 },
      ]);
      // BEGIN, the claim, and the locks and reads of the account and of every order and attempt named; the refund's
      // read of what this batch charged; the writes with COMMIT: three round trips (one read per command would take five).
      expect(await roundTrips(spec)).toBe(3);
      expect(await payments.balance(readSql(ds), 'ann')).toEqual({ customerId: 'ann', balance: 100, currency: 'USD' });
      expect((await payments.charges(readSql(ds), o1))[0]).toMatchObject({ charged: 600, refunded: 600 });
    } finally {
      await relay.stop();
    }
  });
});

describe('OrdersRepository', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  const repo = new OrdersRepository();
  beforeAll(async () => ({ ds, drop } = await messagingDatabase(orderManifest)));
  afterAll(() => drop());
  const order = () => ({
    orderId: randomUUID(),
    customerId: 'ann',
    currency: 'USD',
    items: [{ sku: 'INK', quantity: 2, unitPrice: 150 }],
    total: 300,
  });

  it('records an order once (its id the idempotency key), confirms it only while PENDING, cancels and reopens it', async () => {
    const o = order();
    expect(await inTx(ds, (tx) => repo.insertPending(tx, o))).toBe(true);
    expect(await inTx(ds, (tx) => repo.insertPending(tx, { ...o, total: 999 }))).toBe(false);
    expect(await repo.find(readSql(ds), o.orderId)).toMatchObject({ status: 'PENDING', total: 300, items: o.items, reason: null });
    await inTx(ds, (tx) => repo.cancel(tx, o.orderId, 'out_of_stock'));
    expect(await inTx(ds, (tx) => repo.confirm(tx, o.orderId))).toBe(false); // not PENDING
    await inTx(ds, (tx) => repo.reopen(tx, o.orderId));
    expect(await inTx(ds, (tx) => repo.confirm(tx, o.orderId))).toBe(true);
    expect(await repo.find(readSql(ds), o.orderId)).toMatchObject({ status: 'CONFIRMED', reason: null });
    expect(await repo.withNewestSaga(readSql(ds), o.orderId)).toBeUndefined(); // no saga attempt yet
  });
});

describe('PostgresSagaStore and OperatorsRepository', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  const store = new PostgresSagaStore();
  const operators = new OperatorsRepository();
  beforeAll(async () => ({ ds, drop } = await messagingDatabase(orderManifest)));
  afterAll(() => drop());

  const state = (status: SagaState['status'], step: string, stepStatus: 'RUNNING' | 'SUCCEEDED' | 'FAILED'): SagaState => ({
    status,
    step: 0,
    reason: status === 'CANCELLED' ? 'deadline_exceeded' : null,
    detail: null,
    history: [
      { name: step, kind: 'action', status: stepStatus, startedAt: new Date().toISOString(), finishedAt: null, error: null, attempts: 1 },
    ],
  });
  /** Attempt `n` of business key `key` (a new order by default) of saga type `type`, stored in state `s`. */
  const attempt = async (s: SagaState, deadline: Date | null, key: string = randomUUID(), n = 1, type = 'PlaceOrder') => {
    const row = {
      id: randomUUID(),
      business_key: key,
      attempt: n,
      retry_of: null,
      data: { sagaId: '' },
      trace_parent: null,
    } as unknown as SagaInstance;
    await inTx(ds, (tx) => store.insert(tx, type, row, s, deadline));
    return row;
  };

  it('stores attempts, finds the newest of a key, and hands out due deadlines once across transactions', async () => {
    const first = await attempt(state('CANCELLED', 'chargePayment', 'FAILED'), null);
    const second = await attempt(state('RUNNING', 'reserveStock', 'RUNNING'), new Date(Date.now() - 1000), first.business_key, 2);
    expect(await store.newest(readSql(ds), first.business_key)).toEqual({ id: second.id, attempt: 2, status: 'RUNNING' });
    expect((await store.attemptsOf(readSql(ds), first.business_key)).map((a) => [a.attempt, a.status, a.reason])).toEqual([
      [1, 'CANCELLED', 'deadline_exceeded'],
      [2, 'RUNNING', null],
    ]);
    await inTx(ds, async (tx) => {
      expect((await store.lockDue(tx, 10)).map((r) => r.id)).toContain(second.id);
      // Locked by this transaction: another one skips it instead of waiting.
      const other = await ds.transaction((m) => Tx.within(m, (tx) => store.lockDue(tx, 10)));
      expect(other.map((r) => r.id)).not.toContain(second.id);
      store.update(tx, second.id, state('COMPLETED', 'reserveStock', 'SUCCEEDED'), null);
    });
    expect(await inTx(ds, (tx) => store.lockDue(tx, 10))).toEqual([]);
    expect(await store.statusOf(readSql(ds), second.id)).toEqual({ id: second.id, status: 'COMPLETED' });
    expect((await store.byIdOrKey(readSql(ds), first.business_key))?.id).toBe(second.id);
  });

  it('keys attempts by (business key, type) with no row elsewhere: one active attempt per key and type', async () => {
    const key = `refund-request-${randomUUID()}`; // not an order id: the store knows no business table
    await attempt(state('RUNNING', 'approve', 'RUNNING'), null, key, 1, 'Refund');
    // The same key in another saga type is another saga; a second active attempt of the same type is refused.
    await attempt(state('RUNNING', 'approve', 'RUNNING'), null, key, 1, 'Chargeback');
    expect(await sqlState(attempt(state('RUNNING', 'approve', 'RUNNING'), null, key, 2, 'Refund'))).toBe('23505');
    expect(await store.newest(readSql(ds), key, 'Chargeback')).toMatchObject({ attempt: 1, status: 'RUNNING' });
    expect((await store.list(readSql(ds), { keys: [key], limit: 10, order: 'id' })).map((r) => r.type).sort()).toEqual([
      'Chargeback',
      'Refund',
    ]);
  });

  it('lists by status and by the step an attempt failed on, paging on a keyset without repeats', async () => {
    const failed = await Promise.all([1, 2, 3].map(() => attempt(state('CANCELLED', 'refundPayment', 'FAILED'), null)));
    const page1 = await store.list(readSql(ds), { step: 'refundPayment', limit: 2, order: 'id' });
    const page2 = await store.list(readSql(ds), { step: 'refundPayment', limit: 2, order: 'id', after: { id: page1[1].id } });
    expect([...page1, ...page2].map((r) => r.id).sort()).toEqual(failed.map((r) => r.id).sort());
    expect(await store.list(readSql(ds), { step: 'refundPayment', status: ['RUNNING'], limit: 10, order: 'updated' })).toEqual([]);
  });

  it("audits saga actions and replays, and finds a dead letter's last replay", async () => {
    const row = await attempt(state('CANCELLED', 'chargePayment', 'FAILED'), null);
    await inTx(ds, (tx) =>
      operators.recordSagaAction(tx, {
        commandId: randomUUID(),
        action: 'retry',
        sagaId: row.id,
        newSagaId: null,
        operator: 'ops',
        publicKey: null,
        why: 'stock back',
      }),
    );
    expect((await operators.ofSagas(readSql(ds), [row.id])).map((a) => [a.action, a.operator, a.why])).toEqual([
      ['retry', 'ops', 'stock back'],
    ]);
    expect(await operators.lastReplay(readSql(ds), 'msg-1', 7)).toBeUndefined();
    const newMsgId = randomUUID();
    await inTx(ds, (tx) =>
      operators.recordReplay(tx, {
        commandId: randomUUID(),
        dlqSeq: 7,
        replayOf: 'msg-1',
        newMsgId,
        patch: { currency: 'USD' },
        body: null,
        operator: 'ops',
        publicKey: null,
        why: 'fix',
      }),
    );
    expect(await operators.lastReplay(readSql(ds), 'msg-1', 7)).toMatchObject({ operator: 'ops', new_msg_id: newMsgId });
  });
});

describe('migration SagaInstances: the attempts of `sagas` move to `saga_instances`', () => {
  it('copies every attempt with its id, key and retry chain, operator actions keep pointing at them, and down undoes it', async () => {
    const before = { ...orderManifest, migrations: orderManifest.migrations.filter((m) => m !== SagaInstances1763800000450) };
    const { ds, drop } = await messagingDatabase(before);
    try {
      const orderId = randomUUID();
      const [first, second] = [randomUUID(), randomUUID()];
      await ds.query(
        `insert into orders (order_id, customer_id, currency, items, total, status) values ($1, 'ann', 'USD', '[]', 0, 'PENDING')`,
        [orderId],
      );
      await ds.query(
        `insert into sagas (id, type, order_id, attempt, retry_of, status, step, history, data)
         values ($1, 'PlaceOrder', $3, 1, null, 'CANCELLED', 1, '[]', '{}'), ($2, 'PlaceOrder', $3, 2, $1, 'RUNNING', 0, '[]', '{}')`,
        [first, second, orderId],
      );
      await ds.query(
        `insert into operator_actions (id, action, saga_id, new_saga_id, operator, why) values ('c1', 'retry', $1, $2, 'ops', 'x')`,
        [first, second],
      );
      await new SagaInstances1763800000450().up(ds.createQueryRunner());
      expect(await ds.query('select id, business_key, attempt, retry_of, status from saga_instances order by attempt')).toEqual([
        { id: first, business_key: orderId, attempt: 1, retry_of: null, status: 'CANCELLED' },
        { id: second, business_key: orderId, attempt: 2, retry_of: first, status: 'RUNNING' },
      ]);
      expect(await ds.query(`select to_regclass('sagas') as t`)).toEqual([{ t: null }]);
      // The audit rows still reference attempts: one that does not exist is refused.
      expect(
        await sqlState(
          ds.query(`insert into operator_actions (id, action, saga_id, operator, why) values ('c2', 'resume', $1, 'ops', 'x')`, [
            randomUUID(),
          ]),
        ),
      ).toBe('23503');
      // And back: `down` restores `sagas` with every attempt.
      await new SagaInstances1763800000450().down(ds.createQueryRunner());
      expect(await ds.query('select id, order_id, retry_of from sagas order by attempt')).toEqual([
        { id: first, order_id: orderId, retry_of: null },
        { id: second, order_id: orderId, retry_of: first },
      ]);
    } finally {
      await drop();
    }
  });
});

describe('Sagas: a batch of replies', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  beforeAll(async () => ({ ds, drop } = await messagingDatabase(orderManifest)));
  afterAll(() => drop());

  it('locks the attempts its replies name in one statement; a second reply to an attempt sees what the first changed', async () => {
    const { metrics, breaker, relay, transactor, roundTrips } = batchTransactor(ds);
    const store = new PostgresSagaStore();
    const sagas = new Sagas([placeOrderSaga], new EnvConfig(), silentLog, metrics, ds, breaker, store);
    const orderFor = (): PlaceOrderData => ({
      orderId: randomUUID(),
      sagaId: randomUUID(),
      customerId: 'ann',
      currency: 'USD',
      items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 100 }],
      total: 200,
    });
    const [a, b] = [orderFor(), orderFor()];
    try {
      for (const d of [a, b]) await transactor.run((tx) => sagas.of(placeOrderSaga).start(tx, d, { messageId: d.orderId }));
      const reserved = (d: PlaceOrderData, key: string) =>
        inbound(
          Subjects.InventoryReserved,
          { orderId: d.orderId, sagaId: d.sagaId, items: [{ sku: 'SKU-1', quantity: 2 }] },
          key,
          'INVENTORY',
          {
            sagaId: d.sagaId,
            correlationId: d.orderId,
          },
        );
      const spec = Consumers.orderSagaInventoryReplies;
      const reply = async (tx: Tx, msg: InboundMessage) => sagas.onReply(tx, msg, (msg.body as { orderId: string }).orderId);
      const handler = transactor.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, reply])));
      // Saga A's reply twice (a participant's re-send: another inbox key), saga B's once.
      await handler([reserved(a, 'r1'), reserved(b, 'r2'), reserved(a, 'r3')]);
      // BEGIN, the claim and the lock of both attempts; A read again (behind the first reply's update) for its second
      // reply; the updates with the outbox and COMMIT: three round trips (one lock per reply would take four).
      expect(await roundTrips(spec)).toBe(3);
      for (const d of [a, b]) {
        const row = await store.lock(readSql(ds), d.sagaId);
        expect(row?.history.map((h) => [h.name, h.status])).toEqual([
          ['reserveStock', 'SUCCEEDED'],
          ['chargePayment', 'RUNNING'],
        ]);
      }
      // One charge per saga: the second reply to A found reserveStock done and changed nothing.
      const charges = await ds.query(`select payload ->> 'sagaId' as saga from outbox where subject = $1`, [Subjects.PaymentCharge]);
      expect(charges.map((c: { saga: string }) => c.saga).sort()).toEqual([a.sagaId, b.sagaId].sort());
    } finally {
      await relay.stop();
    }
  });
});
