export { adminDb, ConfigError, durationMs, EnvConfig, loadConfig, locationOf, pgPasswordFile, serviceRoles } from './config';
export type { Config, PgLocation } from './config';
export type { AppManifest, MigrationClass } from './manifest';
export type { Logger } from './logger';
export {
  DatabaseNotMigratedError,
  LOGGER,
  migrateServiceDatabase,
  openServiceDatabase,
  APP_MANIFEST,
  ServiceModule,
} from './service.module';
export { runServiceMain, startService } from './bootstrap';
export { natsCredentials, secretFileOf } from './credentials';
export { packageVersion } from './version';
export { APP_MALLOC_ENV, APP_NODE_OPTIONS, withAppProcessEnv } from './app-process-env';
