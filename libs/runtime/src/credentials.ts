import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Identity, inboxPrefixOf } from '@orderflow/contracts';
import type { NatsCredentials } from '@orderflow/messaging';
import { Config, ConfigError } from './config';

/** The secret file of `identity` in the config's secrets folder: `<ORDERFLOW_SECRETS>/<identity>.nk`. */
export const secretFileOf = (config: Pick<Config, 'ORDERFLOW_SECRETS'>, identity: Identity): string =>
  resolve(join(config.ORDERFLOW_SECRETS, `${identity}.nk`));

/**
 * How `identity` connects to NATS: its nkey seed (read from its secret file) and its private inbox prefix; with
 * `ORDERFLOW_INSECURE=1` and no secret file, no credentials at all (a broker that lets anyone in).
 * @throws ConfigError when the secret file is missing (and the config is not insecure), readable by others, or not a
 *   user seed — naming the file and `orderflow setup`.
 */
export function natsCredentials(config: Config, identity: Identity): NatsCredentials {
  const file = secretFileOf(config, identity);
  const inboxPrefix = inboxPrefixOf(identity);
  if (!existsSync(file)) {
    if (config.ORDERFLOW_INSECURE === '1') return { identity, inboxPrefix };
    throw new ConfigError(
      `no NATS secret for ${identity} at ${file}: run \`orderflow setup\` (or set ORDERFLOW_INSECURE=1 on a broker that lets anyone in)`,
    );
  }
  if ((statSync(file).mode & 0o077) !== 0)
    throw new ConfigError(`${file} is readable by others: chmod 600 it (it holds ${identity}'s key)`);
  const seed = readFileSync(file, 'utf8').trim();
  if (!/^SU[A-Z2-7]{56}$/.test(seed))
    throw new ConfigError(`${file} does not hold an nkey user seed (SU…): run \`orderflow setup --rotate ${identity}\``);
  return { identity, inboxPrefix, seed: new TextEncoder().encode(seed) };
}
