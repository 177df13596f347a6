import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { DataSource } from 'typeorm';
import {
  dropDatabase,
  ensureDatabase,
  InboxReceivedAt1763800000001,
  MessagingTables1763800000000,
  openServiceDataSource,
  runMigrationsOnce,
} from '@orderflow/persistence';
import { adminDb, AppManifest, loadConfig } from '@orderflow/runtime';

export const silentLog = pino({ level: 'silent' });

/**
 * The db tier's database: a fresh one per test file on the Postgres of `PGHOST:PGPORT`, with one schema holding the
 * outbox and inbox every service keeps and, given an app's manifest, that app's tables (its schema, its migrations),
 * migrated as the admin role. No NATS.
 */
export async function messagingDatabase(app?: AppManifest): Promise<{ ds: DataSource; drop: () => Promise<void> }> {
  const schema = app?.schema ?? 'app';
  const config = loadConfig({ ...process.env, PGDATABASE: `orderflow_db_${randomUUID().slice(0, 8)}` });
  const admin = adminDb(config);
  await ensureDatabase(admin);
  const ds = await openServiceDataSource({
    target: { ...admin, schema },
    entities: [],
    migrations: [MessagingTables1763800000000, InboxReceivedAt1763800000001, ...(app?.migrations ?? [])],
    poolSize: 4,
  });
  await ds.query(`create schema if not exists ${schema}`);
  await runMigrationsOnce(ds, schema);
  return {
    ds,
    drop: async () => {
      await ds.destroy();
      await dropDatabase(admin);
    },
  };
}
