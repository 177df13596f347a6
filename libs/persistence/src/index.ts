export * from './database';
export * from './messaging-tables.migration';
export * from './outbox.relay';
export * from './transactor';
export * from './inbox.pruner';
