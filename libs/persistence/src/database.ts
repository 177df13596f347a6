import { Client, ClientConfig } from 'pg';
import { DataSource, DataSourceOptions } from 'typeorm';
import { types } from 'pg';

/** Postgres refused or did not answer; the message names host, port and database. */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/** Postgres answered but refused the role's login (wrong password, no such role, pg_hba). */
export class DatabaseAuthError extends Error {
  override name = 'DatabaseAuthError';
}

/**
 * `bigint` columns (money in minor units, stock, counts) come back from `pg` as strings unless told otherwise;
 * this parses them as numbers once for the whole process, refusing a value past 2^53 − 1 (which the check
 * constraints and the contracts already keep out) rather than rounding it. Idempotent.
 * @throws RangeError from a query that reads such a value.
 */
export function parseBigintAsNumber(): void {
  types.setTypeParser(types.builtins.INT8, (value: string) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${value} is past 2^53 - 1 and cannot be read exactly as a number`);
    return n;
  });
}

/** True for SQLSTATE class 28: invalid authorization specification / invalid password. */
export const isAuthFailure = (e: unknown) => /^28/.test((e as { code?: string }).code ?? '');

/** The error to report when connecting to `target` failed with `e`. */
function connectError(target: PgTarget, e: unknown): Error {
  const why = (e as Error).message;
  return isAuthFailure(e)
    ? new DatabaseAuthError(
        `Postgres at ${describe(target)} refused the login of role ${target.user}: ${why} (check its PG_PASSWORD_FILE, or PG_ADMIN_PASSWORD)`,
        { cause: e },
      )
    : new DatabaseUnreachableError(`Postgres at ${describe(target)} is unreachable: ${why}`, { cause: e });
}

export interface PgTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
}

const describe = (t: PgTarget) => `postgres://${t.user}@${t.host}:${t.port}/${t.database}`;
const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe SQL identifier: ${name}`);
  return `"${name}"`;
};
/** SQLSTATEs of "already exists" races between apps bootstrapping at once. */
const ALREADY_EXISTS = new Set(['42P04', '42710', '42P06', '23505']);

/**
 * Runs `fn` on one connection to `target`, always closed after (setup's admin work: roles, grants, registrations).
 * @throws DatabaseUnreachableError / DatabaseAuthError when it cannot connect.
 */
export async function withClient<T>(target: PgTarget, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ ...target, connectionTimeoutMillis: 5000 } as ClientConfig);
  try {
    await client.connect();
  } catch (e) {
    throw connectError(target, e);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function tolerateExists(run: () => Promise<unknown>) {
  try {
    await run();
  } catch (e) {
    if (!ALREADY_EXISTS.has((e as { code?: string }).code ?? '')) throw e;
  }
}

/**
 * Creates `database` if missing, connecting as the admin role to the `postgres` maintenance database.
 * @throws DatabaseUnreachableError when Postgres does not answer.
 */
export async function ensureDatabase(admin: PgTarget): Promise<void> {
  await withClient({ ...admin, database: 'postgres' }, async (c) => {
    const { rowCount } = await c.query('select 1 from pg_database where datname = $1', [admin.database]);
    if (!rowCount) await tolerateExists(() => c.query(`create database ${ident(admin.database)}`));
  });
}

/** Drops `admin.database` if it exists, closing its connections first (tests and the bench clean up with it). */
export async function dropDatabase(admin: PgTarget): Promise<void> {
  await withClient({ ...admin, database: 'postgres' }, (c) => c.query(`drop database if exists ${ident(admin.database)} with (force)`));
}

/** Session limits set on a service role (milliseconds; 0 disables one): see PostgreSQL "Client Connection Defaults". */
export interface RoleTimeouts {
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
}

/** A service's two roles (docs/architecture.md, "Persistence": one schema per service, its own role; PostgreSQL docs, "Privileges"). */
export interface ServiceRoles {
  schema: string;
  /** Owns the schema and its tables; runs the migrations (NOLOGIN: setup becomes it with `SET ROLE`). */
  owner: string;
  /** What the app logs in as: DML on its own schema's tables, no DDL, nothing elsewhere. */
  runtime: string;
  /** The runtime role's password (none when empty: trust or peer auth). */
  password?: string;
  timeouts?: RoleTimeouts;
  /** Tables the runtime role may only read and append to (no UPDATE or DELETE): audits and ledgers. */
  appendOnly?: string[];
  /** Tables the runtime role may only read: what setup alone writes (the registered operator keys). */
  readOnly?: string[];
}

/**
 * Creates (or brings up to date) a service's owner and runtime roles and its schema, owned by the owner; objects the
 * runtime role owned before (when it also ran the migrations) are handed to the owner. The schema is closed to
 * PUBLIC; the runtime role may use it. The runtime role's password and session limits (`timeouts`) are set every
 * time. Run before the migrations; `grantRuntime` after them. Idempotent.
 */
export async function ensureServiceRoles(admin: PgTarget, roles: ServiceRoles): Promise<void> {
  const { schema, owner, runtime, password, timeouts } = roles;
  await withClient(admin, async (c) => {
    // Serialise catalog changes (concurrent DDL on shared catalogs can fail with "tuple concurrently updated").
    await c.query('begin');
    await c.query(`select pg_advisory_xact_lock(hashtext('orderflow-bootstrap'))`);
    const exists = async (role: string) => ((await c.query('select 1 from pg_roles where rolname = $1', [role])).rowCount ?? 0) > 0;
    await c.query(`${(await exists(owner)) ? 'alter' : 'create'} role ${ident(owner)} nologin`);
    const withPassword = `password ${password ? c.escapeLiteral(password) : 'null'}`;
    await c.query(`${(await exists(runtime)) ? 'alter' : 'create'} role ${ident(runtime)} login ${withPassword}`);
    if (timeouts) {
      const ms = (v: number) => String(Math.max(0, Math.floor(v)));
      await c.query(`alter role ${ident(runtime)} set statement_timeout = ${ms(timeouts.statementTimeoutMs)}`);
      await c.query(`alter role ${ident(runtime)} set lock_timeout = ${ms(timeouts.lockTimeoutMs)}`);
      await c.query(`alter role ${ident(runtime)} set idle_in_transaction_session_timeout = ${ms(timeouts.idleInTransactionTimeoutMs)}`);
    }
    await c.query(`create schema if not exists ${ident(schema)} authorization ${ident(owner)}`);
    await c.query(`alter schema ${ident(schema)} owner to ${ident(owner)}`);
    await c.query(`reassign owned by ${ident(runtime)} to ${ident(owner)}`);
    await c.query(`revoke all on schema ${ident(schema)} from public`);
    await c.query(`grant usage on schema ${ident(schema)} to ${ident(runtime)}`);
    await c.query('commit');
  });
}

/**
 * After the migrations: the runtime role may read and write every table of its schema (no TRUNCATE, no DDL), use its
 * sequences, only read the migrations table and `readOnly` tables, and only read and insert into `appendOnly` tables.
 */
export async function grantRuntime(admin: PgTarget, roles: ServiceRoles): Promise<void> {
  const [s, r] = [ident(roles.schema), ident(roles.runtime)];
  await withClient(admin, async (c) => {
    await c.query('begin');
    await c.query(`grant select, insert, update, delete on all tables in schema ${s} to ${r}`);
    await c.query(`grant usage, select, update on all sequences in schema ${s} to ${r}`);
    await c.query(`revoke insert, update, delete on ${s}.migrations from ${r}`);
    for (const t of roles.appendOnly ?? []) await c.query(`revoke update, delete on ${s}.${ident(t)} from ${r}`);
    for (const t of roles.readOnly ?? []) await c.query(`revoke insert, update, delete on ${s}.${ident(t)} from ${r}`);
    await c.query('commit');
  });
}

export interface ServiceDataSourceOptions {
  target: PgTarget & { schema: string };
  /** The role the connections act as (`SET ROLE` at connect): the schema's owner when setup runs the migrations. */
  role?: string;
  entities: DataSourceOptions['entities'];
  migrations: DataSourceOptions['migrations'];
  poolSize: number;
  /** How long to wait for a pooled connection (including connecting) before failing. */
  acquireTimeoutMs?: number;
}

/**
 * A TypeORM data source on a service's schema (`search_path` = the schema, so migrations and raw SQL use unqualified
 * names), as `target.user` (acting as `role` when given). Initialises it; `runMigrationsOnce` applies migrations (TypeORM
 * keeps its `migrations` table in the schema). `synchronize` is off: migrations only.
 * @throws DatabaseUnreachableError when Postgres does not answer; DatabaseAuthError when it refuses the login.
 */
export async function openServiceDataSource(opts: ServiceDataSourceOptions): Promise<DataSource> {
  parseBigintAsNumber();
  const { target } = opts;
  const ds = new DataSource({
    type: 'postgres',
    host: target.host,
    port: target.port,
    database: target.database,
    username: target.user,
    password: target.password,
    schema: target.schema,
    entities: opts.entities,
    migrations: opts.migrations,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    extra: {
      max: opts.poolSize,
      options: `-c search_path=${target.schema}${opts.role ? ` -c role=${ident(opts.role).slice(1, -1)}` : ''}`,
      connectionTimeoutMillis: opts.acquireTimeoutMs ?? 5000,
    },
  });
  try {
    await ds.initialize();
  } catch (e) {
    throw connectError(target, e);
  }
  return ds;
}

/** The migrations of `ds` not applied yet (by name, oldest first): none when its `migrations` table lists them all. */
export async function pendingMigrations(ds: DataSource): Promise<string[]> {
  let applied: Set<string>;
  try {
    applied = new Set((await ds.query('select name from migrations')).map((r: { name: string }) => r.name));
  } catch (e) {
    if ((e as { code?: string }).code !== '42P01') throw e; // undefined_table: nothing was ever migrated
    applied = new Set();
  }
  return ds.migrations.map((m) => m.name ?? m.constructor.name).filter((n) => !applied.has(n));
}

/** Applies pending migrations under an advisory lock, so several instances starting at once do not race. */
export async function runMigrationsOnce(ds: DataSource, schema: string): Promise<string[]> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('select pg_advisory_lock(hashtext($1))', [`orderflow-migrate:${schema}`]);
    const applied = await ds.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await runner.query('select pg_advisory_unlock(hashtext($1))', [`orderflow-migrate:${schema}`]).catch(() => undefined);
    await runner.release();
  }
}
