export {
  DatabaseAuthError,
  DatabaseUnreachableError,
  dropDatabase,
  ensureDatabase,
  ensureServiceRoles,
  grantRuntime,
  isAuthFailure,
  openServiceDataSource,
  pendingMigrations,
  runMigrationsOnce,
  withClient,
} from './database';
export type { PgTarget, RoleTimeouts, ServiceDataSourceOptions, ServiceRoles } from './database';
export { DatabaseBreaker } from './database.breaker';
export { InboxReceivedAt1763800000001, MessagingTables1763800000000 } from './messaging-tables.migration';
export { OutboxRelay } from './outbox.relay';
export type { OutboxRow } from './outbox.relay';
export { readSql, Transactor, Tx } from './transactor';
export type { QueryOptions, Sql, TxSql } from './transactor';
export type { Work } from './transactor';
export { InboxPruner } from './inbox.pruner';
export { PeriodicTask } from './periodic.task';
