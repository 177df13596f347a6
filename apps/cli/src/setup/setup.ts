import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import pino from 'pino';
import { AppNames, Identity, Namespace, operatorIdentity } from '@orderflow/contracts';
import { registerOperatorKeys, Registration } from '../../../order/src/operations/operator-keys';
import { JetStreamClient, provisionTopology } from '@orderflow/messaging';
import { adminDb, Config, migrateServiceDatabase, natsCredentials, pgPasswordFile, serviceRoles } from '@orderflow/runtime';
import { AppManifests } from '../../../manifests';
import { UsageError } from '../cli.errors';
import { currentOperator } from '../context';
import { KeyChange, SecretStore } from './secret-store';
import { renderAuthConfig } from './nats-auth-config';

/** Where setup writes the nats-server config include unless told otherwise. */
export const DEFAULT_NATS_CONFIG = '.orderflow/nats/orderflow-auth.conf';

export interface SetupOptions {
  /**
   * Create the apps' keys, the nats-server config and the runtime roles' Postgres passwords (default); false on a broker
   * without authentication and a trust-auth database (ORDERFLOW_INSECURE=1, tests). Operators get keys either way:
   * they sign operator commands, whatever the broker.
   */
  keys?: boolean;
  /** Replace this identity's key. */
  rotate?: Identity;
  /** Operators to add (names). */
  addOperators?: string[];
  /** The config include to write. */
  natsConfig?: string;
  /** Provision streams, consumers and the bucket on NATS (as the `setup` identity). */
  provision?: boolean;
  /** Create the database, roles and schemas and apply migrations (with the Postgres admin credentials). */
  database?: boolean;
}

/** One line of setup's report. */
export interface SetupRow {
  what: 'key' | 'nats config' | 'nats' | 'database' | 'operator';
  name: string;
  status: KeyChange | 'written' | 'provisioned' | 'migrated' | Registration;
  detail: string;
}

/**
 * `orderflow setup`: the one step that holds admin rights. Idempotent:
 * 1. a key per identity (the four apps, `ingress`, `setup`, each operator; the first run adds the current operator),
 *    in `ORDERFLOW_SECRETS`; `rotate` replaces one;
 * 2. the nats-server config include (accounts, users, permissions generated from the topology), rewritten only when
 *    it changes;
 * 3. streams, durable consumers and the `DLQ_STATE` bucket, connected as `setup` (`provisionTopology`);
 * 4. the database, each service's owner and runtime roles (the runtime role with a generated password of its own),
 *    schema, migrations and grants (`migrateDatabases`);
 * 5. the operators' public keys, registered in the order database: what the order app verifies operator commands
 *    against (a rotated operator key is revoked there).
 * @throws Error (from the steps: an unknown identity to rotate, an unreachable or refusing server).
 */
export async function runSetup(config: Config, opts: SetupOptions = {}): Promise<SetupRow[]> {
  const rows: SetupRow[] = opts.keys === false ? operatorKeys(config, opts) : writeIdentities(config, opts);
  if (opts.provision !== false) {
    const ns = new Namespace(config.ORDERFLOW_NAMESPACE);
    const client = await JetStreamClient.connect(
      config.NATS_URL,
      ns,
      pino({ level: 'silent' }),
      'orderflow-setup',
      natsCredentials(config, 'setup'),
    );
    try {
      const done = await provisionTopology(client, {
        workMaxAgeMs: config.STREAM_MAX_AGE,
        ingressMaxBytes: config.ORDER_STREAM_MAX_BYTES,
        workMaxMsgSize: config.STREAM_MAX_MSG_SIZE,
        dlqMaxAgeMs: config.DLQ_MAX_AGE,
        dlqMaxBytes: config.DLQ_MAX_BYTES,
        replicas: config.NATS_STREAM_REPLICAS,
        maxDeliver: config.MAX_DELIVER,
        ackWaitMs: config.ACK_WAIT_MS,
        maxAckPending: config.CONSUMER_MAX_ACK_PENDING,
      });
      rows.push({ what: 'nats', name: config.NATS_URL, status: 'provisioned', detail: done.join(', ') });
    } finally {
      await client.close();
    }
  }
  if (opts.database !== false) {
    for (const m of await migrateDatabases(config, opts.keys !== false))
      rows.push({
        what: 'database',
        name: `${config.PGDATABASE}.${m.schema}`,
        status: 'migrated',
        detail: `${m.migrations} migrations applied; runtime role ${m.runtime}${m.password ? `, password ${m.password}` : ''}`,
      });
    const store = new SecretStore(config.ORDERFLOW_SECRETS);
    const keys = store
      .identities()
      .filter((i) => i.startsWith('operator-'))
      .map((i) => ({ name: i.slice('operator-'.length), publicKey: store.publicKey(i) }));
    const done = await registerOperatorKeys(adminDb(config, 'order'), AppManifests.order.schema, keys);
    for (const k of keys)
      rows.push({ what: 'operator', name: k.name, status: done[k.name], detail: `${k.publicKey} registered in the order database` });
  }
  return rows;
}

