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
        `Postgres at ${describe(target)} refused the login of role ${target.user}: ${why} (check PG_SERVICE_PASSWORD / PG_ADMIN_PASSWORD)`,
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

async function withClient<T>(target: PgTarget, fn: (c: Client) => Promise<T>): Promise<T> {
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

/**
 * Creates a service's login role and its schema owned by that role. The role gets no rights on any other
 * schema, so a service cannot read another's tables (DESIGN.md "one schema per service, its own role").
 * The role's password is set at every start (none when `password` is empty), so changing
 * PG_SERVICE_PASSWORD takes effect; so are its session limits (`timeouts`), which every new connection of the role
 * starts with. Idempotent.
 */
export async function ensureServiceSchema(
  admin: PgTarget,
  role: string,
  schema: string,
  password?: string,
  timeouts?: RoleTimeouts,
): Promise<void> {
  await withClient(admin, async (c) => {
    // Apps start together: serialise catalog changes (concurrent DDL on shared catalogs can fail with
    // "tuple concurrently updated").
    await c.query('begin');
    await c.query(`select pg_advisory_xact_lock(hashtext('orderflow-bootstrap'))`);
    const { rowCount } = await c.query('select 1 from pg_roles where rolname = $1', [role]);
    const withPassword = `password ${password ? c.escapeLiteral(password) : 'null'}`;
    await c.query(`${rowCount ? 'alter' : 'create'} role ${ident(role)} login ${withPassword}`);
    if (timeouts) {
      const ms = (v: number) => String(Math.max(0, Math.floor(v)));
      await c.query(`alter role ${ident(role)} set statement_timeout = ${ms(timeouts.statementTimeoutMs)}`);
      await c.query(`alter role ${ident(role)} set lock_timeout = ${ms(timeouts.lockTimeoutMs)}`);
      await c.query(`alter role ${ident(role)} set idle_in_transaction_session_timeout = ${ms(timeouts.idleInTransactionTimeoutMs)}`);
    }
    await c.query(`create schema if not exists ${ident(schema)} authorization ${ident(role)}`);
    await c.query('commit');
  });
}

export interface ServiceDataSourceOptions {
  target: PgTarget & { schema: string };
  entities: DataSourceOptions['entities'];
  migrations: DataSourceOptions['migrations'];
  poolSize: number;
  /** How long to wait for a pooled connection (including connecting) before failing. */
  acquireTimeoutMs?: number;
}

/**
 * A TypeORM data source on the service's own role and schema (`search_path` = the schema, so migrations
 * and raw SQL use unqualified names). Initialises it and applies pending migrations (idempotent;
 * TypeORM keeps its `migrations` table in the schema). `synchronize` is off: migrations only.
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
    extra: { max: opts.poolSize, options: `-c search_path=${target.schema}`, connectionTimeoutMillis: opts.acquireTimeoutMs ?? 5000 },
  });
  try {
    await ds.initialize();
  } catch (e) {
    throw connectError(target, e);
  }
  await runMigrationsOnce(ds, target.schema);
  return ds;
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
