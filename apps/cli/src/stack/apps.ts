import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AppName } from '@orderflow/contracts/permissions';
import { withAppProcessEnv } from '@orderflow/runtime/app-process-env';
import { CliFailure } from '../cli.errors';
import { PipelineClient } from '../client';

/** The compiled entry point of a service app (`dist/apps/<app>/src/main.js`). */
export function appEntry(app: AppName): string {
  const file = resolve(__dirname, '..', '..', '..', app, 'src', 'main.js');
  if (!existsSync(file)) throw new CliFailure(`${file} is missing; run \`npm run build\` first`);
  return file;
}

/** The service apps running as child processes of this one: one instance of each, or more (`start`'s `apps`). */
export class AppProcesses {
  /** By instance name: the app's name for its first instance, `<app>-2`, `<app>-3` … for the others. */
  private readonly children = new Map<string, { app: AppName; child: ChildProcess }>();
  private stopping = false;

  /**
   * Starts an instance of each app in `apps` with `env` (an app listed twice runs twice: give such instances
   * `METRICS_PORT=0`). With `logDir`, an instance's logs go to `<logDir>/<instance>.log` instead of this terminal.
   * `onExit` is told when an instance exits while we were not stopping it.
   */
  start(apps: AppName[], env: NodeJS.ProcessEnv, onExit: (instance: string, code: number | null) => void, logDir?: string): void {
    for (const app of apps) {
      let instance: string = app;
      for (let n = 2; this.children.has(instance); n++) instance = `${app}-${n}`;
      const out = logDir ? openSync(join(logDir, `${instance}.log`), 'a') : 'inherit';
      const child = spawn(process.execPath, [appEntry(app)], { env: withAppProcessEnv(env), stdio: ['ignore', out, out] });
      this.children.set(instance, { app, child });
      child.once('exit', (code) => {
        this.children.delete(instance);
        if (!this.stopping) onExit(instance, code);
      });
    }
  }

  /**
   * Starts `apps` (as `start`) and waits until as many instances of each answer their ping over NATS.
   * @throws CliFailure when one exits first or they do not answer within `timeoutMs` (naming the log file, if any).
   */
  async startAndWait(apps: AppName[], env: NodeJS.ProcessEnv, client: PipelineClient, logDir?: string, timeoutMs = 60_000): Promise<void> {
    const logOf = (instance: string) => (logDir ? `; see ${join(logDir, instance + '.log')}` : '');
    let exited: string | undefined;
    this.start(apps, env, (instance, code) => (exited = `the ${instance} service exited (code ${code})${logOf(instance)}`), logDir);
    const deadline = Date.now() + timeoutMs;
    for (const app of new Set(apps)) {
      const copies = apps.filter((a) => a === app).length;
      while ((await client.answering(app, 250)) < copies) {
        if (exited) throw new CliFailure(exited);
        if (Date.now() > deadline) throw new CliFailure(`the ${app} service did not start within ${timeoutMs / 1000} s${logOf(app)}`);
      }
    }
  }

  /** The apps with an instance running. */
  get running(): AppName[] {
    return [...new Set([...this.children.values()].map((c) => c.app))];
  }

  /** SIGTERM to every app (graceful shutdown), SIGKILL after `graceMs`. */
  async stop(graceMs = 10000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(
        ({ child }) =>
          new Promise<void>((r) => {
            if (child.exitCode !== null) return r();
            const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
            child.once('exit', () => (clearTimeout(kill), r()));
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