/** The operators: those with a key, those to add, and (on the first run) the current one. */
function operatorsOf(store: SecretStore, opts: SetupOptions): Identity[] {
  const operators = new Set(store.identities().filter((i) => i.startsWith('operator-')));
  for (const name of opts.addOperators ?? []) operators.add(operatorIdentity(name));
  if (operators.size === 0) operators.add(operatorIdentity(currentOperator()));
  return [...operators];
}

/** Step 1 on a broker without authentication: a key for each operator only (they sign operator commands). */
function operatorKeys(config: Config, opts: SetupOptions): SetupRow[] {
  const store = new SecretStore(config.ORDERFLOW_SECRETS);
  const operators = operatorsOf(store, opts);
  if (opts.rotate && !operators.includes(opts.rotate))
    throw new UsageError(`no identity ${opts.rotate} to rotate (identities: ${operators.join(', ')})`);
  return ensureKeys(store, operators, opts.rotate);
}

function ensureKeys(store: SecretStore, identities: Identity[], rotate?: Identity): SetupRow[] {
  return identities.map((identity) => {
    const status = identity === rotate ? store.rotate(identity) : store.ensure(identity);
    return { what: 'key', name: identity, status, detail: `${store.file(identity)} (${store.publicKey(identity)})` };
  });
}

/** Steps 1 and 2 of `runSetup`: a key for every identity, and the nats-server config include generated from them. */
function writeIdentities(config: Config, opts: SetupOptions): SetupRow[] {
  const store = new SecretStore(config.ORDERFLOW_SECRETS);
  const identities: Identity[] = [...AppNames, 'ingress', 'setup', ...operatorsOf(store, opts)];
  if (opts.rotate && !identities.includes(opts.rotate))
    throw new UsageError(`no identity ${opts.rotate} to rotate (identities: ${identities.join(', ')})`);
  const rows = ensureKeys(store, identities, opts.rotate);
  const file = resolve(opts.natsConfig ?? DEFAULT_NATS_CONFIG);
  const text = renderAuthConfig(
    new Namespace(config.ORDERFLOW_NAMESPACE),
    identities.map((identity) => ({ identity, publicKey: store.publicKey(identity) })),
  );
  const changed = !existsSync(file) || readFileSync(file, 'utf8') !== text;
  if (changed) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text, { mode: 0o644 });
  }
  rows.push({ what: 'nats config', name: file, status: changed ? 'written' : 'unchanged', detail: `${identities.length} users` });
  return rows;
}

/** What `migrateDatabases` did for one service. */
export interface MigratedService {
  service: string;
  schema: string;
  /** The role the app logs in as. */
  runtime: string;
  /** Migrations the schema has applied. */
  migrations: number;
  /** Its password file: created now, kept, or none (no passwords). */
  password: 'created' | 'kept' | null;
}

/**
 * Step 4 of `runSetup` (and `orderflow db migrate`), with the Postgres admin credentials: per service the database,
 * owner and runtime roles, schema, migrations (as the owner) and the runtime role's grants. With `passwords`, each
 * runtime role gets its own generated password, kept in `<ORDERFLOW_SECRETS>/pg-<service>.password` (0600) and set
 * again every time; without (a trust-auth development database), none.
 */
export async function migrateDatabases(config: Config, passwords: boolean): Promise<MigratedService[]> {
  const out: MigratedService[] = [];
  const store = new SecretStore(config.ORDERFLOW_SECRETS);
  for (const app of Object.values(AppManifests)) {
    const secret = passwords ? store.password(pgPasswordFile({ ...config, PG_PASSWORD_FILE: '' }, app.name)) : undefined;
    const migrations = await migrateServiceDatabase(config, app, secret?.password);
    const { schema, runtime } = serviceRoles(app.schema);
    out.push({
      service: app.name,
      schema,
      runtime,
      migrations,
      password: secret ? (secret.change === 'created' ? 'created' : 'kept') : null,
    });
  }
  return out;
}
