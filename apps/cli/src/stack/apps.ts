import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AppName } from '@orderflow/contracts/permissions';
import { withAppNodeOptions } from '@orderflow/runtime/node-options';
import { CliFailure } from '../cli.errors';
import { PipelineClient } from '../client';

/** The compiled entry point of a service app (`dist/apps/<app>/src/main.js`). */
export function appEntry(app: AppName): string {
  const file = resolve(__dirname, '..', '..', '..', app, 'src', 'main.js');
  if (!existsSync(file)) throw new CliFailure(`${file} is missing; run \`npm run build\` first`);
  return file;
}

/** The four service apps running as child processes of this one. */
export class AppProcesses {
  private readonly children = new Map<AppName, ChildProcess>();
  private stopping = false;

  /**
   * Starts each app with `env`. With `logDir`, their logs go to `<logDir>/<app>.log` instead of this terminal.
   * `onExit` is told when an app exits while we were not stopping it.
   */
  start(apps: AppName[], env: NodeJS.ProcessEnv, onExit: (app: AppName, code: number | null) => void, logDir?: string): void {
    for (const app of apps) {
      const out = logDir ? openSync(join(logDir, `${app}.log`), 'a') : 'inherit';
      const child = spawn(process.execPath, [appEntry(app)], { env: withAppNodeOptions(env), stdio: ['ignore', out, out] });
      this.children.set(app, child);
      child.once('exit', (code) => {
        this.children.delete(app);
        if (!this.stopping) onExit(app, code);
      });
    }
  }

  /**
   * Starts `apps` and waits until each answers its ping over NATS.
   * @throws CliFailure when one exits first or does not answer within `timeoutMs` (naming its log file, if any).
   */
  async startAndWait(apps: AppName[], env: NodeJS.ProcessEnv, client: PipelineClient, logDir?: string, timeoutMs = 60_000): Promise<void> {
    const logOf = (app: AppName) => (logDir ? `; see ${join(logDir, app + '.log')}` : '');
    let exited: string | undefined;
    this.start(apps, env, (app, code) => (exited = `the ${app} service exited (code ${code})${logOf(app)}`), logDir);
    const deadline = Date.now() + timeoutMs;
    for (const app of apps) {
      while (!(await client.ping(app, 250))) {
        if (exited) throw new CliFailure(exited);
        if (Date.now() > deadline) throw new CliFailure(`the ${app} service did not start within ${timeoutMs / 1000} s${logOf(app)}`);
      }
    }
  }

  get running(): AppName[] {
    return [...this.children.keys()];
  }

  /** The process id of each running app. */
  get pids(): Map<AppName, number> {
    return new Map([...this.children].flatMap(([app, child]) => (child.pid ? [[app, child.pid] as const] : [])));
  }

  /** SIGTERM to every app (graceful shutdown), SIGKILL after `graceMs`. */
  async stop(graceMs = 10000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(
        (child) =>
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
