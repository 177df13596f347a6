import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Subjects } from '@orderflow/contracts';
import { orderflow } from './support/cli';
import { Stack, waitFor } from './support/stack';

describe('orderflow CLI', () => {
  describe('against the running pipeline', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await Stack.start();
    });
    afterAll(async () => {
      await stack?.stop();
    });

    it('seeds stock and an account, publishes with --wait, and shows order, stock and account as JSON', async () => {
      const [sku, customer] = [`CLI-${randomUUID().slice(0, 6)}`, `cli-${randomUUID().slice(0, 6)}`];
      expect(JSON.parse((await orderflow(stack, ['stock', 'add', sku, '5', '--json'])).stdout)).toEqual({
        sku,
        available: 5,
        reserved: 0,
        sold: 0,
      });
      expect(JSON.parse((await orderflow(stack, ['accounts', 'deposit', customer, '10000', '--json'])).stdout)).toEqual({
        customerId: customer,
        balance: 10000,
        currency: 'USD',
      });

      const orderId = randomUUID();
      const published = await orderflow(stack, [
        'publish',
        'order.created',
        '--customer',
        customer,
        '--item',
        `${sku}:2:1500`,
        '--order-id',
        orderId,
        '--wait',
        '--json',
      ]);
      expect(published.code).toBe(0);
      expect(JSON.parse(published.stdout)).toEqual([{ orderId, status: 'CONFIRMED', reason: null, ms: expect.any(Number) }]);

      const shown = JSON.parse((await orderflow(stack, ['orders', 'show', orderId, '--json'])).stdout);
      expect(shown).toEqual({
        orderId,
        status: 'CONFIRMED',
        reason: null,
        deadLetter: null,
        saga: {
          id: expect.any(String),
          attempt: 1,
          status: 'COMPLETED',
          traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
          steps: ['reserveStock', 'chargePayment', 'createOrder', 'commitReservation'].map((name) => ({
            name,
            status: 'SUCCEEDED',
            startedAt: expect.any(String),
            finishedAt: expect.any(String),
            error: null,
          })),
        },
      });
      expect(JSON.parse((await orderflow(stack, ['stock', 'show', sku, '--json'])).stdout)).toEqual({
        sku,
        available: 3,
        reserved: 0,
        sold: 2,
      });
      expect(JSON.parse((await orderflow(stack, ['accounts', 'show', customer, '--json'])).stdout)).toEqual({
        customerId: customer,
        balance: 7000,
        currency: 'USD',
      });
    });

    it('publishes NDJSON from stdin and reports each outcome', async () => {
      const sku = `CLI-${randomUUID().slice(0, 6)}`;
      await stack.restock(sku, 1);
      const lines = [
        { customerId: 'nobody', currency: 'USD', items: [{ sku, quantity: 1, unitPrice: 1 }] },
        { customerId: 'nobody', currency: 'USD', items: [{ sku: 'NO-SUCH-SKU', quantity: 1, unitPrice: 1 }] },
      ]
        .map((o) => JSON.stringify(o))
        .join('\n');
      const r = await orderflow(stack, ['publish', 'order.created', '--file', '-', '--wait', '--json'], lines);
      expect(r.code).toBe(0);
      expect(
        JSON.parse(r.stdout)
          .map((o: any) => o.reason)
          .sort(),
      ).toEqual(['unknown_customer', 'unknown_sku']);
    });

    it('runs the demo against the running services: one of each outcome', async () => {
      const r = await orderflow(stack, ['demo', '--json']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/using the services already running/);
      const outcomes = JSON.parse(r.stdout);
      expect(outcomes.map((o: any) => o.reason ?? o.status)).toEqual([
        'CONFIRMED',
        'CONFIRMED',
        'out_of_stock',
        'unknown_sku',
        'insufficient_funds',
        'unknown_customer',
      ]);
    });

    it('migrates idempotently: a second db migrate applies nothing new', async () => {
      const first = await orderflow(stack, ['db', 'migrate', '--json']);
      const second = await orderflow(stack, ['db', 'migrate', '--json']);
      expect(first.code).toBe(0);
      expect(JSON.parse(second.stdout)).toEqual(JSON.parse(first.stdout));
      expect(JSON.parse(first.stdout).map((r: any) => r.schema)).toEqual(['orders', 'inventory', 'payments', 'notifications']);
    });

    it('prints every outcome of a large --count batch, even past a pipe buffer (64 KiB)', async () => {
      const [sku, customer] = [`CLI-${randomUUID().slice(0, 6)}`, `cli-${randomUUID().slice(0, 6)}`];
      await stack.restock(sku, 2000);
      await stack.deposit(customer, 1_000_000);
      const r = await orderflow(stack, [
        'publish',
        'order.created',
        '--count',
        '800',
        '--customer',
        customer,
        '--item',
        `${sku}:1:1`,
        '--wait',
        '--json',
      ]);
      expect(r.code).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(65536);
      const outcomes = JSON.parse(r.stdout);
      expect(outcomes).toHaveLength(800);
      expect(outcomes.every((o: any) => o.status === 'CONFIRMED')).toBe(true);
    });

    it('reports every service up', async () => {
      const r = await orderflow(stack, ['services', 'status', '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(['order', 'inventory', 'payment', 'notification'].map((app) => ({ app, up: true })));
    });

    it('discovers the apps through the NATS service API: $SRV.PING from a plain client, and services lists each instance with its endpoints', async () => {
      // Any NATS client (`nats micro ls` too) finds them: the service API's PING, answered by each app of our namespace.
      const pings = await stack.nc.requestMany('$SRV.PING', Buffer.from(''), { maxWait: 1000, strategy: 'timer' });
      const names: string[] = [];
      for await (const m of pings) {
        const body = JSON.parse(m.string());
        if (body.metadata?.namespace === stack.ns.prefix) names.push(body.name);
      }
      expect(names.sort()).toEqual(['inventory', 'notification', 'order', 'payment']);

      await stack.query(Subjects.QueryStock, { sku: 'NO-SUCH-SKU' });
      const r = await orderflow(stack, ['services', '--json']);
      expect(r.code).toBe(0);
      const instances = JSON.parse(r.stdout);
      expect(instances.map((i: any) => i.name)).toEqual(['inventory', 'notification', 'order', 'payment']);
      expect(instances[0]).toMatchObject({
        id: expect.any(String),
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        pid: process.pid,
        started: expect.any(String),
      });
      const stock = instances[0].endpoints.find((e: any) => e.subject === Subjects.QueryStock);
      expect(stock).toMatchObject({
        name: 'stock',
        requests: expect.any(Number),
        errors: expect.any(Number),
        averageMs: expect.any(Number),
      });
      expect(stock.errors).toBeGreaterThanOrEqual(1);
    });

    it('answers a query error with the service API error headers as well as the JSON envelope', async () => {
      const m = await stack.nc.request(stack.ns.subject(Subjects.QueryStock), Buffer.from(JSON.stringify({ sku: 'NO-SUCH-SKU' })), {
        timeout: 2000,
      });
      expect(m.headers?.get('Nats-Service-Error-Code')).toBe('404');
      expect(m.headers?.get('Nats-Service-Error')).toMatch(/unknown SKU NO-SUCH-SKU/);
      expect(JSON.parse(m.string())).toEqual({ ok: false, error: { code: 'not_found', message: 'unknown SKU NO-SUCH-SKU' } });
    });

    it('reports a command the service dead-letters with its reason at once, not as "no answer"', async () => {
      const customer = `cli-${randomUUID().slice(0, 6)}`;
      await stack.deposit(customer, 100);
      const r = await orderflow(stack, ['accounts', 'deposit', customer, '100', '--currency', 'EUR']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^orderflow: payment.cmd.deposit was rejected by the payment service: account ${customer} is in USD, not EUR; deposit refused \\(dead letter \\d+: \`orderflow dlq show \\d+\`\\)\n$`,
        ),
      );
      expect(r.ms).toBeLessThan(5000);
    });

    it('reports a reused order id as DUPLICATE and a malformed order as REJECTED, and orders show names the dead letter', async () => {
      const [sku, customer] = [`CLI-${randomUUID().slice(0, 6)}`, `cli-${randomUUID().slice(0, 6)}`];
      await stack.restock(sku, 5);
      await stack.deposit(customer, 10_000);
      const orderId = randomUUID();
      expect(
        (
          await orderflow(stack, [
            'publish',
            'order.created',
            '--customer',
            customer,
            '--item',
            `${sku}:1:100`,
            '--order-id',
            orderId,
            '--wait',
          ])
        ).code,
      ).toBe(0);

      const reused = await orderflow(stack, [
        'publish',
        'order.created',
        '--customer',
        'someone-else',
        '--item',
        `${sku}:1:100`,
        '--order-id',
        orderId,
        '--wait',
        '--json',
      ]);
      expect(reused.code).toBe(1);
      expect(JSON.parse(reused.stdout)).toEqual([
        { orderId, status: 'DUPLICATE', reason: `order ${orderId} already exists with a different body`, ms: expect.any(Number) },
      ]);
      expect(reused.stderr).toMatch(/1 order\(s\): 1 DUPLICATE/);

      // A body the CLI would refuse (lower-case currency) sent by another client: dead-lettered, then shown as REJECTED.
      const rejected = { orderId: randomUUID(), customerId: customer, currency: 'usd', items: [{ sku, quantity: 1, unitPrice: 100 }] };
      await stack.publish('order.created', rejected);
      let shown: any;
      await (async () => {
        for (
          let i = 0;
          i < 100 && !(shown = JSON.parse((await orderflow(stack, ['orders', 'show', rejected.orderId, '--json'])).stdout || 'null'));
          i++
        )
          await new Promise((r) => setTimeout(r, 100));
      })();
      expect(shown).toEqual({
        orderId: rejected.orderId,
        status: 'REJECTED',
        reason: expect.stringMatching(/ISO 4217/),
        saga: null,
        deadLetter: { seq: expect.any(Number), error: expect.stringMatching(/ISO 4217/), state: 'new' },
      });
      const text = await orderflow(stack, ['orders', 'show', rejected.orderId]);
      expect(text.stdout).toMatch(new RegExp(`REJECTED .* see \`orderflow dlq show ${shown.deadLetter.seq}\``));
    });

    it('Ctrl-C during --wait prints what was published with the statuses known so far, and exits 130', async () => {
      const [sku, customer] = [`CLI-${randomUUID().slice(0, 6)}`, `cli-${randomUUID().slice(0, 6)}`];
      await stack.restock(sku, 5000);
      await stack.deposit(customer, 1_000_000);
      const child = spawn(
        process.execPath,
        [
          join(__dirname, '..', 'dist', 'apps', 'cli', 'src', 'main.js'),
          'publish',
          'order.created',
          '--count',
          '3000',
          '--customer',
          customer,
          '--item',
          `${sku}:1:1`,
          '--wait',
          '--json',
        ],
        {
          env: { ...process.env, ORDERFLOW_NAMESPACE: stack.config.ORDERFLOW_NAMESPACE },
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      // Interrupt once it is publishing (its Ctrl-C handler is installed by then), however long it took to start.
      const before = (await stack.jsm.streams.info(stack.ns.stream('ORDER'))).state.messages;
      await waitFor(async () => (await stack.jsm.streams.info(stack.ns.stream('ORDER'))).state.messages > before);
      child.kill('SIGINT');
      const code = await new Promise((r) => child.once('exit', r));
      expect(code).toBe(130);
      const outcomes = JSON.parse(stdout);
      const published = Number(/interrupted: (\d+) of 3000 order\(s\) published/.exec(stderr)![1]);
      expect(outcomes).toHaveLength(published);
      expect(published).toBeGreaterThan(0);
      expect(new Set(outcomes.map((o: any) => o.status))).toEqual(expect.any(Set));
      expect(outcomes.every((o: any) => ['CONFIRMED', 'PENDING'].includes(o.status))).toBe(true);
    });

    it('says an unknown order is not there, in one line, exit 1', async () => {
      const r = await orderflow(stack, ['orders', 'show', randomUUID()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^orderflow: no order [0-9a-f-]{36}\n$/);
    });
  });

  describe('no apps running', () => {
    it('services status says every app is down and services lists none, exit 1 (nothing answers $SRV.PING)', async () => {
      const env = { ORDERFLOW_NAMESPACE: `none${randomUUID().slice(0, 8)}` };
      const status = await orderflow(null, ['services', 'status', '--json'], undefined, env);
      expect(status.code).toBe(1);
      expect(JSON.parse(status.stdout)).toEqual(['order', 'inventory', 'payment', 'notification'].map((app) => ({ app, up: false })));
      const list = await orderflow(null, ['services', '--json', '--wait', '300'], undefined, env);
      expect(list.code).toBe(1);
      expect(JSON.parse(list.stdout)).toEqual([]);
      expect(list.stderr).toMatch(/no running instance of order, inventory, payment, notification/);
    });
  });

  describe('start-up', () => {
    const BIN = join(__dirname, '..', 'dist', 'apps', 'cli', 'src', 'main.js');
    /** The packages and app folders `orderflow ARGS` loaded (its require cache when it finished). */
    const loadedBy = (args: string[]): Promise<string[]> =>
      new Promise((resolve, reject) => {
        const script = `require(${JSON.stringify(BIN)}).main(['node', 'orderflow', ...${JSON.stringify(args)}]).then(() => process.stderr.write('\\n@@' + JSON.stringify(Object.keys(require.cache))))`;
        const child = spawn(process.execPath, ['-e', script], {
          env: { ...process.env, ORDERFLOW_NAMESPACE: `none${randomUUID().slice(0, 8)}` },
        });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        child.stdout.resume();
        child.on('error', reject).on('exit', () => {
          const files = JSON.parse(err.slice(err.indexOf('@@') + 2)) as string[];
          resolve([
            ...new Set(
              files.map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f)?.[1] ?? /dist\/((?:apps|libs)\/.+)\.js$/.exec(f)?.[1] ?? f),
            ),
          ]);
        });
      });

    it('--help loads no command: only commander and the CLI itself', async () => {
      const loaded = await loadedBy(['--help']);
      expect(loaded).toContain('commander');
      expect(loaded.filter((m) => /nats|class-validator|@nestjs|typeorm|commands\/|^apps\/(?!cli)/.test(m))).toEqual([]);
    });

    it.each([[['saga', 'list']], [['dlq', 'list']], [['services', 'status']], [['top', '--once']], [['saga', '--help']]])(
      'orderflow %j loads neither Nest, TypeORM, pg nor an app module',
      async (args) => {
        const loaded = await loadedBy(args);
        expect(loaded).toContain('@nats-io/transport-node');
        expect(
          loaded.filter((m) => /^@nestjs|^typeorm$|^pg$|^apps\/(order|inventory|payment|notification)\/.*(module|controller)$/.test(m)),
        ).toEqual([]);
      },
    );
  });

  describe('bad input', () => {
    it.each([
      [['publish', 'order.created', '--customer', 'a', '--item', 'BOOK:two:100'], /--item "BOOK:two:100" must be SKU:QTY:UNIT_PRICE/],
      [['publish', 'order.created', '--item', 'BOOK:1:100'], /--customer is required/],
      [['publish', 'order.shipped', '--customer', 'a', '--item', 'BOOK:1:100'], /can only publish order.created/],
      [['publish', 'order.created', '--customer', 'a', '--item', 'BOOK:0:100'], /quantity must not be less than 1/],
      [['publish', 'order.created', '--file', '/no/such/file'], /cannot read \/no\/such\/file: ENOENT/],
      [['stock', 'add', 'BOOK', 'lots'], /QTY must be a whole number/],
      [['stock', 'add', '', '5'], /inventory.cmd.restock: invalid RestockSku: sku should not be empty/],
      [['accounts', 'deposit', '', '5'], /payment.cmd.deposit: invalid DepositFunds: customerId should not be empty/],
      [
        ['publish', 'order.created', '--customer', 'a', '--item', 'GOLD:1000000:9007199254740'],
        /items total .* must not exceed 9007199254740991 minor units/,
      ],
      [['saga', 'retry', '--why', 'x'], /give saga or order ids, or --status CANCELLED/],
      [['saga', 'resume', '--status', 'CANCELLED', '--why', 'x'], /saga resume takes --status FAILED/],
      [['saga', 'list', '--since', 'yesterday'], /--since must be a duration/],
      [['dlq', 'replay', '1'], /required option '--why <text>' not specified/],
      [['dlq', 'replay', '--why', 'x'], /give the SEQs of the entries, or --all/],
      [['dlq', 'purge', '1', '--why', 'x', '--rate', '2'], /unknown option '--rate'/],
      [['accounts', 'deposit', 'alice', '10', '--currency', 'dollars'], /--currency must be an ISO 4217 code/],
      [['orders', 'show', 'not-a-uuid'], /order id must be a UUID/],
      [['orders', 'show'], /^orderflow: missing required argument 'orderId'/],
      [['stock', 'show', 'BOOK', '--colour'], /^orderflow: unknown option '--colour'/],
      [['bogus'], /^orderflow: unknown command 'bogus'/],
    ])('%j → one line, exit 2', async (args, message) => {
      const r = await orderflow(null, args as string[]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });

    it('prints its version', async () => {
      const r = await orderflow(null, ['--version']);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version);
    });

    it('names the NATS URL when it is unreachable, in one line, exit 1', async () => {
      const r = await orderflow(null, ['--nats-url', 'nats://127.0.0.1:1', 'stock', 'show', 'BOOK']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^orderflow: NATS at nats:\/\/127.0.0.1:1 is unreachable/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  });
});
