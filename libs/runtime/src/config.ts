import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { plainToInstance, Transform } from 'class-transformer';
import { ArrayMinSize, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';
import { AppNames } from '@orderflow/contracts/permissions';
import { ConfigError } from './errors';

export { ConfigError };

const int = () => Transform(({ value }) => (value === undefined || value === '' ? undefined : Number(value)));
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration — `500ms`, `90s`, `30m`, `12h`, `7d`, or a bare number of milliseconds — in milliseconds; NaN if malformed. */
export function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[(m[2] ?? 'ms') as keyof typeof UNIT_MS] : NaN;
}

const duration = () => Transform(({ value }) => (typeof value === 'string' ? durationMs(value) : value));
const DAY = 86_400_000;
const HOUR = 3_600_000;

const msList = () => Transform(({ value }) => (typeof value === 'string' ? value.split(',').map((v) => Number(v.trim())) : value));

/**
 * Every environment variable the apps read, with its default. Read once at start-up by `loadConfig`.
 * Durations are milliseconds.
 */
export class EnvConfig {
  /** One server or a comma-separated list of a cluster's servers (the client fails over among them). */
  @IsString()
  @Matches(/^(nats|tls|wss?):\/\/[^\s,]+(\s*,\s*(nats|tls|wss?):\/\/[^\s,]+)*$/, {
    message: 'NATS_URL must look like nats://host:port, or a comma-separated list of such',
  })
  NATS_URL = 'nats://127.0.0.1:4222';

  /** Replicas of every stream (and the DLQ_STATE bucket): 1 on a single server, 3 on a cluster of three or more. */
  @int()
  @IsInt()
  @Min(1)
  @Max(5)
  NATS_STREAM_REPLICAS = 1;

  /** Prefix for subjects and streams, to run several deployments (or test runs) on one NATS server. */
  @IsString()
  @Matches(/^[A-Za-z0-9_-]*$/, { message: 'ORDERFLOW_NAMESPACE must match [A-Za-z0-9_-]*' })
  ORDERFLOW_NAMESPACE = '';

  /**
   * The folder of the identities' secrets (`<identity>.nk`, an nkey seed each, mode 0600), written by `orderflow setup`.
   * Each app connects to NATS as its own identity with its own file.
   */
  @IsString()
  ORDERFLOW_SECRETS = '.orderflow/secrets';

  /**
   * `1`: connect to NATS without credentials, on a broker that lets anyone in (development, tests). Any client on such a
   * broker can act as any service; every app logs a warning saying so.
   */
  @IsIn(['', '0', '1'])
  ORDERFLOW_INSECURE = '';

  @IsString()
  PGHOST = '127.0.0.1';

  @int()
  @IsInt()
  @Min(1)
  @Max(65535)
  PGPORT = 5432;

  @IsString()
  @Matches(/^[a-z_][a-z0-9_]*$/, { message: 'PGDATABASE must be a plain lower-case identifier' })
  PGDATABASE = 'orderflow';

  /**
   * Role that creates the database, the service roles and their schemas, and runs the migrations (needs CREATEDB and
   * CREATEROLE): `orderflow setup` / `db migrate` only. The apps never use it.
   */
  @IsString()
  PG_ADMIN_USER = 'postgres';

  @IsString()
  @IsOptional()
  PG_ADMIN_PASSWORD = '';

  /**
   * Where each app's schema lives when not on the shared `PGHOST:PGPORT/PGDATABASE`: from `<APP>_DATABASE_URL`
   * variables (`ORDER_DATABASE_URL=postgres://[ADMIN[:PASSWORD]@]HOST[:PORT]/DATABASE`; the user, if given, is the admin
   * role setup uses there), keyed by app name. Filled by `loadConfig`.
   */
  DATABASE_URLS: Record<string, PgLocation> = {};

  /**
   * The file holding the app's runtime role's password (written by `orderflow setup`, mode 0600); default
   * `<ORDERFLOW_SECRETS>/pg-<service>.password`, and no password when that does not exist (trust or peer auth).
   */
  @IsString()
  @IsOptional()
  PG_PASSWORD_FILE = '';

  @int()
  @IsInt()
  @Min(1)
  @Max(200)
  PG_POOL_SIZE = 10;

