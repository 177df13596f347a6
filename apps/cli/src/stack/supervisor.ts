import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createConnection, createServer, Server, Socket } from 'node:net';
import { withAppProcessEnv } from '@orderflow/runtime/app-process-env';
import type { AppName } from '@orderflow/contracts/permissions';
import { CliFailure } from '../cli.errors';
import { appEntry } from './apps';
import { stackSocketFile } from './state';

/** Exit code of an app that cannot start as configured (sysexits' EX_CONFIG): restarting would fail the same way. */
export const EXIT_CONFIG = 78;
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;
/** An app that ran this long before exiting is restarted after the first backoff again. */
const HEALTHY_AFTER_MS = 60_000;
const STOP_GRACE_MS = 10_000;

/** A request on the control socket (one JSON line) and its answer (one JSON line). */
export type ControlRequest = { op: 'start' | 'stop'; app: AppName } | { op: 'status' | 'shutdown' };
export type AppState = { app: AppName; state: 'starting' | 'running' | 'stopped' | 'restarting'; pid: number | null; restarts: number };
export type ControlReply = { ok: true; message: string; apps: AppState[]; pid: number } | { ok: false; error: string };

interface Slot {
  child: ChildProcess | null;
  /** Started and not stopped by an operator: an exit is restarted. */
  wanted: boolean;
  ready: boolean;
  restarts: number;
  backoffMs: number;
  timer?: NodeJS.Timeout;
}

/**
 * The apps of the stack `orderflow services start` runs, one child process each (a process supervisor in the manner of
 * systemd's `Restart=on-failure`): an app that exits without being asked to is reported and restarted after a backoff
 * (1 s doubling to 30 s), except one that exits with `EXIT_CONFIG` (a port in use, a bad variable), which stays down
 * with its reason. `orderflow services stop APP` / `start APP` reach it through a Unix socket (`stack.sock` in the data
 * directory, mode 0600: only this user) and get their answer once the app has stopped, or has said it is ready over
 * the IPC channel (`runServiceMain` sends `{ ready: true }` once its consumers pull).
 */
export class Supervisor {
  private readonly slots = new Map<AppName, Slot>();
  private server?: Server;
  private closing = false;

  constructor(
    apps: readonly AppName[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly say: (line: string) => void,
    /** Asked for by `services stop` without apps: stops the apps, then the rest of the stack. */
    private readonly shutdown: () => void,
  ) {
    for (const app of apps) this.slots.set(app, { child: null, wanted: false, ready: false, restarts: 0, backoffMs: FIRST_BACKOFF_MS });
  }

  /**
   * Listens on `<dataDir>/stack.sock`. @throws CliFailure when another stack already answers there (a socket left by
   * a stack that died is removed).
   */
  async listen(dataDir: string): Promise<void> {
    const file = stackSocketFile(dataDir);
    if (existsSync(file)) {
      await refuseSecondStack(dataDir);
      rmSync(file, { force: true });
    }
    this.server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => this.server!.once('error', reject).listen(file, resolve));
    chmodSync(file, 0o600);
  }

  /** Starts `app` (no-op if it runs) and resolves once it is ready. @throws Error with its exit when it exits first. */
  start(app: AppName): Promise<void> {
    const slot = this.slot(app);
    slot.wanted = true;
    slot.backoffMs = FIRST_BACKOFF_MS;
    clearTimeout(slot.timer);
    if (!slot.child) this.spawn(app, slot);
    return slot.ready ? Promise.resolve() : this.readyOrExit(app, slot.child!);
  }

