import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AppNames } from '@orderflow/contracts';
import { DatabaseNotMigratedError, loadConfig, openServiceDatabase } from '@orderflow/runtime';
import { AppManifests } from '../apps/manifests';
import { paymentManifest } from '../apps/payment/src/manifest';
import { startPrivatePostgres } from '../apps/cli/src/stack/infra';
import { orderflow } from './support/cli';

/** A migration the database has not seen (one a newer version of the app would bring). */
class Later1799999999999 {
  name = 'Later1799999999999';
  async up(): Promise<void> {}
  async down(): Promise<void> {}
}

/**
 * Least-privilege Postgres on a private cluster with scram-sha-256 (the shared one trusts every login):
 * only setup holds the admin credentials; per service an owner role (the schema, the migrations) and a runtime role
 * with its own generated password (DML on its own schema only; no UPDATE or DELETE on append-only tables).
 */
describe('database roles and passwords', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-auth-'));
  const secrets = join(dir, 'secrets');
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>;
  const env = (extra: Record<string, string> = {}) => ({
    PGHOST: '127.0.0.1',
    PGPORT: String(pg!.port),
    PGDATABASE: 'orderflow_auth',
    PG_ADMIN_PASSWORD: 'admin-pw',
    ORDERFLOW_SECRETS: secrets,
    ...extra,
  });
  const passwordOf = (service: string) => readFileSync(join(secrets, `pg-${service}.password`), 'utf8').trim();
  const login = async (user: string, password: string) => {
    const c = new Client({ host: '127.0.0.1', port: pg!.port, database: 'orderflow_auth', user, password });
    await c.connect();
    return c;
  };
  /** The SQLSTATE `sql` fails with as the runtime role of `service`, or 'ok'. */
  const as = async (service: (typeof AppNames)[number], sql: string) => {
    const c = await login(`orderflow_${AppManifests[service].schema}`, passwordOf(service));
    try {
      await c.query(sql);
      return 'ok';
    } catch (e) {
      return (e as { code?: string }).code;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    pg = await startPrivatePostgres(dir, { adminPassword: 'admin-pw' });
    if (!pg) throw new Error('the PostgreSQL server binaries are needed for this test');
  });
  afterAll(async () => {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an app refuses to start on a schema that is not migrated, naming orderflow setup', async () => {
    const r = await orderflow(null, ['db', 'migrate'], undefined, env({ PGDATABASE: 'orderflow_auth_fresh' }));
    expect(r.code).toBe(0);
    const fresh = loadConfig({ ...process.env, ...env({ PGDATABASE: 'orderflow_auth_fresh', PG_ADMIN_PASSWORD: '' }) });
    const later = { ...paymentManifest, migrations: [...paymentManifest.migrations, Later1799999999999] };
    const refused = openServiceDatabase(fresh, later);
    await expect(refused).rejects.toThrow(DatabaseNotMigratedError);
    await expect(refused).rejects.toThrow(/^the payment schema lacks 1 migration\(s\) \(Later1799999999999\): run `orderflow setup`/);
  });

  it('gives each runtime role its own password (0600 files), and the apps log in with it, without the admin password', async () => {
    expect((await orderflow(null, ['db', 'migrate'], undefined, env())).code).toBe(0);
    const passwords = AppNames.map(passwordOf);
    expect(new Set(passwords).size).toBe(4);
    for (const s of AppNames) expect(readFileSync(join(secrets, `pg-${s}.password`)).length).toBeGreaterThan(20);
    const config = loadConfig({ ...process.env, ...env({ PG_ADMIN_PASSWORD: '' }) });
    const ds = await openServiceDatabase(config, paymentManifest);
    expect(await ds.query('select current_user as u')).toEqual([{ u: 'orderflow_payments' }]);
    await ds.destroy();
    await expect(login('orderflow_payments', passwordOf('order'))).rejects.toMatchObject({ code: '28P01' });
    // Run again: the same passwords, set again.
    expect((await orderflow(null, ['db', 'migrate'], undefined, env())).code).toBe(0);
    expect(AppNames.map(passwordOf)).toEqual(passwords);
  });

  it('keeps each runtime role to DML on its own schema: no other schema, no DDL, no rewriting the ledger or the audit', async () => {
    expect(await as('notification', 'select * from payments.accounts')).toBe('42501');
    expect(await as('notification', 'drop table notifications.notifications')).toBe('42501');
    expect(await as('notification', 'create table notifications.x (id int)')).toBe('42501');
    expect(await as('notification', 'select count(*) from notifications.notifications')).toBe('ok');
    expect(await as('payment', 'select count(*) from payments.ledger')).toBe('ok');
    expect(await as('payment', 'delete from payments.ledger')).toBe('42501');
    expect(await as('payment', 'update payments.ledger set amount = 0')).toBe('42501');
    expect(await as('payment', 'truncate payments.ledger')).toBe('42501');
    expect(await as('payment', 'update payments.accounts set balance = balance')).toBe('ok');
    expect(await as('order', 'delete from orders.operator_actions')).toBe('42501');
    expect(await as('order', 'delete from orders.migrations')).toBe('42501');
    expect(await as('order', 'select count(*) from orders.saga_instances')).toBe('ok');
  });

  it('words a refused login as an authentication failure, not as "unreachable"', async () => {
    const r = await orderflow(null, ['db', 'migrate'], undefined, env({ PG_ADMIN_PASSWORD: 'wrong' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^orderflow: Postgres at postgres:\/\/postgres@127.0.0.1:\d+\/postgres refused the login of role postgres: password authentication failed/,
    );
    expect(r.stderr).not.toMatch(/unreachable/);
  });
});