  /** How long an app waits for a pooled Postgres connection (including connecting) before the attempt fails. */
  @int()
  @IsInt()
  @Min(100)
  PG_POOL_ACQUIRE_TIMEOUT_MS = 5000;

  /** Longest wait between the circuit breaker's probes of an unavailable database (they start at 0.5 s and double). */
  @int()
  @IsInt()
  @Min(500)
  PG_BREAKER_MAX_PROBE_DELAY_MS = 2000;

  /** `statement_timeout` of the service roles (0: none). */
  @int()
  @IsInt()
  @Min(0)
  PG_STATEMENT_TIMEOUT_MS = 30000;

  /** `lock_timeout` of the service roles (0: none): a transaction waiting longer for a row lock fails and is retried. */
  @int()
  @IsInt()
  @Min(0)
  PG_LOCK_TIMEOUT_MS = 5000;

  /** `idle_in_transaction_session_timeout` of the service roles (0: none): ends a session stuck in an open transaction. */
  @int()
  @IsInt()
  @Min(0)
  PG_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60000;

  /** Delays before each redelivery of a failed message; the last one repeats. */
  @msList()
  @ArrayMinSize(1)
  @IsInt({ each: true })
  @Min(0, { each: true })
  RETRY_BACKOFF_MS: number[] = [1000, 5000, 30000];

  /** Deliveries of one message before it is dead-lettered. */
  @int()
  @IsInt()
  @Min(1)
  @Max(100)
  MAX_DELIVER = 5;

  /**
   * JetStream's ack wait for every durable consumer: a message not acked (nor reported `working()`) within it is
   * redelivered — after a crash, that is how long an app's in-flight messages wait. Messages in hand are kept alive.
   */
  @int()
  @IsInt()
  @Min(1000)
  @Max(600_000)
  ACK_WAIT_MS = 10000;

  /** How long the work streams (ORDER, INVENTORY, PAYMENT, NOTIFICATION) keep a message (`7d`, `12h`, …). */
  @duration()
  @IsInt({ message: 'STREAM_MAX_AGE must be a duration such as 7d, 12h or 30m' })
  @Min(60_000)
  STREAM_MAX_AGE = 7 * DAY;

  /** How long the dead-letter stream keeps a dead letter. */
  @duration()
  @IsInt({ message: 'DLQ_MAX_AGE must be a duration such as 30d' })
  @Min(60_000)
  DLQ_MAX_AGE = 30 * DAY;

  /**
   * Most bytes the ingress stream (ORDER) holds. A full stream refuses new messages (JetStream `discard: new`): an
   * order published then is refused loudly, and the order app's outbox holds its events until there is room, rather
   * than the stream dropping its oldest messages, which may not have been consumed yet. Consumed messages count until
   * STREAM_MAX_AGE removes them (limits retention): about 1 KB per saga.
   */
  @int()
  @IsInt()
  @Min(1_048_576)
  ORDER_STREAM_MAX_BYTES = 1_073_741_824;

  /**
   * Largest message a work stream accepts (JetStream `max_msg_size`), bytes: an `order.created` above it is refused
   * at publish. With CONSUMER_MAX_ACK_PENDING it bounds what a consumer can hold in memory.
   */
  @int()
  @IsInt()
  @Min(1024)
  @Max(1_048_576)
  STREAM_MAX_MSG_SIZE = 65_536;

  /**
   * Most bytes the dead-letter stream holds. A full DLQ refuses new dead letters rather than evicting the oldest
   * evidence: the consumers then hold those messages unacked and `orderflow_dead_letters_held` says how many.
   */
  @int()
  @IsInt()
  @Min(1_048_576)
  DLQ_MAX_BYTES = 1_073_741_824;

  /**
   * Most messages a durable consumer has delivered and unacked (JetStream `max_ack_pending`), and so the most an app
   * holds in memory per consumer, e.g. while its database is away (at most this × STREAM_MAX_MSG_SIZE bytes).
   */
  @int()
  @IsInt()
  @Min(1)
  @Max(100_000)
  CONSUMER_MAX_ACK_PENDING = 512;

