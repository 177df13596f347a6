import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command } from 'commander';
import { operatorIdentity } from '@orderflow/contracts';
import type { NatsCredentials } from '@orderflow/messaging';
import { Config, ConfigError, durationMs, loadConfig } from '@orderflow/runtime/config';
import { natsCredentials, secretFileOf } from '@orderflow/runtime/credentials';
import { UsageError } from './cli.errors';
import { PipelineClient } from './client';
import { privateNatsUrl } from './stack/state';

/**
 * The configuration the CLI runs with: the environment (same variables as the apps) plus global flags. Without
 * `--nats-url` or `NATS_URL`, the private nats-server that `npm start` / `npm run demo` started (recorded under
 * `ORDERFLOW_DATA_DIR`, default `.orderflow`) is used while it runs.
 */
export function cliConfig(cmd: Command): Config {
  const opts = cmd.optsWithGlobals() as { natsUrl?: string; namespace?: string };
  const env = { ...process.env };
  if (opts.natsUrl) env.NATS_URL = opts.natsUrl;
  else if (!env.NATS_URL) env.NATS_URL = privateNatsUrl(env.ORDERFLOW_DATA_DIR ?? '.orderflow');
  if (opts.namespace !== undefined) env.ORDERFLOW_NAMESPACE = opts.namespace;
  return loadConfig(env);
}

/** The operator name of whoever runs the CLI: `ORDERFLOW_OPERATOR`, else the OS user (lower-cased, `[a-z0-9_-]`). */
export function currentOperator(): string {
  const name = process.env.ORDERFLOW_OPERATOR || userInfo().username || 'operator';
  const clean = name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 32);
  return clean || 'operator';
}

/**
 * The CLI connects as the current operator (`operator-<name>`, its key in ORDERFLOW_SECRETS).
 * @throws ConfigError naming `orderflow setup operator add NAME` when the operator has no key.
 */
export function cliCredentials(config: Config): NatsCredentials {
  const identity = operatorIdentity(currentOperator());
  if (config.ORDERFLOW_INSECURE !== '1' && !existsSync(secretFileOf(config, identity)))
    throw new ConfigError(
      `no NATS key for ${identity} at ${secretFileOf(config, identity)}: run \`orderflow setup operator add ${currentOperator()}\` (or set ORDERFLOW_INSECURE=1 on a broker that lets anyone in)`,
    );
  return natsCredentials(config, identity);
}

/** Connects as the current operator, runs `work`, always closes. */
export async function withClient<T>(cmd: Command, work: (client: PipelineClient, config: Config) => Promise<T>): Promise<T> {
  const config = cliConfig(cmd);
  const client = await PipelineClient.connect(
    config.NATS_URL,
    config.ORDERFLOW_NAMESPACE,
    config.NATS_STREAM_REPLICAS,
    cliCredentials(config),
  );
  try {
    return await work(client, config);
  } finally {
    await client.close();
  }
}

/** Parses a whole number ≥ `min`. @throws UsageError naming the argument. */
export function wholeNumber(name: string, min = 1, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

/** Parses a UUID. @throws UsageError naming the argument. */
export function uuid(name: string) {
  return (value: string): string => {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value))
      throw new UsageError(`${name} must be a saga id (a UUID), got "${value}"`);
    return value.toLowerCase();
  };
}

export function currencyCode(value: string): string {
  if (!/^[A-Z]{3}$/.test(value)) throw new UsageError(`--currency must be an ISO 4217 code such as USD, got "${value}"`);
  return value;
}

/**
 * `--since`: a duration back from now (`90s`, `30m`, `1h`, `7d`) or an ISO 8601 time; returns an ISO time.
 * @throws UsageError on anything else.
 */
export function since(value: string): string {
  const t = /^\d+(ms|s|m|h|d)$/.test(value) ? Date.now() - durationMs(value) : Date.parse(value);
  if (!Number.isFinite(t)) throw new UsageError(`--since must be a duration such as 30m, 1h or 7d, or an ISO 8601 time, got "${value}"`);
  return new Date(t).toISOString();
}

/** `--rate`: `N/s` or `N` (per second), N > 0. @throws UsageError. */
export function rate(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(value);
  const n = m ? Number(m[1]) : NaN;
  if (!(n > 0)) throw new UsageError(`--rate must be a number per second such as 20/s, got "${value}"`);
  return n;
}

/**
 * An option that takes one value: given twice it is refused, not silently the last (commander passes the value parsed
 * before as `previous`). @throws UsageError.
 */
export const once =
  <T>(flag: string, parse: (value: string) => T) =>
  (value: string, previous: T | undefined): T => {
    if (previous !== undefined) throw new UsageError(`${flag} takes one value; it was given twice`);
    return parse(value);
  };

/** A repeatable option: collects every value. */
export const collect = (value: string, all: string[] = []) => [...all, value];

/** Waits so that calls to the returned function happen at most `perSecond` times a second. */
export function pacer(perSecond: number | undefined): () => Promise<void> {
  let next = 0;
  return async () => {
    if (!perSecond) return;
    // The slot is taken before waiting, so callers running side by side share the rate.
    const now = Date.now();
    const slot = Math.max(now, next);
    next = slot + 1000 / perSecond;
    if (slot > now) await new Promise((r) => setTimeout(r, slot - now));
  };
}

/** `s` as one single-quoted shell word (for the commands the CLI prints for the operator to run). */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
