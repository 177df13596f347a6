import { randomUUID } from 'node:crypto';
import { Subjects } from '@orderflow/contracts';
import { order, Stack, waitFor } from './support/stack';

/** The four real apps on real NATS + Postgres, driven only by publishing `order.created` as any NATS client would. */
describe('PlaceOrder end to end', () => {
  let stack: Stack;
  // Unique names per test, so the tests share one stack without sharing state.
  const uniq = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const stock = async (sku: string) =>
    (await stack.db.query('select available::int, reserved::int, sold::int from inventory.stock where sku = $1', [sku])).rows[0];
  const balance = async (customer: string) =>
    Number((await stack.db.query('select balance from payments.accounts where customer_id = $1', [customer])).rows[0].balance);
  const notifications = async (orderId: string) =>
    (await stack.db.query('select outcome, message from notifications.notifications where order_id = $1', [orderId])).rows;

  it('confirms an order: stock reserved then sold, payment charged, one notification', async () => {
    const [sku, customer] = [uniq('BOOK'), uniq('alice')];
    await stack.restock(sku, 10);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [{ sku, quantity: 3, unitPrice: 1250 }]);

    await stack.publish(Subjects.OrderCreated, o);

    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    expect(await stock(sku)).toEqual({ available: 7, reserved: 0, sold: 3 });
    expect(await balance(customer)).toBe(10_000 - 3750);
    expect(await notifications(o.orderId)).toEqual([{ outcome: 'CONFIRMED', message: expect.stringContaining('37.50 USD') }]);
    const view = await stack.query(Subjects.QueryOrder, { orderId: o.orderId });
    expect(view.data.saga.status).toBe('COMPLETED');
    expect(view.data.saga.steps.map((s: any) => `${s.name}:${s.status}`)).toEqual([
      'reserveStock:SUCCEEDED',
      'chargePayment:SUCCEEDED',
      'createOrder:SUCCEEDED',
      'commitReservation:SUCCEEDED',
    ]);
    // What the CLI plans with: the definition's steps with this attempt's commands, from the order app.
    const saga = (await stack.query(Subjects.QuerySaga, { id: o.orderId })).data;
    expect(saga.plan.map((p: any) => p.line)).toEqual([
      `reserveStock: send inventory.cmd.reserve (${sku}×3)`,
      `releaseStock: send inventory.cmd.release`,
      'chargePayment: send payment.cmd.charge (37.50 USD)',
      'refundPayment: send payment.cmd.refund',
      'createOrder: local transaction (pivot)',
      `commitReservation: send inventory.cmd.commit`,
    ]);
    expect(saga.plan[0]).toMatchObject({
      kind: 'action',
      subject: Subjects.InventoryReserve,
      replies: expect.arrayContaining([Subjects.InventoryReserved]),
    });
    const types = (await stack.query(Subjects.QuerySagaTypes, {})).data;
    expect(types).toEqual([
      { type: 'PlaceOrder', steps: saga.plan.map((p: any) => ({ name: p.name, kind: p.kind, pivot: p.name === 'createOrder' })) },
    ]);
  });

  it('cancels with out_of_stock: nothing reserved, nothing charged', async () => {
    const [sku, customer] = [uniq('LAMP'), uniq('bob')];
    await stack.restock(sku, 2);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [{ sku, quantity: 5, unitPrice: 100 }]);

    await stack.publish(Subjects.OrderCreated, o);

    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'out_of_stock' });
    expect(await stock(sku)).toEqual({ available: 2, reserved: 0, sold: 0 });
    expect(await balance(customer)).toBe(10_000);
    expect(await notifications(o.orderId)).toEqual([{ outcome: 'CANCELLED', message: expect.stringContaining('out_of_stock') }]);
  });

  it('cancels with unknown_sku, reserving none of the lines (all or nothing)', async () => {
    const [sku, customer] = [uniq('MUG'), uniq('carol')];
    await stack.restock(sku, 5);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [
      { sku, quantity: 1, unitPrice: 500 },
      { sku: uniq('NOPE'), quantity: 1, unitPrice: 1 },
    ]);

    await stack.publish(Subjects.OrderCreated, o);

    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'unknown_sku' });
    expect(await stock(sku)).toEqual({ available: 5, reserved: 0, sold: 0 });
    expect(await balance(customer)).toBe(10_000);
    expect(await notifications(o.orderId)).toHaveLength(1);
  });

  it('cancels a declined payment and releases the stock it had reserved', async () => {
    const [sku, customer] = [uniq('DESK'), uniq('dave')];
    await stack.restock(sku, 4);
    await stack.deposit(customer, 999);
    const o = order(customer, [{ sku, quantity: 2, unitPrice: 500 }]);

    await stack.publish(Subjects.OrderCreated, o);

    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'insufficient_funds' });
    expect(await stock(sku)).toEqual({ available: 4, reserved: 0, sold: 0 });
    expect(await balance(customer)).toBe(999);
    expect(await notifications(o.orderId)).toHaveLength(1);
    const view = await stack.query(Subjects.QueryOrder, { orderId: o.orderId });
    expect(view.data.saga.steps.map((s: any) => `${s.name}:${s.status}`)).toEqual([
      'reserveStock:SUCCEEDED',
      'chargePayment:FAILED',
      'releaseStock:SUCCEEDED',
    ]);
  });

  it('cancels an order of an unknown customer with unknown_customer', async () => {
    const sku = uniq('PEN');
    await stack.restock(sku, 1);
    const o = order(uniq('nobody'), [{ sku, quantity: 1, unitPrice: 100 }]);

    await stack.publish(Subjects.OrderCreated, o);

    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'unknown_customer' });
    expect(await stock(sku)).toEqual({ available: 1, reserved: 0, sold: 0 });
  });

  it('runs one saga for the same order published twice, with different Nats-Msg-Ids', async () => {
    const [sku, customer] = [uniq('CHAIR'), uniq('erin')];
    await stack.restock(sku, 10);
    await stack.deposit(customer, 10_000);
    const o = order(customer, [{ sku, quantity: 1, unitPrice: 2000 }]);

    await Promise.all([stack.publish(Subjects.OrderCreated, o, 'first'), stack.publish(Subjects.OrderCreated, o, 'second')]);
    await stack.publish(Subjects.OrderCreated, o, 'second'); // and the same Nats-Msg-Id again: dropped by the stream

    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    // Give a duplicate saga every chance to show up before counting.
    await new Promise((r) => setTimeout(r, 500));
    expect(
      (await stack.db.query('select count(*)::int as n from orders.saga_instances where business_key = $1', [o.orderId])).rows[0].n,
    ).toBe(1);
    expect(
      (await stack.db.query(`select count(*)::int as n from payments.ledger where order_id = $1 and kind = 'CHARGE'`, [o.orderId])).rows[0]
        .n,
    ).toBe(1);
    expect((await stack.db.query('select count(*)::int as n from inventory.reservations where order_id = $1', [o.orderId])).rows[0].n).toBe(
      1,
    );
    expect(await stock(sku)).toEqual({ available: 9, reserved: 0, sold: 1 });
    expect(await balance(customer)).toBe(8000);
    expect(await notifications(o.orderId)).toHaveLength(1);
  });

  it('dead-letters malformed order.created messages with the reason, and keeps serving the orders behind them', async () => {
    const [sku, customer] = [uniq('BAG'), uniq('frank')];
    await stack.restock(sku, 3);
    await stack.deposit(customer, 5000);
    const before = (await stack.deadLetters()).length;
    const good = order(customer, [{ sku, quantity: 1, unitPrice: 1000 }]);
    const zeroQty = order(customer, [{ sku, quantity: 0, unitPrice: 1000 }]);

    await stack.publish(Subjects.OrderCreated, '{"orderId": "nöt json');
    await stack.publish(Subjects.OrderCreated, { orderId: randomUUID(), currency: 'USD' });
    await stack.publish(Subjects.OrderCreated, zeroQty);
    await stack.publish(Subjects.OrderCreated, good);

    expect(await stack.outcome(good.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    let letters: Awaited<ReturnType<Stack['deadLetters']>> = [];
    await waitFor(async () => (letters = (await stack.deadLetters()).slice(before)).length === 3);
    expect(letters.map((l) => l.subject)).toEqual(['dlq.order.created', 'dlq.order.created', 'dlq.order.created']);
    const errors = letters.map((l) => l.headers['Dlq-Error']);
    expect(errors[0]).toMatch(/MalformedMessageError: body is not valid JSON/);
    expect(errors[1]).toMatch(/customerId/);
    expect(errors[1]).toMatch(/items/);
    expect(errors[2]).toMatch(/quantity must not be less than 1/);
    expect(letters[0].data).toBe('{"orderId": "nöt json');
    expect(letters[2].headers).toMatchObject({
      'Dlq-Consumer': 'order-placement',
      'Dlq-Attempts': '1',
      'Dlq-Stream': stack.ns.stream('ORDER'),
    });
    expect(Number(letters[2].headers['Dlq-Sequence'])).toBeGreaterThan(0);
    // Nothing was half-done for the invalid order, and every service still answers.
    expect((await stack.db.query('select count(*)::int as n from orders.orders where order_id = $1', [zeroQty.orderId])).rows[0].n).toBe(0);
    for (const q of [
      [Subjects.QueryOrder, { orderId: zeroQty.orderId }],
      [Subjects.QueryStock, { sku: 'NO-SUCH-SKU' }],
      [Subjects.QueryAccount, { customerId: 'nobody' }],
    ] as const) {
      expect((await stack.query(q[0], q[1])).error).toMatchObject({ code: 'not_found' });
    }
  });

  it('never oversells: of 40 concurrent orders for 25 units, exactly 25 are confirmed', async () => {
    const sku = uniq('HOT');
    const customers = [uniq('c1'), uniq('c2'), uniq('c3'), uniq('c4')];
    await stack.restock(sku, 25);
    for (const c of customers) await stack.deposit(c, 100_000);
    const orders = Array.from({ length: 40 }, (_, i) => order(customers[i % 4], [{ sku, quantity: 1, unitPrice: 700 }]));

    await Promise.all(orders.map((o) => stack.publish(Subjects.OrderCreated, o)));

    const outcomes = await Promise.all(orders.map((o) => stack.outcome(o.orderId)));
    expect(outcomes.filter((o) => o.status === 'CONFIRMED')).toHaveLength(25);
    expect(outcomes.filter((o) => o.status === 'CANCELLED').every((o) => o.reason === 'out_of_stock')).toBe(true);
    expect(await stock(sku)).toEqual({ available: 0, reserved: 0, sold: 25 });
    const charged = (await Promise.all(customers.map(balance))).reduce((sum, b) => sum + (100_000 - b), 0);
    expect(charged).toBe(25 * 700);
  });

  it('never creates or loses money: balance + charged − refunded = deposited, per customer', async () => {
    const rows = (
      await stack.db.query(`
      select a.customer_id, a.balance::bigint as balance,
             coalesce(sum(l.amount) filter (where l.kind = 'DEPOSIT'), 0)::bigint as deposited,
             coalesce(sum(l.amount) filter (where l.kind = 'CHARGE'), 0)::bigint as charged,
             coalesce(sum(l.amount) filter (where l.kind = 'REFUND'), 0)::bigint as refunded
        from payments.accounts a left join payments.ledger l on l.customer_id = a.customer_id
       group by a.customer_id, a.balance`)
    ).rows;
    expect(rows.length).toBeGreaterThan(3);
    for (const r of rows) expect(Number(r.balance) + Number(r.charged) - Number(r.refunded)).toBe(Number(r.deposited));
  });

  it('sets the statement, lock and idle-in-transaction timeouts on every service role', async () => {
    const roles = ['orderflow_inventory', 'orderflow_notifications', 'orderflow_orders', 'orderflow_payments'];
    const { rows } = await stack.db.query('select rolname, rolconfig from pg_roles where rolname = any($1) order by rolname', [roles]);
    expect(rows.map((r) => r.rolname)).toEqual(roles);
    for (const r of rows)
      expect(r.rolconfig).toEqual(
        expect.arrayContaining(['statement_timeout=30000', 'lock_timeout=5000', 'idle_in_transaction_session_timeout=60000']),
      );
  });

  it("gives each service a role that cannot read another service's schema", async () => {
    const { Client } = await import('pg');
    const asOrders = new Client({
      host: stack.config.PGHOST,
      port: stack.config.PGPORT,
      database: stack.config.PGDATABASE,
      user: 'orderflow_orders',
    });
    await asOrders.connect();
    try {
      await expect(asOrders.query('select count(*) from orders.orders')).resolves.toBeDefined();
      await expect(asOrders.query('select * from inventory.stock')).rejects.toThrow(/permission denied/);
      await expect(asOrders.query('select * from payments.accounts')).rejects.toThrow(/permission denied/);
    } finally {
      await asOrders.end();
    }
  });
});
