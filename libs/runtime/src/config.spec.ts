import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      NATS_URL: 'nats://127.0.0.1:4222', ORDERFLOW_NAMESPACE: '', PGHOST: '127.0.0.1', PGPORT: 5432, PGDATABASE: 'orderflow',
      RETRY_BACKOFF_MS: [1000, 5000, 30000], MAX_DELIVER: 5, SAGA_STEP_TIMEOUT_MS: 30000, LOG_LEVEL: 'info',
      ACK_WAIT_MS: 10000, PG_POOL_ACQUIRE_TIMEOUT_MS: 5000, PG_STATEMENT_TIMEOUT_MS: 30000, PG_LOCK_TIMEOUT_MS: 5000, PG_IDLE_IN_TRANSACTION_TIMEOUT_MS: 60000,
    });
  });

  it('parses numbers and lists from strings', () => {
    const c = loadConfig({ PGPORT: '6543', RETRY_BACKOFF_MS: '10, 20', MAX_DELIVER: '2' });
    expect([c.PGPORT, c.RETRY_BACKOFF_MS, c.MAX_DELIVER]).toEqual([6543, [10, 20], 2]);
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
