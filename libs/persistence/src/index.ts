export * from './database';
export * from './database.breaker';
export * from './messaging-tables.migration';
export * from './outbox.relay';
export * from './transactor';
export * from './inbox.pruner';
export * from './periodic.task';
