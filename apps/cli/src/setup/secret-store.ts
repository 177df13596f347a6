import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { createUser, fromSeed } from '@nats-io/nkeys';
import { Identity } from '@orderflow/contracts';
import { secretFileOf } from '@orderflow/runtime';

/** What `ensure` / `rotate` did to one identity's key. */
export type KeyChange = 'created' | 'unchanged' | 'rotated';

/**
 * The identities' nkey seeds, one file each (`<identity>.nk`, mode 0600) in a folder of mode 0700: what an identity
 * proves itself with to NATS (NATS docs, "NKeys": ed25519 keys, the server stores only the public key) and, for
 * operators, what signs their actions. Source of keys: `@nats-io/nkeys` (`createUser`).
 */
export class SecretStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  file(identity: Identity): string {
    return secretFileOf({ ORDERFLOW_SECRETS: this.dir }, identity);
  }

  has(identity: Identity): boolean {
    return existsSync(this.file(identity));
  }

  /** Creates `identity`'s key unless it has one. */
  ensure(identity: Identity): KeyChange {
    if (this.has(identity)) return 'unchanged';
    this.write(identity, false);
    return 'created';
  }

  /** Replaces `identity`'s key: the old one stops working once the server reloads the generated config. */
  rotate(identity: Identity): KeyChange {
    this.write(identity, true);
    return 'rotated';
  }

  /** The public key (`U…`) of `identity`'s seed. @throws Error when it has no key. */
  publicKey(identity: Identity): string {
    return fromSeed(new TextEncoder().encode(readFileSync(this.file(identity), 'utf8').trim())).getPublicKey();
  }

  /** Every identity with a key here, sorted. */
  identities(): Identity[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.nk'))
      .map((f) => f.slice(0, -3) as Identity)
      .sort();
  }

  /**
   * The password in `file` (a Postgres runtime role's, `pg-<service>.password`), generated (24 random bytes,
   * base64url) when the file does not exist yet. Returns it and whether it was created.
   */
  password(file: string): { password: string; change: KeyChange } {
    if (existsSync(file)) return { password: readFileSync(file, 'utf8').trim(), change: 'unchanged' };
    const password = randomBytes(24).toString('base64url');
    this.writeSecret(file, password, false);
    return { password, change: 'created' };
  }

  private write(identity: Identity, replace: boolean): void {
    this.writeSecret(this.file(identity), new TextDecoder().decode(createUser().getSeed()), replace);
  }

  private writeSecret(file: string, secret: string, replace: boolean): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    // Written whole, then renamed over the old one: a reader never sees half a secret; 0600 from the start.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    if (!replace && existsSync(file)) throw new Error(`${file} appeared meanwhile`);
    renameSync(tmp, file);
  }
}
