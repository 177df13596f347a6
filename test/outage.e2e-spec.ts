import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subjects } from '@orderflow/contracts';
import { startPrivatePostgres } from '../apps/cli/src/stack/infra';
import { order, Stack, waitFor } from './support/stack';

/**
 * A Postgres outage longer than the whole retry budget, on a private cluster this test crashes (`-m immediate`)
 * and starts again: the circuit breaker holds the messages instead of retrying them, so nothing is
 * dead-lettered, no delivery is used up, and every order completes once Postgres is back.
 */
describe('a Postgres outage', () => {
  let dir: string;
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>;
  let stack: Stack;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderflow-outage-'));
    pg = await startPrivatePostgres(dir);
    if (!pg) throw new Error('the PostgreSQL server binaries are needed for this test');
    // Retry budget: 3 deliveries 50 ms and 100 ms apart; ack wait 2 s. The outage lasts 6 s.
    stack = await Stack.start({
      PGHOST: '127.0.0.1',
      PGPORT: String(pg.port),
      MAX_DELIVER: '3',
      RETRY_BACKOFF_MS: '50,100',
      ACK_WAIT_MS: '2000',
      PG_POOL_ACQUIRE_TIMEOUT_MS: '1000',
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('dead-letters nothing and completes every order published during it once Postgres is back', async () => {
    await stack.restock('OUTAGE-SKU', 100);
    await stack.deposit('outage', 100_000);
    const warmUp = order('outage', [{ sku: 'OUTAGE-SKU', quantity: 1, unitPrice: 100 }]);
    await stack.publish(Subjects.OrderCreated, warmUp);
    expect(await stack.outcome(warmUp.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    const lettersBefore = (await stack.deadLetters()).length;
    const placement = () => stack.jsm.consumers.info(stack.ns.stream('ORDER'), 'order-placement');
    const deliveredBefore = (await placement()).delivered.consumer_seq;

    const ready = async () => (await fetch(`${stack.httpUrl('order')}/health/ready`)).status;
    expect(await ready()).toBe(200);
    await pg!.crash();
    const orders = Array.from({ length: 20 }, () => order('outage', [{ sku: 'OUTAGE-SKU', quantity: 2, unitPrice: 150 }]));
    try {
      // Readiness turns 503 within 5 s of Postgres going away (liveness stays 200).
      await waitFor(async () => (await ready()) === 503, 5000);
      expect((await fetch(`${stack.httpUrl('inventory')}/health/live`)).status).toBe(200);
      for (const o of orders) await stack.publish(Subjects.OrderCreated, o);
      expect((await stack.query(Subjects.QueryStock, { sku: 'OUTAGE-SKU' })).error).toMatchObject({ code: 'unavailable' });
      await new Promise((r) => setTimeout(r, 6000));
      expect((await stack.deadLetters()).length).toBe(lettersBefore);
    } finally {
      await pg!.start();
    }

    for (const o of orders) expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    expect(await ready()).toBe(200);
    expect((await stack.deadLetters()).length).toBe(lettersBefore);
    // Each order.created was delivered once: held through the outage, not redelivered nor naked.
    expect((await placement()).delivered.consumer_seq - deliveredBefore).toBe(orders.length);
    expect(
      (await stack.db.query(`select available::int, reserved::int, sold::int from inventory.stock where sku = 'OUTAGE-SKU'`)).rows[0],
    ).toEqual({ available: 59, reserved: 0, sold: 41 });
    expect(await stack.conservationViolations()).toEqual([]);
  });

  it('stops an app promptly while it holds messages for an unavailable database; they are handled after it restarts', async () => {
    const lettersBefore = (await stack.deadLetters()).length;
    await pg!.crash();
    const orders = Array.from({ length: 3 }, () => order('outage', [{ sku: 'OUTAGE-SKU', quantity: 1, unitPrice: 100 }]));
    try {
      for (const o of orders) await stack.publish(Subjects.OrderCreated, o);
      await new Promise((r) => setTimeout(r, 1000));
      const started = Date.now();
      await stack.stopApp('order');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await pg!.start();
    }
    await stack.startApp('order');
    for (const o of orders) expect(await stack.outcome(o.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    expect((await stack.deadLetters()).length).toBe(lettersBefore);
    expect(await stack.conservationViolations()).toEqual([]);
  });
});
