import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import { Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { Consumers, Subjects } from '@orderflow/contracts';
import { InboundMessage, MessagePublisher, OutgoingMessage } from '@orderflow/messaging';
import { DatabaseBreaker, OutboxRelay, Transactor, Tx } from '@orderflow/persistence';
import { PipelineMetrics } from '@orderflow/telemetry';
import { waitFor } from '../support/wait';
import { messagingDatabase, silentLog } from '../support/database';

/**
 * The db tier: `Transactor` (state, inbox and outbox in one transaction) and `OutboxRelay` (fast path and sweep) on a
 * real Postgres, with a publisher the test controls instead of NATS.
 */
class FakePublisher implements MessagePublisher {
  readonly published: { msgId: string; subject: string; body: object; correlationId?: string }[] = [];
  failing = false;
  async publish(msg: OutgoingMessage, msgId: string) {
    if (this.failing) throw new Error('no stream answered');
    this.published.push({ msgId, subject: msg.subject, body: msg.body, correlationId: msg.correlationId });
    return { duplicate: false };
  }
}

describe('Transactor and the outbox relay (Postgres only)', () => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  let publisher: FakePublisher;
  let relay: OutboxRelay;
  let tx: Transactor;

  beforeAll(async () => {
    ({ ds, drop } = await messagingDatabase());
    await ds.query('create table app.effects (id uuid primary key, note text not null)');
  });
  afterAll(() => drop());
  beforeEach(async () => {
    publisher = new FakePublisher();
    const breaker = new DatabaseBreaker(ds, silentLog);
    relay = new OutboxRelay(ds, publisher, silentLog, 100, breaker);
    tx = new Transactor(ds, relay, breaker);
  });
  afterEach(async () => {
    await relay.stop();
    await ds.query('truncate app.outbox, app.inbox, app.effects');
  });

  const outboxCount = async () => Number((await ds.query('select count(*) as n from app.outbox'))[0].n);
  const effects = async () => (await ds.query('select note from app.effects order by note')).map((r: { note: string }) => r.note);
  /** A restock command whose message id and inbox key are `key`. */
  const restock = (key: string): InboundMessage => ({
    subject: Subjects.InventoryRestock,
    body: { sku: key, quantity: 1 },
    messageId: key,
    inboxKey: key,
    attempt: 1,
    stream: 'INVENTORY',
    sequence: 1,
  });
  const restocked = (sku: string) => ({
    subject: Subjects.InventoryRestocked,
    body: { sku, available: 1, reserved: 0, sold: 0 },
  });
  /** A relay that never sweeps and deletes on its own only after `deleteAfterMs`, and a transactor on it. */
  const relayDeletingAfter = (deleteAfterMs: number, metrics?: PipelineMetrics) => {
    const breaker = new DatabaseBreaker(ds, silentLog);
    const own = new OutboxRelay(ds, publisher, silentLog, 60_000, breaker, metrics, deleteAfterMs);
    return { own, t: new Transactor(ds, own, breaker, metrics) };
  };
  /** The round trips the relay made on its own (its deletes), in `metrics`. */
  const relayRoundTrips = async (metrics: PipelineMetrics) =>
    (await metrics.registry.getSingleMetric('orderflow_pg_round_trips_total')!.get()).values
      .filter((v) => v.labels.consumer === 'outbox relay')
      .reduce((n, v) => n + v.value, 0);

  it('commits the state change and its messages together; publishes them after commit and deletes the rows', async () => {
    await tx.run(async (t) => {
      await t.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'restocked A']);
      t.send({ ...restocked('A'), correlationId: 'corr-1' });
    });
    expect(await effects()).toEqual(['restocked A']);
    await waitFor(async () => (await outboxCount()) === 0);
    expect(publisher.published).toEqual([
      { msgId: expect.any(String), subject: Subjects.InventoryRestocked, body: restocked('A').body, correlationId: 'corr-1' },
    ]);
  });

  it('rolls back both when the work throws: no state, no outbox row, nothing published', async () => {
    await expect(
      tx.run(async (t) => {
        await t.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'never']);
        t.send(restocked('B'));
        throw new Error('injected fault');
      }),
    ).rejects.toThrow('injected fault');
    expect(await effects()).toEqual([]);
    expect(await outboxCount()).toBe(0);
    expect(publisher.published).toEqual([]);
  });

  it('runs a message whose inbox key is already claimed no more: twice in one batch, or delivered again', async () => {
    const spec = Consumers.inventoryCommands;
    const work = async (t: Parameters<Parameters<Transactor['run']>[0]>[0], m: InboundMessage) => {
      await t.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), (m.body as { sku: string }).sku]);
    };
    const handler = tx.handler(spec, {
      [Subjects.InventoryRestock]: work,
      [Subjects.InventoryReserve]: work,
      [Subjects.InventoryRelease]: work,
      [Subjects.InventoryCommit]: work,
    });
    await handler([restock('k1'), restock('k1'), restock('k2')]);
    await handler([restock('k2'), restock('k3')]);
    expect(await effects()).toEqual(['k1', 'k2', 'k3']);
    const inbox = await ds.query('select consumer, message_id from app.inbox order by message_id');
    expect(inbox).toEqual(['k1', 'k2', 'k3'].map((k) => ({ consumer: 'INVENTORY/inventory-commands', message_id: k })));
  });

  it('runs a batch speculatively: a message handled before is left out, even when its work would fail', async () => {
    const spec = Consumers.inventoryCommands;
    // The effect's id comes from the key, so running a message twice would fail (23505, a permanent error).
    const work = async (t: Parameters<Parameters<Transactor['run']>[0]>[0], m: InboundMessage) => {
      await t.query('insert into effects (id, note) values (md5($1)::uuid, $1)', [m.inboxKey]);
      t.send(restocked(m.inboxKey));
    };
    const handler = tx.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, work])));
    await handler([restock('s1')]);
    await handler([restock('s1'), restock('s2'), restock('s1')]);
    await handler([restock('s2')]);
    expect(await effects()).toEqual(['s1', 's2']);
    await waitFor(async () => publisher.published.length === 2);
    expect(publisher.published.map((p) => p.body)).toEqual([restocked('s1').body, restocked('s2').body]);
  });

  it('measures each batch: its round trips and time in Postgres, and how long its messages waited in the stream', async () => {
    const metrics = new PipelineMetrics('db-test');
    const measured = new Transactor(ds, relay, new DatabaseBreaker(ds, silentLog), metrics);
    const work = async (t: Parameters<Parameters<Transactor['run']>[0]>[0]) => {
      t.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'pipelined']);
      await t.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'measured']);
      t.send(restocked('M'));
    };
    const spec = Consumers.inventoryCommands;
    const handler = measured.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, work])));
    const storedAt = Date.now() - 2_000;
    await handler([
      {
        subject: Subjects.InventoryRestock,
        body: {},
        messageId: 'm1',
        inboxKey: 'm1',
        attempt: 1,
        stream: 'INVENTORY',
        sequence: 1,
        storedAt,
      },
    ]);
    const value = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values;
    // BEGIN (and its SET LOCAL) with the inbox claim; the handler's two inserts, the first pipelined ahead of the
    // second; the outbox insert with COMMIT: seven statements in two round trips (the first five share one).
    expect(await value('orderflow_pg_statements_total')).toEqual([{ labels: { consumer: spec.durable }, value: 7 }]);
    expect(await value('orderflow_pg_round_trips_total')).toEqual([{ labels: { consumer: spec.durable }, value: 2 }]);
    expect((await value('orderflow_pg_seconds_total'))[0].value).toBeGreaterThan(0);
    const waited = (await value('orderflow_stream_wait_seconds')).find(
      (v) => (v as { metricName?: string }).metricName === 'orderflow_stream_wait_seconds_sum',
    );
    expect(waited?.value).toBeGreaterThanOrEqual(2);
  });

  it('commits after the work handed to beforeCommit: handlers that act on their answers share one round trip, and its failure rolls back', async () => {
    const metrics = new PipelineMetrics('db-test-before-commit');
    const measured = new Transactor(ds, relay, new DatabaseBreaker(ds, silentLog), metrics);
    const acted: string[] = [];
    const refused = new Set<string>();
    // As the notification app does: record, and act on the answer (send) before the commit, without waiting here.
    const work = async (t: Tx, msg: InboundMessage) => {
      const recorded = t.query<{ id: string }>('insert into effects (id, note) values ($1, $2) returning id', [randomUUID(), msg.inboxKey]);
      t.beforeCommit(
        recorded.then(async (rows) => {
          await new Promise((r) => setTimeout(r, 5)); // acting takes a while: the commit waits for it
          if (refused.has(msg.inboxKey)) throw new Error('the channel refused it');
          acted.push(`${msg.inboxKey}:${rows.length}`);
        }),
      );
    };
    const spec = Consumers.inventoryCommands;
    const handler = measured.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, work])));
    await handler([restock('b1'), restock('b2'), restock('b3')]);
    expect(acted).toEqual(['b1:1', 'b2:1', 'b3:1']);
    expect(await effects()).toEqual(['b1', 'b2', 'b3']);
    // BEGIN, its SET LOCAL, the inbox claim and the three inserts; then COMMIT: two round trips (waiting for each
    // insert in its handler takes four).
    const roundTrips = async () => (await metrics.registry.getSingleMetric('orderflow_pg_round_trips_total')!.get()).values[0].value;
    expect(await roundTrips()).toBe(2);

    refused.add('b5');
    await expect(handler([restock('b4'), restock('b5')])).rejects.toThrow('the channel refused it');
    expect(await effects()).toEqual(['b1', 'b2', 'b3']);
  });

  it('runs a batch by ordering key: other keys concurrently, sharing round trips; one key in order; a failure waits for the rest', async () => {
    const metrics = new PipelineMetrics('db-test-ordering-key');
    const measured = new Transactor(ds, relay, new DatabaseBreaker(ds, silentLog), metrics);
    const spec = { ...Consumers.inventoryCommands, orderingKey: (body: unknown) => (body as { sku: string }).sku };
    const failing = new Set<string>();
    const finished: string[] = [];
    // Reads what its key has, then writes after it: run concurrently, two messages of one key would both read 0.
    const work = async (t: Tx, msg: InboundMessage) => {
      const { sku } = msg.body as { sku: string };
      if (failing.has(msg.inboxKey)) throw new Error(`${msg.inboxKey} failed`);
      const [{ n }] = await t.query<{ n: number }>('select count(*)::int as n from effects where note like $1', [`${sku}:%`]);
      await t.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), `${sku}:${n}`]);
      finished.push(msg.inboxKey);
    };
    const handler = measured.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, work])));
    const msg = (inboxKey: string, sku: string) => ({ ...restock(inboxKey), body: { sku, quantity: 1 } });
    await handler([msg('o1', 'a'), msg('o2', 'b'), msg('o3', 'a'), msg('o4', 'c')]);
    expect(await effects()).toEqual(['a:0', 'a:1', 'b:0', 'c:0']);
    // a, b and c read in the round trip of BEGIN and the claim, and write in the next; the second a reads and writes
    // after the first; then COMMIT: five round trips (nine one message after another).
    const roundTrips = async () => (await metrics.registry.getSingleMetric('orderflow_pg_round_trips_total')!.get()).values[0].value;
    expect(await roundTrips()).toBe(5);

    // One fails at once, and the one after it in its key does not run; the others run to their end before the batch
    // rolls back (none is left queuing statements on a transaction that is over).
    failing.add('o6');
    finished.length = 0;
    await expect(handler([msg('o5', 'd'), msg('o6', 'e'), msg('o7', 'e'), msg('o8', 'f')])).rejects.toThrow('o6 failed');
    expect(finished.sort()).toEqual(['o5', 'o8']);
    expect(await effects()).toEqual(['a:0', 'a:1', 'b:0', 'c:0']);
  });

  it('refuses a statement once the transaction is over: its connection may serve another one by then', async () => {
    let kept: Tx | undefined;
    await tx.run(async (t) => {
      kept = t;
      await t.query('select 1');
    });
    await expect(kept!.query('select 1')).rejects.toThrow('this transaction is over');
    expect(() => kept!.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'late'])).toThrow(
      'this transaction is over',
    );
    await expect(tx.run(async (t) => ((kept = t), Promise.reject(new Error('work failed'))))).rejects.toThrow('work failed');
    await expect(kept!.query('select 1')).rejects.toThrow('this transaction is over');
    expect(await effects()).toEqual([]);
  });

  it('pipelines a statement whose result is not needed: the next one sees its effect, and its failure fails the transaction', async () => {
    const id = randomUUID();
    const seen = await tx.run(async (t) => {
      t.execute('insert into effects (id, note) values ($1, $2)', [id, 'pipelined']);
      return t.query<{ note: string }>('select note from effects where id = $1', [id]);
    });
    expect(seen).toEqual([{ note: 'pipelined' }]);
    // A failed pipelined statement aborts the transaction: the next statement throws its error (23505 here, not the
    // 25P02 "transaction is aborted" Postgres answers that one with), and nothing commits.
    const failing = (next: (t: Parameters<Parameters<Transactor['run']>[0]>[0]) => Promise<unknown> | void) =>
      tx.run(async (t) => {
        t.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'rolled back']);
        t.execute('insert into effects (id, note) values ($1, $2)', [id, 'duplicate key']);
        t.send(restocked('P'));
        await next(t);
      });
    await expect(failing((t) => t.query('select 1'))).rejects.toMatchObject({ code: '23505' });
    // With nothing after it, COMMIT would answer ROLLBACK without an error: the commit throws the statement's error.
    await expect(failing(() => undefined)).rejects.toMatchObject({ code: '23505' });
    expect(await effects()).toEqual(['pipelined']);
    expect(await outboxCount()).toBe(0);
  });

  it('writes the statements queried in one tick to the socket at once', async () => {
    const writes = [jest.spyOn(Socket.prototype, '_write'), jest.spyOn(Socket.prototype, '_writev')];
    try {
      await tx.run(async (t) => {
        const sent = writes.reduce((n, w) => n + w.mock.calls.length, 0);
        t.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'one']);
        t.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'two']);
        await t.query('select count(*) from effects');
        expect(writes.reduce((n, w) => n + w.mock.calls.length, 0) - sent).toBe(1);
      });
    } finally {
      writes.forEach((w) => w.mockRestore());
    }
    expect(await effects()).toEqual(['one', 'two']);
  });

  it('sends the statements of a round trip as one batch: Postgres answers them with one ReadyForQuery', async () => {
    const client = await ((ds.driver as PostgresDriver).master as Pool).connect();
    const connection = (client as PoolClient & { connection: { on(e: string, f: () => void): void; off(e: string, f: () => void): void } })
      .connection;
    let ready = 0;
    const count = () => ready++;
    connection.on('readyForQuery', count);
    try {
      const t = Tx.onClient(client);
      await t.open();
      t.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'batched one']);
      t.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'batched two']);
      const seen = await t.query<{ n: number }>('select count(*)::int as n from effects');
      expect(seen).toEqual([{ n: 2 }]);
      // BEGIN, its SET LOCAL, two inserts and the read: one Sync, so one ReadyForQuery (pg's Query sends one each).
      expect(ready).toBe(1);
      expect(t.stats).toMatchObject({ statements: 5, roundTrips: 1 });
      await t.close();
      expect(ready).toBe(2);
    } finally {
      connection.off('readyForQuery', count);
      client.release();
    }
    expect(await effects()).toEqual(['batched one', 'batched two']);
  });

  it('skips what follows a failed statement of a batch, and drops a connection that may hold a statement it first prepared there', async () => {
    const id = randomUUID();
    await tx.run(async (t) => void (await t.query('insert into effects (id, note) values ($1, $2)', [id, 'first'])));
    // Statement texts no connection has prepared yet: the insert fails on its first run (23505), after its Parse.
    const insert = `insert into effects (id, note) values ($1, $2) -- ${randomUUID()}`;
    const after = `select count(*)::int as n from effects where note = $1 -- ${randomUUID()}`;
    const pool = (ds.driver as PostgresDriver).master as Pool;
    const released = jest.fn();
    pool.on('release', released);
    try {
      await expect(
        tx.run(async (t) => {
          t.execute(insert, [id, 'duplicate']);
          return t.query(after, ['duplicate']);
        }),
      ).rejects.toMatchObject({ code: '23505' });
      expect(released).toHaveBeenCalledWith(expect.objectContaining({ code: '23505' }), expect.anything()); // dropped
      // Both statements run on the next connections as if never prepared there: no 42P05 or 26000.
      await tx.run(async (t) => {
        t.execute(insert, [randomUUID(), 'second']);
        expect(await t.query(after, ['second'])).toEqual([{ n: 1 }]);
      });
      await tx.run(async (t) => expect(await t.query(after, ['second'])).toEqual([{ n: 1 }]));
    } finally {
      pool.off('release', released);
    }
    expect(await effects()).toEqual(['first', 'second']);
  });

  it('fails the transaction on a value pg cannot bind, and keeps the connection usable', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(
      tx.run(async (t) => {
        t.execute('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'before it']);
        await t.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), circular]);
      }),
    ).rejects.toThrow(/circular/i);
    await tx.run(async (t) => void (await t.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'after it'])));
    expect(await effects()).toEqual(['after it']);
  });

  it('plans the prepared statements of its transactions once per connection: the inbox claim, the outbox insert and delete, the work', async () => {
    const spec = Consumers.inventoryCommands;
    const work = async (t: Parameters<Parameters<Transactor['run']>[0]>[0], m: InboundMessage) => {
      // An array parameter: by default Postgres plans such a statement again on every execution.
      await t.query('select count(*) from effects where note = any($1)', [[m.inboxKey]]);
      t.send(restocked(m.inboxKey));
    };
    // A relay that never deletes by itself: each batch deletes the row the last one published (the relay's own delete,
    // 50 ms after a publish, won a race on a slow CI machine and left a batch without it), and nothing but the batches
    // takes a connection.
    const { own, t: transactor } = relayDeletingAfter(60_000);
    const handler = transactor.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, work])));
    let plans: { statement: string; generic_plans: number; custom_plans: number }[];
    try {
      // One batch after the other: the pool hands out the connection released last, so they share one.
      for (let i = 0; i < 8; i++) {
        await handler([restock(`g${i}`)]);
        await waitFor(() => publisher.published.length === i + 1); // its row is deleted by the next batch
      }
      plans = await tx.run((t) =>
        t.query(`select statement, generic_plans, custom_plans from pg_prepared_statements where statement ~ 'inbox|outbox|effects'`),
      );
    } finally {
      await own.stop();
    }
    const of = (pattern: RegExp) => plans.find((p) => pattern.test(p.statement));
    for (const statement of [/insert into inbox/, /insert into outbox/, /delete from outbox/, /from effects/]) {
      expect(of(statement)).toMatchObject({ custom_plans: 0 });
      expect(of(statement)!.generic_plans).toBeGreaterThanOrEqual(7);
    }
  });

  it('plans a statement given planEach for its parameters every time: a table that grew since it was analysed is read by its index', async () => {
    const client = await ((ds.driver as PostgresDriver).master as Pool).connect();
    // The scans of one read of `table` by `a` or `b`, after five reads (a prepared statement's plan is generic from
    // then on) while it held 20 rows, analysed, and 20,000 rows added since.
    const scansOfReadAfterGrowth = async (table: string, planEach: boolean) => {
      await client.query(`create table ${table} (id bigserial primary key, a uuid, b uuid)`);
      await client.query(`create index on ${table} (a); create index on ${table} (b)`);
      await client.query(`insert into ${table} (a, b) select null, null from generate_series(1, 20); analyze ${table}`);
      const t = Tx.onClient(client);
      const read = () => t.query(`select id from ${table} where a = $1 or b = $2`, [randomUUID(), randomUUID()], { planEach });
      for (let i = 0; i < 6; i++) await read();
      await client.query(`insert into ${table} (a, b) select gen_random_uuid(), gen_random_uuid() from generate_series(1, 20000)`);
      // This session's scans not yet reported (read without a snapshot), before and after.
      const scans = async () => {
        const [r] = (await client.query(`select seq_scan, idx_scan from pg_stat_xact_user_tables where relid = $1::regclass`, [table]))
          .rows;
        return { seq: Number(r.seq_scan), idx: Number(r.idx_scan) };
      };
      await client.query('begin');
      const before = await scans();
      await read();
      const after = await scans();
      await client.query('commit');
      return { seq: after.seq - before.seq, idx: after.idx - before.idx };
    };
    try {
      // Prepared, the plan made for 20 rows (read them all) stays: the hazard `planEach` is for.
      expect(await scansOfReadAfterGrowth('grown_prepared', false)).toEqual({ seq: 1, idx: 0 });
      const each = await scansOfReadAfterGrowth('grown_each', true);
      expect(each.seq).toBe(0);
      expect(each.idx).toBeGreaterThan(0);
    } finally {
      await client.query('drop table if exists grown_prepared, grown_each');
      client.release();
    }
  });

  it('keeps inbox keys and outbox bodies as data, whatever they hold (they go as parameters)', async () => {
    const spec = Consumers.inventoryCommands;
    const hostile = ["k'); drop table app.effects; --", "back\\slash \\'", '$$ dollar $$ "quoted" \' \\x00'];
    const work = async (t: Parameters<Parameters<Transactor['run']>[0]>[0], m: InboundMessage) => {
      t.send({ subject: Subjects.InventoryRestocked, body: { sku: m.inboxKey, available: 1, reserved: 0, sold: 0 } });
    };
    const handler = tx.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, work])));
    const msg = (key: string): InboundMessage => ({
      subject: Subjects.InventoryRestock,
      body: {},
      messageId: key,
      inboxKey: key,
      attempt: 1,
      stream: 'INVENTORY',
      sequence: 1,
    });
    await handler(hostile.map(msg));
    expect(
      (await ds.query('select message_id from app.inbox order by message_id')).map((r: { message_id: string }) => r.message_id),
    ).toEqual([...hostile].sort());
    await waitFor(() => publisher.published.length === hostile.length);
    expect(publisher.published.map((p) => (p.body as { sku: string }).sku).sort()).toEqual([...hostile].sort());
    expect(await effects()).toEqual([]); // the table is still there
    // A NUL, which Postgres text cannot hold, is refused (dead-lettered at once), and nothing is written.
    await expect(handler([msg('nul\u0000key')])).rejects.toThrow(/NUL character/);
    expect(await ds.query(`select count(*)::int as n from app.inbox where message_id like 'nul%'`)).toEqual([{ n: 0 }]);
  });

  it('deletes published rows in the next transaction as it commits, and gives them back when that one rolls back', async () => {
    const metrics = new PipelineMetrics('db-test');
    // The relay would delete on its own only after a minute: here the transactions do it.
    const { own, t } = relayDeletingAfter(60_000, metrics);
    try {
      await t.run(async (x) => x.send(restocked('D1')));
      await waitFor(() => publisher.published.length === 1);
      expect(await outboxCount()).toBe(1);
      await t.run(async (x) => void (await x.query('insert into effects (id, note) values ($1, $2)', [randomUUID(), 'next'])));
      expect(await outboxCount()).toBe(0); // deleted by the next transaction's commit
      await t.run(async (x) => x.send(restocked('D2')));
      await waitFor(() => publisher.published.length === 2);
      // A transaction that fails as it commits (its outbox row's id is not a uuid) deletes nothing...
      await expect(t.run(async (x) => x.send({ ...restocked('bad'), id: 'not-a-uuid' }))).rejects.toThrow(/uuid/);
      expect(await outboxCount()).toBe(1);
      // ...and the id goes back: the next one deletes it.
      await t.run(async () => undefined);
      expect(await outboxCount()).toBe(0);
      expect(await relayRoundTrips(metrics)).toBe(0); // no statement of its own
    } finally {
      await own.stop();
    }
  });

  it('deletes a published row itself only when no transaction took it within deleteAfterMs of its wait', async () => {
    const metrics = new PipelineMetrics('db-test');
    const { own, t } = relayDeletingAfter(1_000, metrics);
    try {
      // A transaction every 25 ms for 1.5 s, each sending one message: a published row always waits for the next.
      const until = Date.now() + 1_500;
      for (let i = 0; Date.now() < until; i++) {
        await t.run(async (x) => x.send(restocked(`T${i}`)));
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(await relayRoundTrips(metrics)).toBe(0); // the transactions deleted every row, though the relay's wait passed
      // The last row: no transaction follows, so the relay deletes it, in one statement.
      await waitFor(async () => (await outboxCount()) === 0);
      expect(await relayRoundTrips(metrics)).toBe(1);
    } finally {
      await own.stop();
    }
  });

  it('refuses a handler that lacks work for a subject its consumer handles', () => {
    expect(() => tx.handler(Consumers.inventoryCommands, {})).toThrow(/inventory-commands handles inventory.cmd.reserve but has no work/);
  });

  it('the sweep publishes rows a crash left, oldest first; while publishing fails they stay, and go once it works', async () => {
    const left = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, id] of left.entries())
      await ds.query(
        `insert into app.outbox (id, subject, headers, payload, created_at) values ($1, $2, '{}', $3, now() - make_interval(secs => $4))`,
        [id, Subjects.InventoryRestocked, JSON.stringify(restocked(`L${i}`).body), 10 - i],
      );
    // The lag gauges' reading: three rows, the oldest ten seconds old.
    const backlog = await relay.backlog();
    expect(backlog.rows).toBe(3);
    expect(backlog.lagSeconds).toBeGreaterThanOrEqual(10);
    publisher.failing = true;
    relay.start();
    await new Promise((r) => setTimeout(r, 400)); // a few sweeps, every one failing
    expect(await outboxCount()).toBe(3);
    publisher.failing = false;
    await waitFor(async () => (await outboxCount()) === 0, 10_000);
    expect(publisher.published.map((p) => p.msgId)).toEqual(left);
    expect(await relay.backlog()).toEqual({ rows: 0, lagSeconds: 0 });
  });
});
