import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, jetstreamManager } from '@orderflow/messaging/nats';
import { Namespace } from '@orderflow/contracts';
import { deleteNamespaceStreams } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { adminDb, loadConfig } from '@orderflow/runtime';
import { orderflow } from './support/cli';
import { waitFor } from './support/stack';

const BIN = join(__dirname, '..', 'dist', 'apps', 'cli', 'src', 'main.js');

/**
 * The stack `npm start` runs (`orderflow services start`, a process of its own), operated one app at a time from
 * another terminal: `services stop APP` / `services start APP`, an app that dies restarted without the others.
 */
describe('orderflow services: one app at a time in the running stack', () => {
  const id = `sv${process.pid}${randomUUID().slice(0, 6)}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'orderflow-stack-'));
  const env = { ORDERFLOW_NAMESPACE: id, PGDATABASE: `orderflow_${id}`, ORDERFLOW_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  const config = loadConfig({ ...process.env, ...env });
  let stack: ChildProcess;
  let said = '';
  const run = (args: string[]) => orderflow(null, args, undefined, env);
  const instances = async () =>
    JSON.parse((await run(['services', 'list', '--json', '--wait', '500'])).stdout) as { name: string; pid: number }[];

  beforeAll(async () => {
    stack = spawn(process.execPath, [BIN, 'services', 'start'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    stack.stderr!.on('data', (d) => (said += d));
    await waitFor(() => /all 4 apps are ready/.test(said) || stack.exitCode !== null, 90_000, 100);
    if (stack.exitCode !== null) throw new Error(`services start exited ${stack.exitCode}: ${said}`);
  }, 120_000);

  afterAll(async () => {
    if (stack.exitCode === null) {
      stack.kill('SIGTERM');
      await new Promise((r) => stack.once('exit', r));
    }
    const nc = await connect({ servers: config.NATS_URL });
    await deleteNamespaceStreams(await jetstreamManager(nc), new Namespace(id));
    await nc.close();
    await dropDatabase(adminDb(config));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('stops payment and starts it again while the other apps keep running', async () => {
    const before = await instances();
    const stopped = await run(['services', 'stop', 'payment']);
    expect(stopped).toMatchObject({ code: 0, stderr: expect.stringMatching(/^orderflow: payment stopped \(pid \d+\)\n$/) });
    const status = await run(['services', 'status', '--json']);
    expect(status.code).toBe(1); // one app is down
    expect(JSON.parse(status.stdout)).toEqual([
      { app: 'order', up: true },
      { app: 'inventory', up: true },
      { app: 'payment', up: false },
      { app: 'notification', up: true },
    ]);
    expect(said).not.toMatch(/payment service exited/); // asked to stop: not restarted

    const again = await run(['services', 'stop', 'payment']);
    expect(again).toMatchObject({ code: 0, stderr: 'orderflow: payment was not running\n' });

    const started = await run(['services', 'start', 'payment']);
    expect(started).toMatchObject({ code: 0, stderr: expect.stringMatching(/^orderflow: payment started and ready \(pid \d+\)\n$/) });
    expect((await run(['services', 'status'])).code).toBe(0);
    // The others were never restarted.
    const after = await instances();
    for (const app of ['order', 'inventory', 'notification'])
      expect(after.find((i) => i.name === app)?.pid).toBe(before.find((i) => i.name === app)?.pid);
  }, 60_000);

  it('restarts an app that dies, and only that app', async () => {
    const before = await instances();
    const inventory = before.find((i) => i.name === 'inventory')!;
    process.kill(inventory.pid, 'SIGKILL');
    await waitFor(async () => (await instances()).some((i) => i.name === 'inventory' && i.pid !== inventory.pid), 30_000, 250);
    expect(said).toMatch(/the inventory service exited \(signal SIGKILL\); restarting it in 1 s, the others keep running/);
    const order = (await instances()).find((i) => i.name === 'order')!;
    expect(order.pid).toBe(before.find((i) => i.name === 'order')!.pid);
  }, 60_000);

  it('refuses an unknown app (exit 2) and a second stack in the same data directory (exit 1)', async () => {
    const bogus = await run(['services', 'stop', 'shipping']);
    expect(bogus).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/no app named "shipping": the apps are order, inventory, payment, notification/),
    });
    const second = await run(['services', 'start']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/a stack is already running under .*`orderflow services stop` stops it/);
  }, 60_000);

  it('an app whose metrics port is taken says which variable to change and exits 78, not to be restarted', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as AddressInfo).port;
    const app = spawn(process.execPath, [join(__dirname, '..', 'dist', 'apps', 'payment', 'src', 'main.js')], {
      env: { ...process.env, ...env, METRICS_PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    app.stderr!.on('data', (d) => (err += d));
    const code = await new Promise((r) => app.once('exit', r));
    holder.close();
    expect(code).toBe(78);
    expect(err).toMatch(new RegExp(`metrics port 127.0.0.1:${port} is in use .*set METRICS_PORT to a free port, or METRICS_PORT=0`));
  }, 60_000);

  it('services stop without an app stops the whole stack and returns once it has', async () => {
    const r = await run(['services', 'stop']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stopping the stack \(pid \d+\)…\norderflow: the stack stopped\n$/);
    expect(stack.exitCode ?? (await new Promise((res) => stack.once('exit', res)))).toBe(0);
    const after = await run(['services', 'stop', 'payment']);
    expect(after).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no stack is running under .*: `npm start` \(orderflow services start\) starts one/),
    });
  }, 60_000);
});
