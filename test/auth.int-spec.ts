import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startPrivatePostgres } from '../apps/cli/src/stack/infra';
import { orderflow } from './support/cli';

/**
 * Passwords on a private Postgres cluster with scram-sha-256 (the shared one trusts every login): the service
 * roles' password follows PG_SERVICE_PASSWORD at every start, and a refused login is reported as one.
 */
describe('database passwords', () => {
  let dir: string;
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>;
  const env = (extra: Record<string, string>) => ({
    PGHOST: '127.0.0.1',
    PGPORT: String(pg!.port),
    PGDATABASE: 'orderflow_auth',
    PG_ADMIN_PASSWORD: 'admin-pw',
    ...extra,
  });
  const canLogin = async (password: string) => {
    const c = new Client({ host: '127.0.0.1', port: pg!.port, database: 'orderflow_auth', user: 'orderflow_orders', password });
    try {
      await c.connect();
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderflow-auth-'));
    pg = await startPrivatePostgres(dir, { adminPassword: 'admin-pw' });
    if (!pg) throw new Error('the PostgreSQL server binaries are needed for this test');
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("sets the service roles' password at every start, so changing PG_SERVICE_PASSWORD works", async () => {
    expect((await orderflow(null, ['db', 'migrate'], undefined, env({ PG_SERVICE_PASSWORD: 'first' }))).code).toBe(0);
    expect(await canLogin('first')).toBe(true);
    expect((await orderflow(null, ['db', 'migrate'], undefined, env({ PG_SERVICE_PASSWORD: 'second' }))).code).toBe(0);
    expect(await canLogin('second')).toBe(true);
    expect(await canLogin('first')).toBe(false);
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