  /**
   * Growth of the resident set, MB, after which an idle app asks V8 for a full, memory-reducing collection (once per
   * burst: `IdleHeapCompaction`); 0 turns it off. Needs node's `--expose-gc` (the apps' NODE_OPTIONS have it).
   */
  @int()
  @IsInt()
  @Min(0)
  @Max(4096)
  IDLE_HEAP_COMPACTION_MB = 16;

  /** How long inbox rows are kept: at least DLQ_MAX_AGE, so a replay of a dead letter is still recognised. */
  @duration()
  @IsInt({ message: 'INBOX_RETENTION must be a duration such as 30d' })
  @Min(60_000)
  INBOX_RETENTION = 30 * DAY;

  /** How often each app prunes its inbox (in batches of 1,000 rows, off the message path). */
  @int()
  @IsInt()
  @Min(100)
  INBOX_PRUNE_INTERVAL_MS = 600_000;

  /** Most messages one consumer handles in one transaction (it never waits to fill a batch). */
  @int()
  @IsInt()
  @Min(1)
  @Max(1024)
  CONSUMER_MAX_BATCH = 64;

  /** How long a saga step waits for its reply before the command is sent again (a step of the definition may set its own). */
  @int()
  @IsInt()
  @Min(100)
  SAGA_STEP_TIMEOUT_MS = 30000;

  /**
   * Ceiling of an action's doubling deadline, ms: a step without a reply is sent again after SAGA_STEP_TIMEOUT_MS, then
   * twice that, … up to this. Slowness never cancels a saga by itself (see SAGA_DEADLINE).
   */
  @int()
  @IsInt()
  @Min(100)
  SAGA_STEP_BACKOFF_MAX_MS = 300_000;

  /**
   * The business deadline of a saga attempt (`1h`, `30m`, …; a definition may set its own): an action before the pivot
   * still without a reply then is given up on and the saga compensated (`deadline_exceeded`); a retriable step after the
   * pivot leaves the saga FAILED for an operator. Until then a step is only sent again.
   */
  @duration()
  @IsInt({ message: 'SAGA_DEADLINE must be a duration such as 1h or 30m' })
  @Min(1000)
  SAGA_DEADLINE = HOUR;

  /**
   * Sends of one compensation before it is given up on (the saga FAILED for an operator). Its deadline starts
   * at the step timeout and doubles per send up to SAGA_COMPENSATION_BACKOFF_MAX_MS: with the defaults
   * (30 s, 60 s, 100 sends) a compensation is re-sent for about 99 minutes.
   */
  @int()
  @IsInt()
  @Min(1)
  @Max(100_000)
  SAGA_COMPENSATION_MAX_ATTEMPTS = 100;

  /** Ceiling of a compensation's doubling deadline, ms. */
  @int()
  @IsInt()
  @Min(100)
  SAGA_COMPENSATION_BACKOFF_MAX_MS = 60_000;

  /** How often the outbox relay sweeps for rows older than this (rows are published right after their commit; the sweep catches what a crash or failed publish left). */
  @int()
  @IsInt()
  @Min(10)
  OUTBOX_POLL_MS = 1000;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  /**
   * The app's HTTP port for `GET /metrics`, `/health/live` and `/health/ready`; unset: the app's default (its
   * manifest's `metricsPort`), 0: any free port (several instances on one host). Found by tools through the NATS service API.
   */
  @int()
  @IsInt()
  @Min(0)
  @Max(65535)
  @IsOptional()
  METRICS_PORT?: number = undefined;

  /** Address the HTTP port binds to: loopback by default (`0.0.0.0` where a scraper on another host must reach it). */
  @IsString()
  METRICS_HOST = '127.0.0.1';

  /**
   * Host name in the `metrics_url` and `health_url` the app advertises (default: the `METRICS_HOST` it binds, or the
   * machine's host name when that is every interface).
   */
  @IsString()
  @IsOptional()
  METRICS_PUBLIC_HOST = '';
}

export type Config = EnvConfig;

