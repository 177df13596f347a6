import { Config } from '@orderflow/runtime';
import { runSetup } from '../../apps/cli/src/setup/setup';

/**
 * What `orderflow setup --no-keys --no-database` does, for `config`'s namespace on a broker that lets anyone in: the
 * streams, durable consumers and bucket (the apps no longer create them).
 */
export async function provisionNats(config: Config): Promise<void> {
  await runSetup(config, { keys: false, database: false });
}

/** What `orderflow setup --no-keys` does: NATS as `provisionNats`, and every service's roles, schema and migrations. */
export async function provisionAll(config: Config): Promise<void> {
  await runSetup(config, { keys: false });
}
