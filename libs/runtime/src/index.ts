export { adminDb, ConfigError, durationMs, EnvConfig, loadConfig, pgPasswordFile, serviceRoles, ServiceNames } from './config';
export type { Config, ServiceName } from './config';
export type { Logger } from './logger';
export {
  DatabaseNotMigratedError,
  LOGGER,
  migrateServiceDatabase,
  openServiceDatabase,
  SERVICE_NAME,
  ServiceModule,
} from './service.module';
export type { ServiceDefinition } from './service.module';
export { runServiceMain, startService } from './bootstrap';
export { natsCredentials, secretFileOf } from './credentials';
export { packageVersion } from './version';
export { APP_NODE_OPTIONS, withAppNodeOptions } from './node-options';