/**
 * Reads and validates the configuration from `env` (default `process.env`). Unknown variables are ignored.
 * @throws ConfigError naming each invalid variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(new EnvConfig());
  const picked = Object.fromEntries(known.filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]]));
  const config = plainToInstance(EnvConfig, picked);
  const errors = validateSync(config);
  const lines = errors.map((e) => `${e.property}=${JSON.stringify(env[e.property])}: ${Object.values(e.constraints ?? {}).join(', ')}`);
  if (errors.length === 0 && config.INBOX_RETENTION < config.DLQ_MAX_AGE) {
    lines.push(
      `INBOX_RETENTION=${JSON.stringify(env.INBOX_RETENTION ?? '30d')}: must be at least DLQ_MAX_AGE (${JSON.stringify(env.DLQ_MAX_AGE ?? '30d')}), so a replayed dead letter is still recognised by the inboxes`,
    );
  }
  for (const app of AppNames) {
    const key = `${app.toUpperCase()}_DATABASE_URL`;
    const value = env[key];
    if (!value) continue;
    const location = parseDatabaseUrl(value);
    if (typeof location === 'string') lines.push(`${key}=${JSON.stringify(value)}: ${location}`);
    else config.DATABASE_URLS[app] = location;
  }
  if (lines.length > 0) throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  return config;
}

/** Where one app's schema lives: a Postgres server and database, and optionally the admin role to use there. */
export interface PgLocation {
  host: string;
  port: number;
  database: string;
  adminUser?: string;
  adminPassword?: string;
}

/** `postgres://[user[:password]@]host[:port]/database` as a location, or what is wrong with it. */
function parseDatabaseUrl(value: string): PgLocation | string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'not a URL (postgres://[user[:password]@]host[:port]/database)';
  }
  const database = decodeURIComponent(u.pathname.slice(1));
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return 'must start with postgres://';
  if (!u.hostname || !/^[a-z_][a-z0-9_]*$/.test(database)) return 'needs a host and a plain lower-case database name';
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    database,
    adminUser: u.username ? decodeURIComponent(u.username) : undefined,
    adminPassword: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

/** Where `app`'s schema lives: its `<APP>_DATABASE_URL`, else the shared `PGHOST:PGPORT/PGDATABASE`. */
export function locationOf(config: Config, app?: string): PgLocation {
  return (app && config.DATABASE_URLS[app]) || { host: config.PGHOST, port: config.PGPORT, database: config.PGDATABASE };
}

/** The password file of `app`'s runtime role: `PG_PASSWORD_FILE`, else `<ORDERFLOW_SECRETS>/pg-<app>.password`. */
export const pgPasswordFile = (config: Config, app: string): string =>
  resolve(config.PG_PASSWORD_FILE || join(config.ORDERFLOW_SECRETS, `pg-${app}.password`));

/** The roles of an app that owns `schema`: `orderflow_<schema>_owner` owns the schema, `orderflow_<schema>` is what the app logs in as. */
export const serviceRoles = (schema: string) => ({ schema, owner: `orderflow_${schema}_owner`, runtime: `orderflow_${schema}` });

/**
 * Connection settings of `app`'s runtime role on its own database (`locationOf`), its password read from its file
 * (none when the file does not exist).
 * @throws ConfigError when PG_PASSWORD_FILE is set but cannot be read.
 */
export function serviceDb(config: Config, app: { name: string; schema: string }) {
  const { schema, runtime } = serviceRoles(app.schema);
  const file = pgPasswordFile(config, app.name);
  let password: string | undefined;
  if (existsSync(file)) password = readFileSync(file, 'utf8').trim() || undefined;
  else if (config.PG_PASSWORD_FILE) throw new ConfigError(`PG_PASSWORD_FILE=${JSON.stringify(config.PG_PASSWORD_FILE)}: no such file`);
  const { host, port, database } = locationOf(config, app.name);
  return { host, port, database, schema, user: runtime, password };
}

/**
 * The admin role's connection to `app`'s database (`locationOf`; the shared one without `app`), or to `database` on
 * the shared server. The admin role is the URL's user when `<APP>_DATABASE_URL` names one, else `PG_ADMIN_USER`.
 */
export function adminDb(config: Config, app?: string, database?: string) {
  const at = locationOf(config, app);
  return {
    host: at.host,
    port: at.port,
    database: database ?? at.database,
    user: at.adminUser ?? config.PG_ADMIN_USER,
    password: (at.adminUser ? at.adminPassword : config.PG_ADMIN_PASSWORD) || undefined,
  };
}
