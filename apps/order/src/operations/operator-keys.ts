import { Injectable } from '@nestjs/common';
import { InboundMessage } from '@orderflow/messaging';
import { PgTarget, Tx, withClient } from '@orderflow/persistence';
import { OperatorsRepository } from './operators.repository';

/** The operator a verified command came from: the name `orderflow setup` registered for the key that signed it. */
export interface Operator {
  name: string;
  publicKey: string;
}

/** Who signed an operator command, or why the order app will not act on it. */
/** A verified operator, or why the command is refused (code `unverified`). */
export type Verified = { operator: Operator } | { refused: string };

/**
 * The operator keys `orderflow setup` registered in `orders.operators` (the app's role may only read them), and the
 * check every operator command passes before anything is done: signed (`Orderflow-Signer` / `Orderflow-Signature`,
 * verified by the consumer: `ConsumerSpec.signed`), by a registered key that was not revoked.
 */
@Injectable()
export class OperatorKeys {
  constructor(private readonly operators: OperatorsRepository) {}

  async verify(tx: Tx, msg: InboundMessage): Promise<Verified> {
    const s = msg.signature ?? { status: 'none' };
    if (s.status === 'none')
      return { refused: 'not signed: operator commands are signed with a registered operator key (orderflow setup operator add NAME)' };
    if (s.status === 'invalid')
      return {
        refused: `the signature of ${s.signer || '(no key)'} does not verify: the command was changed, or signed for another subject or id`,
      };
    const row = await this.operators.keyOf(tx, s.signer);
    if (!row) return { refused: `signed by ${s.signer}, which is not a registered operator key (orderflow setup operator add NAME)` };
    if (row.revoked_at)
      return { refused: `signed by ${row.name}'s key ${s.signer}, revoked at ${row.revoked_at.toISOString()} (a rotated key)` };
    return { operator: { name: row.name, publicKey: s.signer } };
  }
}

/** What `registerOperatorKeys` did for one operator. */
export type Registration = 'registered' | 'unchanged' | 'rotated';

/**
 * `orderflow setup`, with the admin credentials on the order database (`schema`): makes `keys` the operators' active
 * keys. A new name is registered; a name whose active key differs has it revoked (kept, so what it signed still
 * verifies) and the new one registered. Operators not named are left as they are. Idempotent.
 */
export async function registerOperatorKeys(
  admin: PgTarget,
  schema: string,
  keys: { name: string; publicKey: string }[],
): Promise<Record<string, Registration>> {
  const out: Record<string, Registration> = {};
  await withClient(admin, async (c) => {
    await c.query('begin');
    await c.query(`set local search_path = "${schema.replace(/"/g, '')}"`);
    for (const { name, publicKey } of keys) {
      const { rows } = await c.query<{ public_key: string }>(
        'select public_key from operators where name = $1 and revoked_at is null for update',
        [name],
      );
      if (rows[0]?.public_key === publicKey) {
        out[name] = 'unchanged';
        continue;
      }
      if (rows[0]) await c.query('update operators set revoked_at = now() where public_key = $1', [rows[0].public_key]);
      await c.query(
        'insert into operators (public_key, name) values ($1, $2) on conflict (public_key) do update set name = $2, revoked_at = null',
        [publicKey, name],
      );
      out[name] = rows[0] ? 'rotated' : 'registered';
    }
    await c.query('commit');
  });
  return out;
}