  /** Stops `app` (SIGTERM, its graceful shutdown; SIGKILL after 10 s) and keeps it down. No-op when it is down. */
  async stop(app: AppName): Promise<void> {
    const slot = this.slot(app);
    slot.wanted = false;
    clearTimeout(slot.timer);
    const child = slot.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      child.once('exit', () => (clearTimeout(kill), resolve()));
      child.kill('SIGTERM');
    });
  }

  /** Stops every app and the control socket. */
  async close(): Promise<void> {
    this.closing = true;
    this.server?.close();
    await Promise.all([...this.slots.keys()].map((app) => this.stop(app)));
  }

  states(): AppState[] {
    return [...this.slots].map(([app, s]) => ({
      app,
      state: s.child ? (s.ready ? 'running' : 'starting') : s.wanted ? 'restarting' : 'stopped',
      pid: s.child?.pid ?? null,
      restarts: s.restarts,
    }));
  }

  private slot(app: AppName): Slot {
    const slot = this.slots.get(app);
    if (!slot) throw new CliFailure(`no app named ${app} in this stack`);
    return slot;
  }

  private spawn(app: AppName, slot: Slot): void {
    const child = spawn(process.execPath, [appEntry(app)], {
      env: withAppProcessEnv(this.env),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const started = Date.now();
    slot.child = child;
    slot.ready = false;
    child.on('message', (m: { ready?: boolean }) => {
      if (m?.ready) slot.ready = true;
    });
    child.once('exit', (code, signal) => {
      slot.child = null;
      slot.ready = false;
      if (!slot.wanted || this.closing) return;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (code === EXIT_CONFIG) {
        slot.wanted = false;
        this.say(
          `the ${app} service cannot start as configured (${how}; its reason is above); fix it, then \`orderflow services start ${app}\``,
        );
        return;
      }
      if (Date.now() - started >= HEALTHY_AFTER_MS) slot.backoffMs = FIRST_BACKOFF_MS;
      this.say(`the ${app} service exited (${how}); restarting it in ${slot.backoffMs / 1000} s, the others keep running`);
      slot.timer = setTimeout(() => {
        slot.restarts++;
        this.spawn(app, slot);
      }, slot.backoffMs);
      slot.backoffMs = Math.min(MAX_BACKOFF_MS, slot.backoffMs * 2);
    });
  }

  private readyOrExit(app: AppName, child: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { ready?: boolean }) => m?.ready && (done(), resolve());
      const onExit = (code: number | null, signal: string | null) => (
        done(),
        reject(
          new Error(`the ${app} service exited (${signal ? `signal ${signal}` : `code ${code}`}) before it was ready; its log says why`),
        )
      );
      const done = () => (child.off('message', onMessage), child.off('exit', onExit));
      child.on('message', onMessage).on('exit', onExit);
    });
  }

  private serve(socket: Socket): void {
    let buffer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      void this.answer(buffer.slice(0, end)).then((reply) => socket.end(JSON.stringify(reply) + '\n'));
    });
    socket.on('error', () => undefined);
  }

  private async answer(line: string): Promise<ControlReply> {
    try {
      const req = JSON.parse(line) as ControlRequest;
      const reply = (message: string) => ({ ok: true as const, message, apps: this.states(), pid: process.pid });
      if (req.op === 'status') return reply('status');
      if (req.op === 'shutdown') {
        this.say('stopping the stack (asked by `orderflow services stop`)');
        setImmediate(this.shutdown);
        return reply(`stopping the stack (pid ${process.pid})`);
      }
      if (req.op !== 'start' && req.op !== 'stop') return { ok: false, error: `unknown request ${String((req as { op: unknown }).op)}` };
      const before = this.states().find((s) => s.app === req.app);
      const was = before?.state;
      this.say(`${req.op === 'stop' ? 'stopping' : 'starting'} the ${req.app} service (asked by \`orderflow services ${req.op}\`)`);
      await (req.op === 'stop' ? this.stop(req.app) : this.start(req.app));
      const now = this.states().find((s) => s.app === req.app)!;
      const message =
        req.op === 'stop'
          ? was === 'stopped'
            ? `${req.app} was not running`
            : `${req.app} stopped (pid ${before?.pid ?? '-'})`
          : was === 'running'
            ? `${req.app} was already running (pid ${now.pid})`
            : `${req.app} started and ready (pid ${now.pid})`;
      return reply(message);
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }
}

/** @throws CliFailure when a stack already runs under `dataDir` (answers on its control socket). */
export async function refuseSecondStack(dataDir: string): Promise<void> {
  if (await answers(stackSocketFile(dataDir)))
    throw new CliFailure(`a stack is already running under ${dataDir} (\`orderflow services stop\` stops it)`);
}

/** Whether a stack answers on the socket `file`. */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(file)
      .once('connect', () => (socket.destroy(), resolve(true)))
      .once('error', () => resolve(false));
  });
}

/**
 * Sends `request` to the stack running under `dataDir` and returns its answer.
 * @throws CliFailure when no stack runs there, or when it refuses (with its reason).
 */
export async function askStack(dataDir: string, request: ControlRequest): Promise<Extract<ControlReply, { ok: true }>> {
  const file = stackSocketFile(dataDir);
  const reply = await new Promise<ControlReply>((resolve, reject) => {
    let data = '';
    const socket = createConnection(file)
      .setEncoding('utf8')
      .once('connect', () => socket.write(JSON.stringify(request) + '\n'))
      .on('data', (chunk: string) => (data += chunk))
      .once('end', () => {
        try {
          resolve(JSON.parse(data) as ControlReply);
        } catch {
          reject(new CliFailure(`the stack under ${dataDir} gave no answer`));
        }
      })
      .once('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
            ? new CliFailure(`no stack is running under ${dataDir}: \`npm start\` (orderflow services start) starts one`)
            : new CliFailure(`could not reach the stack under ${dataDir}: ${e.message}`),
        ),
      );
  });
  if (!reply.ok) throw new CliFailure(reply.error);
  return reply;
}
