import { Command } from 'commander';
import { Config, loadConfig } from '@orderflow/runtime';
import { UsageError } from './cli.errors';
import { PipelineClient } from './client';

/** The configuration the CLI runs with: the environment (same variables as the apps) plus global flags. */
export function cliConfig(cmd: Command): Config {
  const opts = cmd.optsWithGlobals() as { natsUrl?: string; namespace?: string };
  const env = { ...process.env };
  if (opts.natsUrl) env.NATS_URL = opts.natsUrl;
  if (opts.namespace !== undefined) env.ORDERFLOW_NAMESPACE = opts.namespace;
  return loadConfig(env);
}

/** Connects, runs `work`, always closes. */
export async function withClient<T>(cmd: Command, work: (client: PipelineClient, config: Config) => Promise<T>): Promise<T> {
  const config = cliConfig(cmd);
  const client = await PipelineClient.connect(config.NATS_URL, config.ORDERFLOW_NAMESPACE);
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
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

export function currencyCode(value: string): string {
  if (!/^[A-Z]{3}$/.test(value)) throw new UsageError(`--currency must be an ISO 4217 code such as USD, got "${value}"`);
  return value;
}
