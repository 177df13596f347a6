import { randomUUID } from 'node:crypto';
import { Headers, Subjects } from '@orderflow/contracts';
import { order, Stack, waitFor } from './support/stack';

/**
 * Faults injected in the real Postgres (a trigger that fails one order's reservation), not mocks:
 * retries with backoff, dead-lettering after MAX_DELIVER, and recovery through the saga step deadline.
 */
describe('faults', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({
      MAX_DELIVER: '3',
      RETRY_BACKOFF_MS: '50,100',
      SAGA_STEP_TIMEOUT_MS: '4000',
      SAGA_DEADLINE: '60s',
      ACK_WAIT_MS: '1000',
    });
    // The fault: a trigger (created per test, for one order) that makes that order's reservation fail.
    await stack.db.query(`create function inventory.fail_reservation() returns trigger language plpgsql as $$
      begin raise exception 'injected fault for order %', new.order_id; end $$`);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('retries a failing command, dead-letters it after MAX_DELIVER, and the saga re-sends it once the fault is gone', async () => {
    await stack.restock('FAULT-SKU', 5);
    await stack.deposit('faulty', 10_000);
    const o = order('faulty', [{ sku: 'FAULT-SKU', quantity: 1, unitPrice: 100 }]);
    await stack.db.query(`create trigger fail_reservation before insert on inventory.reservations for each row
      when (new.order_id = '${o.orderId}') execute function inventory.fail_reservation()`);
    const before = (await stack.deadLetters()).length;

    await stack.publish(Subjects.OrderCreated, o);

    let letters: Awaited<ReturnType<Stack['deadLetters']>> = [];
    // At least one: the step deadline may re-send the command and have it dead-lettered again meanwhile.
    await waitFor(async () => (letters = (await stack.deadLetters()).slice(before)).length >= 1);
    expect(letters[0].subject).toBe('dlq.inventory.cmd.reserve');
    expect(letters[0].headers).toMatchObject({ 'Dlq-Consumer': 'inventory-commands', 'Dlq-Attempts': '3', 'Correlation-Id': o.orderId });
    expect(letters[0].headers['Dlq-Error']).toMatch(/injected fault for order/);
    expect(JSON.parse(letters[0].data)).toEqual({
      orderId: o.orderId,
      sagaId: expect.any(String),
      items: [{ sku: 'FAULT-SKU', quantity: 1 }],
    });
    expect((await stack.db.query('select status from orders.orders where order_id = $1', [o.orderId])).rows[0].status).toBe('PENDING');

    // Other orders are not held up meanwhile.
    const other = order('faulty', [{ sku: 'FAULT-SKU', quantity: 1, unitPrice: 100 }]);
    await stack.publish(Subjects.OrderCreated, other);
    expect(await stack.outcome(other.orderId)).toEqual({ status: 'CONFIRMED', reason: null });

    // The fault goes away; the step deadline re-sends the command from the saga state in Postgres.
    await stack.db.query('drop trigger fail_reservation on inventory.reservations');
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    const view = await stack.query(Subjects.QueryOrder, { orderId: o.orderId });
    expect(view.data.saga.steps[0]).toMatchObject({
      name: 'reserveStock',
      status: 'SUCCEEDED',
      error: expect.stringMatching(/sent again/),
    });
    expect(
      (await stack.db.query(`select available::int, reserved::int, sold::int from inventory.stock where sku = 'FAULT-SKU'`)).rows[0],
    ).toEqual({ available: 3, reserved: 0, sold: 2 });
  });

  it('dead-letters at once, with the SQL state, an error that retrying cannot fix (data exception), and recovers once it is gone', async () => {
    await stack.restock('DATA-SKU', 5);
    await stack.deposit('data-fault', 10_000);
    const o = order('data-fault', [{ sku: 'DATA-SKU', quantity: 1, unitPrice: 100 }]);
    await stack.db.query(`create function inventory.fail_data() returns trigger language plpgsql as $$
      begin raise exception 'injected data exception for order %', new.order_id using errcode = '22023'; end $$`);
    await stack.db.query(`create trigger fail_data before insert on inventory.reservations for each row
      when (new.order_id = '${o.orderId}') execute function inventory.fail_data()`);
    const before = (await stack.deadLetters()).length;

    await stack.publish(Subjects.OrderCreated, o);

    let letters: Awaited<ReturnType<Stack['deadLetters']>> = [];
    await waitFor(async () => (letters = (await stack.deadLetters()).slice(before)).length >= 1);
    expect(letters[0].subject).toBe('dlq.inventory.cmd.reserve');
    expect(letters[0].headers).toMatchObject({ 'Dlq-Attempts': '1', 'Correlation-Id': o.orderId });
    expect(letters[0].headers['Dlq-Error']).toMatch(/^DatabaseError \[22023\]: injected data exception/);
    await stack.db.query('drop trigger fail_data on inventory.reservations');
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
  });

  it('keeps a message that is handled for longer than the ack wait from being redelivered (working())', async () => {
    await stack.restock('SLOW-SKU', 5);
    await stack.deposit('slow', 10_000);
    const o = order('slow', [{ sku: 'SLOW-SKU', quantity: 1, unitPrice: 100 }]);
    await stack.db.query(
      `create function inventory.slow() returns trigger language plpgsql as $$ begin perform pg_sleep(2.5); return new; end $$`,
    );
    await stack.db.query(
      `create trigger slow before insert on inventory.reservations for each row when (new.order_id = '${o.orderId}') execute function inventory.slow()`,
    );
    const consumer = () => stack.jsm.consumers.info(stack.ns.stream('INVENTORY'), 'inventory-commands');
    expect((await consumer()).config.ack_wait).toBe(1000 * 1_000_000);
    const deliveredBefore = (await consumer()).delivered.consumer_seq;
    try {
      await stack.publish(Subjects.OrderCreated, o);
      expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    } finally {
      await stack.db.query('drop trigger slow on inventory.reservations');
    }
    // Two commands for this order (reserve, commit), each delivered once although the reserve took 2.5 ack waits.
    expect((await consumer()).delivered.consumer_seq - deliveredBefore).toBe(2);
  });

  it('keeps one failing message from holding back the others handled with it', async () => {
    await stack.restock('BATCH-SKU', 100);
    await stack.deposit('batcher', 100_000);
    const orders = Array.from({ length: 30 }, () => order('batcher', [{ sku: 'BATCH-SKU', quantity: 1, unitPrice: 100 }]));
    const poisoned = orders[13];
    await stack.db.query(`create trigger fail_reservation_2 before insert on inventory.reservations for each row
      when (new.order_id = '${poisoned.orderId}') execute function inventory.fail_reservation()`);
    const before = (await stack.deadLetters()).length;

    await Promise.all(orders.map((o) => stack.publish(Subjects.OrderCreated, o)));

    for (const o of orders.filter((o) => o !== poisoned))
      expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    await waitFor(async () => (await stack.deadLetters()).slice(before).some((l) => JSON.parse(l.data).orderId === poisoned.orderId));
    expect(
      (await stack.db.query(`select available::int, reserved::int, sold::int from inventory.stock where sku = 'BATCH-SKU'`)).rows[0],
    ).toEqual({ available: 71, reserved: 0, sold: 29 });
    await stack.db.query('drop trigger fail_reservation_2 on inventory.reservations');
  });

  it('publishes outbox rows a crash left behind (committed, never published), then deletes them', async () => {
    const id = randomUUID();
    const received = new Promise<{ id: string | undefined; body: unknown }>((resolve) => {
      const sub = stack.nc.subscribe(stack.ns.subject(Subjects.InventoryRestocked), { max: 1 });
      (async () => {
        for await (const m of sub) resolve({ id: m.headers?.get(Headers.MsgId), body: JSON.parse(m.string()) });
      })();
    });
    await stack.db.query(
      `insert into inventory.outbox (id, subject, headers, payload, created_at) values ($1, $2, '{}', $3, now() - interval '1 hour')`,
      [id, Subjects.InventoryRestocked, JSON.stringify({ sku: 'LEFT-BEHIND', available: 1, reserved: 0 })],
    );

    expect(await received).toEqual({ id, body: { sku: 'LEFT-BEHIND', available: 1, reserved: 0 } });
    await waitFor(async () => (await stack.db.query('select 1 from inventory.outbox where id = $1', [id])).rowCount === 0);
  });

  it('finishes the orders published while a participant was down past their step deadline, once it is back: slowness cancels nothing', async () => {
    await stack.restock('RESTART-SKU', 10);
    await stack.deposit('patient', 10_000);
    await stack.stopApp('payment');
    const orders = [1, 2, 3].map(() => order('patient', [{ sku: 'RESTART-SKU', quantity: 1, unitPrice: 500 }]));
    for (const o of orders) await stack.publish(Subjects.OrderCreated, o);

    // Stock is reserved, the charge waits in the PAYMENT stream for its durable consumer.
    await waitFor(
      async () => (await stack.db.query(`select reserved::int from inventory.stock where sku = 'RESTART-SKU'`)).rows[0].reserved === 3,
    );
    expect(
      (await stack.db.query('select distinct status from orders.orders where order_id = any($1)', [orders.map((o) => o.orderId)])).rows,
    ).toEqual([{ status: 'PENDING' }]);
    // Past the step's deadline (4 s here) the charge is sent again, not given up on; saga show says why it waits.
    let view: any;
    await waitFor(
      async () => (view = (await stack.query(Subjects.QuerySaga, { id: orders[0].orderId })).data).steps[1]?.sends >= 2,
      15_000,
    );
    expect(view).toMatchObject({ status: 'RUNNING', step: 'chargePayment' });
    expect(view.steps[1].waiting).toMatch(
      /^waiting for payment: nobody is pulling payment-commands \(\d+ message\(s\) undelivered\); command first sent \d+ s ago, 2 sends$/,
    );

    await stack.startApp('payment');
    for (const o of orders) expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    expect(Number((await stack.db.query(`select balance from payments.accounts where customer_id = 'patient'`)).rows[0].balance)).toBe(
      10_000 - 1500,
    );
  });
});
