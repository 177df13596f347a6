import { Stack, waitFor } from './support/stack';

/** Bounded storage: stream limits as configured, inbox rows pruned after the retention. */
describe('bounded storage', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({
      STREAM_MAX_AGE: '12h',
      DLQ_MAX_AGE: '2d',
      DLQ_MAX_BYTES: '10485760',
      INBOX_RETENTION: '2d',
      INBOX_PRUNE_INTERVAL_MS: '200',
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('gives the work streams and the dead-letter stream their max age (and the DLQ its max bytes); the OPS audit log is kept', async () => {
    const info = async (name: Parameters<Stack['ns']['stream']>[0]) => (await stack.jsm.streams.info(stack.ns.stream(name))).config;
    for (const s of ['ORDER', 'INVENTORY', 'PAYMENT', 'NOTIFICATION'] as const) expect((await info(s)).max_age).toBe(12 * 3600 * 1e9);
    expect(await info('DLQ')).toMatchObject({ max_age: 2 * 86400 * 1e9, max_bytes: 10485760 });
    expect((await info('OPS')).max_age).toBe(0);
  });

  it('prunes inbox rows older than INBOX_RETENTION in every schema, and keeps the others', async () => {
    for (const schema of ['orders', 'inventory', 'payments', 'notifications']) {
      await stack.db.query(
        `insert into ${schema}.inbox (consumer, message_id, received_at)
           select 'test', 'old-' || g, now() - interval '3 days' from generate_series(1, 2500) g
           union all select 'test', 'recent-' || g, now() - interval '1 day' from generate_series(1, 10) g`,
      );
    }
    for (const schema of ['orders', 'inventory', 'payments', 'notifications']) {
      await waitFor(
        async () =>
          (await stack.db.query(`select count(*)::int as n from ${schema}.inbox where consumer = 'test' and message_id like 'old-%'`))
            .rows[0].n === 0,
      );
      expect(
        (await stack.db.query(`select count(*)::int as n from ${schema}.inbox where consumer = 'test' and message_id like 'recent-%'`))
          .rows[0].n,
      ).toBe(10);
    }
  });
});
