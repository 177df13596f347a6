import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * What a running stack records under the data directory (`ORDERFLOW_DATA_DIR`, default `.orderflow`), so that
 * another terminal's `orderflow …` finds it. Kept free of heavy imports: every CLI command reads it at start.
 */

/** Where a private nats-server started by the CLI is recorded. */
export const natsStateFile = (dataDir: string) => resolve(dataDir, 'nats', 'state.json');

/** Whether process `pid` still runs (signal 0 checks without signalling). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The URL of the private nats-server recorded under `dataDir`, if its process still runs. */
export function privateNatsUrl(dataDir: string): string | undefined {
  const file = natsStateFile(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    const { url, pid } = JSON.parse(readFileSync(file, 'utf8')) as { url: string; pid: number };
    return isRunning(pid) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The control socket of the stack `orderflow services start` runs (see `Supervisor`). */
export const stackSocketFile = (dataDir: string) => resolve(dataDir, 'stack.sock');
