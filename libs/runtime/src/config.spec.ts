import { natsServers } from '@orderflow/messaging';
import { adminDb, ConfigError, loadConfig, serviceDb } from './config';

describe("each app's database", () => {
  const payments = { name: 'payment', schema: 'payments' };

  it('is the shared PGHOST:PGPORT/PGDATABASE unless <APP>_DATABASE_URL moves it', () => {
    const c = loadConfig({
      PGHOST: 'db.shared',
      PGDATABASE: 'shop',
      PAYMENT_DATABASE_URL: 'postgres://money-admin:s3cr%40t@db.money:6543/ledgers',
    });
    expect(serviceDb(c, { name: 'order', schema: 'orders' })).toMatchObject({
      host: 'db.shared',
      port: 5432,
      database: 'shop',
      user: 'orderflow_orders',
    });
    expect(serviceDb(c, payments)).toMatchObject({
      host: 'db.money',
      port: 6543,
      database: 'ledgers',
      schema: 'payments',
      user: 'orderflow_payments',
    });
    expect(adminDb(c, 'payment')).toEqual({ host: 'db.money', port: 6543, database: 'ledgers', user: 'money-admin', password: 's3cr@t' });
    expect(adminDb(c, 'order')).toEqual({ host: 'db.shared', port: 5432, database: 'shop', user: 'postgres', password: undefined });
  });

  it('keeps PG_ADMIN_USER where the URL names no user', () => {
    const c = loadConfig({ PG_ADMIN_USER: 'root', INVENTORY_DATABASE_URL: 'postgresql://db.stock/inventory' });
    expect(adminDb(c, 'inventory')).toEqual({ host: 'db.stock', port: 5432, database: 'inventory', user: 'root', password: undefined });
  });

  it('refuses a URL that is not a Postgres one, naming the variable', () => {
    expect(() => loadConfig({ ORDER_DATABASE_URL: 'mysql://db/orders' })).toThrow(
      /ORDER_DATABASE_URL="mysql:\/\/db\/orders": must start with postgres:\/\//,
    );
    expect(() => loadConfig({ ORDER_DATABASE_URL: 'postgres://db/Bad-Name' })).toThrow(
      /ORDER_DATABASE_URL=.*plain lower-case database name/,
    );
    expect(() => loadConfig({ ORDER_DATABASE_URL: 'db:5432' })).toThrow(ConfigError);
  });
});

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      NATS_URL: 'nats://127.0.0.1:4222',
      ORDERFLOW_NAMESPACE: '',
      PGHOST: '127.0.0.1',
      PGPORT: 5432,
      PGDATABASE: 'orderflow',
      RETRY_BACKOFF_MS: [1000, 5000, 30000],
      MAX_DELIVER: 5,
      SAGA_STEP_TIMEOUT_MS: 30000,
      LOG_LEVEL: 'info',
      ACK_WAIT_MS: 10000,
      PG_POOL_ACQUIRE_TIMEOUT_MS: 5000,
      PG_STATEMENT_TIMEOUT_MS: 30000,
      PG_LOCK_TIMEOUT_MS: 5000,
      PG_IDLE_IN_TRANSACTION_TIMEOUT_MS: 60000,
    });
  });

  it('parses numbers and lists from strings', () => {
    const c = loadConfig({ PGPORT: '6543', RETRY_BACKOFF_MS: '10, 20', MAX_DELIVER: '2' });
    expect([c.PGPORT, c.RETRY_BACKOFF_MS, c.MAX_DELIVER]).toEqual([6543, [10, 20], 2]);
  });

  it('reads durations with units into milliseconds', () => {
    const c = loadConfig({ STREAM_MAX_AGE: '12h', DLQ_MAX_AGE: '2d', INBOX_RETENTION: '3d' });
    expect([c.STREAM_MAX_AGE, c.DLQ_MAX_AGE, c.INBOX_RETENTION]).toEqual([12 * 3_600_000, 2 * 86_400_000, 3 * 86_400_000]);
    expect(() => loadConfig({ STREAM_MAX_AGE: 'a week' })).toThrow(/STREAM_MAX_AGE="a week".*must be a duration such as 7d/);
  });

  it('takes a cluster as a comma-separated NATS_URL, and refuses a list with a bad member', () => {
    expect(loadConfig({ NATS_URL: 'nats://a:4222, nats://b:4223,nats://c:4224', NATS_STREAM_REPLICAS: '3' })).toMatchObject({
      NATS_URL: 'nats://a:4222, nats://b:4223,nats://c:4224',
      NATS_STREAM_REPLICAS: 3,
    });
    expect(natsServers('nats://a:4222, nats://b:4223,nats://c:4224')).toEqual(['nats://a:4222', 'nats://b:4223', 'nats://c:4224']);
    expect(() => loadConfig({ NATS_URL: 'nats://a:4222,b:4223' })).toThrow(
      /NATS_URL="nats:\/\/a:4222,b:4223": NATS_URL must look like nats:\/\/host:port, or a comma-separated list/,
    );
    expect(() => loadConfig({ NATS_STREAM_REPLICAS: '0' })).toThrow(/NATS_STREAM_REPLICAS="0"/);
  });

  it('refuses an inbox retention shorter than the dead-letter retention', () => {
    expect(() => loadConfig({ DLQ_MAX_AGE: '30d', INBOX_RETENTION: '7d' })).toThrow(/INBOX_RETENTION="7d": must be at least DLQ_MAX_AGE/);
  });

  it('names every invalid variable in one error', () => {
    const attempt = () => loadConfig({ PGPORT: 'five', RETRY_BACKOFF_MS: '1,x', ORDERFLOW_NAMESPACE: 'a.b', NATS_URL: 'localhost' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/PGPORT="five"/);
    expect(attempt).toThrow(/RETRY_BACKOFF_MS="1,x"/);
    expect(attempt).toThrow(/ORDERFLOW_NAMESPACE="a.b"/);
    expect(attempt).toThrow(/NATS_URL="localhost"/);
  });
});
