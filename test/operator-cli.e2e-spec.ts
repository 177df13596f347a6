import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subjects } from '@orderflow/contracts';
import { orderflow, orderflowJson } from './support/cli';
import { order, Stack, waitFor } from './support/stack';

const BIN = join(__dirname, '..', 'dist', 'apps', 'cli', 'src', 'main.js');

/**
 * The operator's CLI as a person drives it (run as a process: exit code and output): dead-letter states worked out
 * from the sagas, whole-body replacement, the audit, exit codes, a large dead letter on a terminal, and two operators
 * acting on the same entry at once.
 */
describe('the operator CLI', () => {
  let stack: Stack;
  const uniq = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;
  const file = (content: string) => {
    const path = join(tmpdir(), `of-${randomUUID()}.json`);
    writeFileSync(path, content);
    return path;
  };
  const entriesOf = async (orderId: string) => orderflowJson(stack, ['dlq', 'list', '--order', orderId]);
  const depositLetter = async (customer: string) =>
    (await orderflowJson(stack, ['dlq', 'list', '--subject', 'payment.cmd.deposit'])).find((e: any) => e.error.includes(customer));
  const balance = async (customer: string) =>
    Number((await stack.db.query('select balance from payments.accounts where customer_id = $1', [customer])).rows[0].balance);

  beforeAll(async () => {
    // Bodies up to 1 MiB (NATS's max_payload), for the large dead letter.
    stack = await Stack.start({ STREAM_MAX_MSG_SIZE: String(1024 * 1024) });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('--body replaces a body no replay could fix; advice never offers what would be refused; dlq history reads the audit', async () => {
    const customer = uniq('eur');
    await stack.deposit(customer, 500, 'USD');
    await stack.publish(Subjects.PaymentDeposit, { customerId: customer, amount: 250, currency: 'EUR' });
    await waitFor(async () => !!(await depositLetter(customer)));
    const letter = await depositLetter(customer);
    const shown = await orderflowJson(stack, ['dlq', 'show', String(letter.seq)]);
    expect(shown.advice).toMatch(
      /refused it for good .*in USD, not EUR.*would refuse it again as it is: fix it with `orderflow dlq replay \d+ --patch/,
    );

    // A plain replay would be refused again: the CLI says so, sends nothing, exit 1.
    const plain = await orderflow(stack, ['dlq', 'replay', String(letter.seq), '--why', 'try again']);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(/invalid/);
    expect(await balance(customer)).toBe(500);

    // A body that fails validation is refused before anything is sent.
    const bad = await orderflowJson(stack, ['dlq', 'replay', String(letter.seq), '--body', file('{"customerId":"x"}'), '--why', 'w'], 1);
    expect(bad.results[0]).toMatchObject({
      action: 'invalid',
      reason: 'the new body fails validation: invalid DepositFunds: amount is required; currency is required',
    });

    const body = { customerId: customer, amount: 250, currency: 'USD' };
    const replaced = await orderflowJson(stack, [
      'dlq',
      'replay',
      String(letter.seq),
      '--body',
      file(JSON.stringify(body)),
      '--why',
      'in USD',
    ]);
    expect(replaced.results[0]).toMatchObject({
      action: 'replayed',
      diff: expect.stringMatching(/-\s+"currency": "EUR"\n\+\s+"currency": "USD"/),
    });
    await waitFor(async () => (await balance(customer)) === 750);

    const history = await orderflowJson(stack, ['dlq', 'history', String(letter.seq)]);
    expect(history).toEqual([
      {
        at: expect.any(String),
        operator: 'ops-test',
        signature: 'verified',
        action: 'replay',
        seq: letter.seq,
        why: 'in USD',
        change: { body: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: JSON.stringify(body).length } },
        newMsgId: replaced.results[0].newMsgId,
        failedAgainAs: null,
      },
    ]);
    const listed = await depositLetter(customer);
    expect(listed).toMatchObject({ state: 'replayed', timesReplayed: 1 });
    const text = await orderflow(stack, ['dlq', 'history', String(letter.seq)]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(
        `^\\S+Z  replay of dead letter ${letter.seq} by ops-test \\(verified\\)\\n    why: in USD\\n    new body: sha256 [0-9a-f]{64} \\(\\d+ bytes\\)\\n    new message [0-9a-f-]{36}\\n$`,
      ),
    );
  });

  it('a dead letter is resolved once its order ends after it, however that came about; stats leave resolved ones out', async () => {
    const [sku, customer] = [uniq('RES'), uniq('res')];
    await stack.restock(sku, 5);
    await stack.deposit(customer, 10_000);
    const poison = { ...order(customer, [{ sku, quantity: 1, unitPrice: 100 }]), currency: 'usd' };
    await stack.publish(Subjects.OrderCreated, poison);
    await waitFor(async () => (await entriesOf(poison.orderId)).length === 1);
    expect((await entriesOf(poison.orderId))[0].state).toBe('new');
    const fp = (await entriesOf(poison.orderId))[0].fingerprint;
    expect((await orderflowJson(stack, ['dlq', 'stats'])).some((g: any) => g.fingerprint === fp)).toBe(true);

    // Not through the DLQ at all: the order is published again, fixed, under the same id.
    await stack.publish(Subjects.OrderCreated, { ...poison, currency: 'USD' });
    expect(await stack.outcome(poison.orderId)).toEqual({ status: 'CONFIRMED', reason: null });
    await waitFor(async () => (await entriesOf(poison.orderId))[0].state === 'resolved');
    const shown = await orderflowJson(stack, ['dlq', 'show', String((await entriesOf(poison.orderId))[0].seq)]);
    expect(shown.advice).toMatch(/^resolved: saga attempt 1 of order .* ended COMPLETED/);
    expect((await orderflowJson(stack, ['dlq', 'stats'])).some((g: any) => g.fingerprint === fp)).toBe(false);
    const all = (await orderflowJson(stack, ['dlq', 'stats', '--all'])).find((g: any) => g.fingerprint === fp);
    expect(all.states.resolved).toBeGreaterThanOrEqual(1);

    // Repeated filters are OR-ed.
    const both = await orderflowJson(stack, ['dlq', 'list', '--state', 'resolved', '--state', 'replayed']);
    expect(new Set(both.map((e: any) => e.state))).toEqual(new Set(['resolved', 'replayed']));
  });

  it.each([
    [['dlq', 'replay', '999999', '--why', 'x'], 1, /no dead letter 999999/],
    [['dlq', 'show', '999999'], 1, /no dead letter 999999/],
    [['saga', 'list', '--step', 'bogus'], 2, /--step must be one of reserveStock, releaseStock, chargePayment/],
    [['saga', 'list', '--status', 'DONE'], 2, /--status must be one of RUNNING/],
    [['saga', 'list', '--reason', 'tired'], 2, /--reason must be one of .*deadline_exceeded/],
    [['dlq', 'list', '--state', 'gone'], 2, /--state must be one of new/],
    [['saga', 'list', '--reason', 'out_of_stock', '--reason', 'deadline_exceeded'], 2, /--reason takes one value; it was given twice/],
    [['dlq', 'list', '--since', '1h', '--since', '2h'], 2, /--since takes one value/],
    [['dlq', 'replay', '1', '--patch', '/dev/null', '--body', '/dev/null', '--why', 'x'], 2, /give --patch or --body, not both/],
  ])('orderflow %j exits %i', async (args, code, message) => {
    const r = await orderflow(stack, args as string[]);
    expect(r.code).toBe(code);
    expect(r.stdout + r.stderr).toMatch(message);
  });

  it.each([[['dlq', 'list']], [['saga', 'list']], [['orders', 'show', randomUUID()]]])(
    'orderflow %j in a namespace with no streams is bad usage (exit 2), not an empty answer',
    async (args) => {
      const r = await orderflow(null, args, undefined, { ORDERFLOW_NAMESPACE: 'misspelt' });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/namespace "misspelt" has no streams .*is --namespace \(or ORDERFLOW_NAMESPACE\) right/);
    },
  );

  it('two operators replaying the same dead letter at the same instant: one replays, the other is told who did', async () => {
    for (let round = 0; round < 3; round++) {
      const customer = uniq('race');
      await stack.deposit(customer, 100, 'USD');
      await stack.publish(Subjects.PaymentDeposit, { customerId: customer, amount: 7, currency: 'EUR' });
      await waitFor(async () => !!(await depositLetter(customer)));
      const { seq } = await depositLetter(customer);
      const body = file(JSON.stringify({ customerId: customer, amount: 7, currency: 'USD' }));
      const [a, b] = await Promise.all(
        ['alice', 'bob'].map(() => orderflow(stack, ['dlq', 'replay', String(seq), '--body', body, '--why', 'race', '--json'])),
      );
      const results = [a, b].map((r) => ({ code: r.code, result: JSON.parse(r.stdout).results[0] }));
      expect(results.filter((r) => r.result.action === 'replayed')).toHaveLength(1);
      const loser = results.find((r) => r.result.action !== 'replayed')!;
      expect(loser.code).toBe(1);
      expect(loser.result.reason).toMatch(/replayed by ops-test at .* \(as [0-9a-f-]{36}\)|replayed by ops-test at /);
      await waitFor(async () => (await balance(customer)) === 107);
      await new Promise((r) => setTimeout(r, 300));
      expect(await balance(customer)).toBe(107);
      expect(await orderflowJson(stack, ['dlq', 'history', String(seq)])).toHaveLength(1);
    }
  });

  it('large dead letters on a terminal: a dry run shows the diff cut to the screen, or why none applies, within seconds', async () => {
    const customer = uniq('big');
    const bigOrder = (lines: number) => ({
      ...order(
        customer,
        Array.from({ length: lines }, (_, i) => ({ sku: `BIG-${String(i).padStart(6, '0')}`, quantity: 1, unitPrice: 1 })),
      ),
      currency: 'usd',
    });
    // 900 KB: the dead letter keeps its first 512 KiB (and its size): no patch can apply, a whole new body can.
    const huge = bigOrder(19_000);
    expect(JSON.stringify(huge).length).toBeGreaterThan(900_000);
    // 480 KB: kept whole, patched.
    const large = bigOrder(10_000);
    await stack.publish(Subjects.OrderCreated, huge);
    await stack.publish(Subjects.OrderCreated, large);
    await waitFor(async () => (await entriesOf(huge.orderId)).length === 1 && (await entriesOf(large.orderId)).length === 1, 30_000);
    const [hugeSeq, largeSeq] = [(await entriesOf(huge.orderId))[0].seq, (await entriesOf(large.orderId))[0].seq];
    const patch = file('{"currency":"USD"}');

    let started = Date.now();
    let out = await onTerminal([BIN, 'dlq', 'replay', String(largeSeq), '--patch', patch, '--why', 'big', '--dry-run']);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(out).toMatch(/│ invalid /); // too many lines even with the currency fixed: nothing would be sent
    expect(out).toMatch(new RegExp(`diff of ${largeSeq}:`));
    expect(out).toMatch(/-\s+"currency": "usd"/);
    expect(out).toMatch(/\+\s+"currency": "USD"/);
    // eslint-disable-next-line no-control-regex -- colour codes take no room on the screen
    for (const line of out.split(/\r?\n/)) expect([...line.replace(/\x1b\[[0-9;]*m/g, '')].length).toBeLessThanOrEqual(80);

    started = Date.now();
    out = await onTerminal([BIN, 'dlq', 'replay', String(hugeSeq), '--patch', patch, '--why', 'big', '--dry-run']);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(out).toMatch(/│ invalid /);
    const json = await orderflowJson(stack, ['dlq', 'replay', String(hugeSeq), '--patch', patch, '--why', 'big', '--dry-run'], 1);
    expect(json.results[0].reason).toMatch(
      /keeps only the head of its \d+-byte body .*replace the body whole: `orderflow dlq replay \d+ --body/,
    );
  }, 30_000);

  it('following work: publish --wait names the step a PENDING saga waits on; saga show its next deadline; saga retry --wait its outcome', async () => {
    const [sku, customer] = [uniq('WAIT'), uniq('wai')];
    await stack.restock(sku, 1);
    await stack.deposit(customer, 10_000);
    await stack.stopApp('payment');
    try {
      const o = order(customer, [{ sku, quantity: 1, unitPrice: 100 }]);
      const r = await orderflow(
        stack,
        ['publish', 'order.created', '--file', '-', '--wait', '--timeout', '1500', '--json'],
        JSON.stringify(o),
      );
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toEqual([
        expect.objectContaining({
          orderId: o.orderId,
          status: 'PENDING',
          reason: expect.stringMatching(/^at chargePayment since \d\d:\d\d:\d\d \(RUNNING\)$/),
          waiting: expect.objectContaining({ attempt: 1, status: 'RUNNING', step: 'chargePayment' }),
        }),
      ]);
      expect(r.stderr).toMatch(/PENDING by where they wait: 1 at chargePayment/);
      const show = await orderflow(stack, ['saga', 'show', o.orderId]);
      expect(show.stdout).toMatch(/next deadline: \d{4}-\d\d-\d\dT[\d:.]+Z \(in \d+ s\)/);
    } finally {
      await stack.startApp('payment');
    }

    // Out of stock, restocked, retried and waited for.
    const o = order(customer, [{ sku, quantity: 5, unitPrice: 100 }]);
    await stack.publish(Subjects.OrderCreated, o);
    expect(await stack.outcome(o.orderId)).toEqual({ status: 'CANCELLED', reason: 'out_of_stock' });
    expect((await orderflow(stack, ['saga', 'show', o.orderId])).stdout).toMatch(/next deadline: none/);
    await stack.restock(sku, 10);
    const retried = await orderflowJson(stack, ['saga', 'retry', o.orderId, '--why', 'restocked', '--wait', '15000']);
    expect(retried.results[0]).toMatchObject({ action: 'retried', outcome: { attempt: 2, status: 'COMPLETED' } });
  });

  it('two operators retrying the same order at the same instant start one new attempt', async () => {
    // The second shell's CLI is slow to start (as on a busy machine): by the time it looks, the first one's new attempt
    // has already been CANCELLED again, and is not what its operator saw.
    const slow = join(tmpdir(), `slow-start-${randomUUID()}.js`);
    writeFileSync(slow, 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);\n');
    for (let round = 0; round < 3; round++) {
      const [sku, customer] = [uniq('TWO'), uniq('two')];
      await stack.restock(sku, 1);
      await stack.deposit(customer, 10_000);
      // Out of stock every time: each new attempt is CANCELLED again at once, as fast as a retry can be.
      const o = order(customer, [{ sku, quantity: 5, unitPrice: 100 }]);
      await stack.publish(Subjects.OrderCreated, o);
      expect((await stack.outcome(o.orderId)).reason).toBe('out_of_stock');
      const runs = await Promise.all(
        ([{}, { NODE_OPTIONS: `--require ${slow}` }] as Record<string, string>[]).map((env) =>
          orderflow(stack, ['saga', 'retry', o.orderId, '--why', 'both', '--json'], undefined, env),
        ),
      );
      const actions = runs.map((r) => JSON.parse(r.stdout).results[0]);
      expect(actions.filter((a) => a.action === 'retried')).toHaveLength(1);
      const loser = runs[actions.findIndex((a) => a.action !== 'retried')];
      expect(loser.code).toBe(1);
      expect(JSON.parse(loser.stdout).results[0]).toMatchObject({
        skippedBecause: 'concurrent',
        reason: expect.stringMatching(/^attempt 2 was started by ops-test's retry at .*, after this command was given/),
      });
      await waitFor(async () => (await stack.sagas(o.orderId)).every((s) => s.status === 'CANCELLED'));
      expect(await stack.sagas(o.orderId)).toHaveLength(2);
    }
  });

  /** Runs the CLI on a pseudo-terminal of 80×24 (util-linux `script`), in the stack's namespace; its output. */
  function onTerminal(args: string[]): Promise<string> {
    const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const env = { ...process.env, ORDERFLOW_NAMESPACE: stack.config.ORDERFLOW_NAMESPACE, PGDATABASE: stack.config.PGDATABASE };
    return new Promise((resolve, reject) =>
      execFile('script', ['-qec', `stty cols 80 rows 24; ${quoted}`, '/dev/null'], { env, maxBuffer: 64 << 20 }, (err, stdout) =>
        err && typeof err.code !== 'number' ? reject(err) : resolve(stdout),
      ),
    );
  }
});
