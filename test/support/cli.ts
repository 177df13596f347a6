import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Stack } from './stack';

const BIN = join(__dirname, '..', '..', 'dist', 'apps', 'cli', 'src', 'main.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds the command took. */
  ms: number;
}

/** Runs the built `orderflow` command as a user would, in the stack's namespace (needs `npm run build`, which `npm test` runs first). */
export function orderflow(stack: Stack | null, args: string[], input?: string, extraEnv: Record<string, string> = {}): Promise<CliRun> {
  const env = {
    ...process.env,
    ...(stack ? { ORDERFLOW_NAMESPACE: stack.config.ORDERFLOW_NAMESPACE, PGDATABASE: stack.config.PGDATABASE } : {}),
    ...extraEnv,
  };
  const started = Date.now();
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env, timeout: 60000, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr, ms: Date.now() - started }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Runs `orderflow … --json` and parses its output. @throws Error with stderr when it did not exit `code` (0). */
export async function orderflowJson<T = any>(stack: Stack, args: string[], code = 0): Promise<T> {
  const r = await orderflow(stack, [...args, '--json']);
  if (r.code !== code) throw new Error(`orderflow ${args.join(' ')} exited ${r.code}, not ${code}: ${r.stderr} ${r.stdout}`);
  return JSON.parse(r.stdout);
}
