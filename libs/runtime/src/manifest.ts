import type { MigrationInterface } from 'typeorm';
import type { AppName, ConsumerSpec } from '@orderflow/contracts';

/** A TypeORM migration class (what `migrations` lists). */
export type MigrationClass = new () => MigrationInterface;

/**
 * What an app declares about itself, in `apps/<app>/src/manifest.ts` (listed once in `apps/manifests.ts`): the runtime
 * reads it for the app's database and HTTP port, `orderflow setup` and `db migrate` for roles, schema, migrations and
 * grants, and the CLI for which apps exist, none of them importing the app's Nest module. Nothing here imports Nest.
 */
export interface AppManifest {
  name: AppName;
  /** The Postgres schema it owns; its roles are `orderflow_<schema>_owner` and `orderflow_<schema>` (`serviceRoles`). */
  schema: string;
  /** Its TypeORM migrations, oldest first (the outbox and inbox migrations run before them). */
  migrations: MigrationClass[];
  /** Tables its runtime role may only read and insert into: audits and ledgers. */
  appendOnly?: string[];
  /** Tables its runtime role may only read: what setup alone writes. */
  readOnly?: string[];
  /** Its durable consumers, as the broker topology declares them (`AppTopology`, which permissions come from). */
  consumers: readonly ConsumerSpec[];
  /** The query subjects it answers through the NATS service API (checked against its handlers at start-up). */
  queries: readonly string[];
  /** Default port of its HTTP `/metrics` and `/health` (`METRICS_PORT` overrides it). */
  metricsPort: number;
}
