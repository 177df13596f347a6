import {
  BeforeApplicationShutdown,
  DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Namespace } from '@orderflow/contracts';
import { ConsumerRunner, JetStreamClient } from '@orderflow/messaging';
import { JetStreamServer, ServiceEndpoints } from '@orderflow/transport';
import { DiscoveryModule, DiscoveryService, MetadataScanner } from '@nestjs/core';
import { flushTracing, PipelineMetrics } from '@orderflow/telemetry';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';
import { HealthController } from './http/health.controller';
import { MetricsController } from './http/metrics.controller';
import {
  DatabaseBreaker,
  ensureDatabase,
  ensureServiceRoles,
  grantRuntime,
  InboxPruner,
  InboxReceivedAt1763800000001,
  MessagingTables1763800000000,
  openServiceDataSource,
  OutboxRelay,
  pendingMigrations,
  runMigrationsOnce,
  Transactor,
} from '@orderflow/persistence';
import { adminDb, Config, EnvConfig, serviceDb, serviceRoles } from './config';
import { natsCredentials } from './credentials';
import { IdleHeapCompaction, processProbe } from './idle-heap-compaction';
import { createLogger, Logger } from './logger';
import { AppManifest } from './manifest';
import { packageVersion } from './version';

/** Injection token of the app's pino logger. */
export const LOGGER = 'ORDERFLOW_LOGGER';
/** Injection token of the app's manifest (`AppManifest`). */
export const APP_MANIFEST = 'ORDERFLOW_APP_MANIFEST';

/** Every migration of an app: the outbox/inbox tables first, then its own. */
const migrationsOf = (app: AppManifest) => [MessagingTables1763800000000, InboxReceivedAt1763800000001, ...app.migrations];

/** The schema has migrations the app does not find applied: `orderflow setup` (or `db migrate`) applies them. */
export class DatabaseNotMigratedError extends Error {
  override name = 'DatabaseNotMigratedError';
}

/**
 * The app's database: connects as the service's runtime role (DML on its own schema, no DDL) and checks that every
 * migration is applied. The app never holds the admin credentials, and never changes the schema.
 * @throws DatabaseUnreachableError / DatabaseAuthError when Postgres does not answer or refuses the login.
 * @throws DatabaseNotMigratedError naming the pending migrations and `orderflow setup`.
 */
export async function openServiceDatabase(config: Config, app: AppManifest): Promise<DataSource> {
  const ds = await openServiceDataSource({
    target: serviceDb(config, app),
    entities: [],
    migrations: migrationsOf(app),
    poolSize: config.PG_POOL_SIZE,
    acquireTimeoutMs: config.PG_POOL_ACQUIRE_TIMEOUT_MS,
  });
  const pending = await pendingMigrations(ds).catch(async (e) => {
    await ds.destroy();
    throw e;
  });
  if (pending.length) {
    await ds.destroy();
    throw new DatabaseNotMigratedError(
      `the ${app.name} schema lacks ${pending.length} migration(s) (${pending.join(', ')}): run \`orderflow setup\` (or \`orderflow db migrate\`)`,
    );
  }
  return ds;
}

/**
 * What `orderflow setup` and `db migrate` do for one service, with the admin credentials: the database if missing, the
 * owner and runtime roles and the schema (`ensureServiceRoles`; the runtime role's password is `password`), the pending
 * migrations run as the owner (under an advisory lock), then the runtime role's grants. Idempotent.
 * @returns how many migrations the schema has applied.
 */
export async function migrateServiceDatabase(config: Config, app: AppManifest, password?: string): Promise<number> {
  const roles = { ...serviceRoles(app.schema), password, appendOnly: app.appendOnly, readOnly: app.readOnly };
  const admin = adminDb(config, app.name);
  await ensureDatabase(admin);
  await ensureServiceRoles(admin, {
    ...roles,
    timeouts: {
      statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
      lockTimeoutMs: config.PG_LOCK_TIMEOUT_MS,
      idleInTransactionTimeoutMs: config.PG_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    },
  });
  const ds = await openServiceDataSource({
    target: { ...admin, schema: roles.schema },
    role: roles.owner,
    entities: [],
    migrations: migrationsOf(app),
    poolSize: 2,
  });
  try {
    await runMigrationsOnce(ds, roles.schema);
    const [{ n }] = await ds.query('select count(*)::int as n from migrations');
    await grantRuntime(admin, roles);
    return n;
  } finally {
    await ds.destroy();
  }
}

/**
 * Start/stop order of the shared machinery: consumers stop first so their last acks and outbox writes land; the inbox
 * pruner and the idle heap compaction run beside them.
 */
@Injectable()
class ServiceLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  constructor(
    @Inject(APP_MANIFEST) private readonly app: AppManifest,
    @Inject(LOGGER) private readonly log: Logger,
    private readonly client: JetStreamClient,
    private readonly ds: DataSource,
    private readonly relay: OutboxRelay,
    private readonly runner: ConsumerRunner,
    private readonly endpoints: ServiceEndpoints,
    private readonly pruner: InboxPruner,
    private readonly breaker: DatabaseBreaker,
    @Inject(IdleHeapCompaction) private readonly compaction: IdleHeapCompaction | null,
  ) {}

  onApplicationBootstrap() {
    this.relay.start();
    this.pruner.start();
    this.compaction?.start();
    this.log.info(
      { namespace: this.client.ns.prefix || undefined, instance: this.endpoints.instanceId },
      `${this.app.name} service started`,
    );
  }

  async beforeApplicationShutdown() {
    this.log.info(`${this.app.name} service stopping`);
    this.compaction?.stop();
    // Disconnected (the broker away, or this identity's key rotated and the server dropped it): there is nothing to
    // drain, and draining would wait for a connection that may never come back. Unacked messages are redelivered.
    if (!this.client.connected) {
      this.log.warn('NATS is disconnected: closing without draining');
      await this.client.nc.close().catch(() => undefined);
    }
    await this.endpoints.stop().catch((e: Error) => this.log.warn({ err: e }, 'could not stop the NATS service endpoints'));
    await this.runner.stop();
    await this.relay.stop();
    await this.pruner.stop();
    await this.breaker.stop();
  }

  async onApplicationShutdown() {
    await flushTracing();
    await this.client.close();
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}

/**
 * The metrics read at scrape time: outbox lag and size (skipped while the database's circuit is open) and each durable
 * consumer's backlog from JetStream consumer info.
 */
@Injectable()
class ScrapeReadings {
  constructor(metrics: PipelineMetrics, relay: OutboxRelay, breaker: DatabaseBreaker, client: JetStreamClient, runner: ConsumerRunner) {
    metrics.onScrape(async () => {
      if (!breaker.available) return;
      const { rows, lagSeconds } = await relay.backlog();
      metrics.outboxSize.set(rows);
      metrics.outboxLag.set(lagSeconds);
    });
    metrics.onScrape(async () => {
      for (const spec of runner.consumers) {
        const info = await client.jsm.consumers.info(client.ns.stream(spec.stream), spec.durable);
        const labels = { stream: spec.stream, consumer: spec.durable };
        metrics.consumerPending.set(labels, info.num_pending);
        metrics.consumerAckPending.set(labels, info.num_ack_pending);
      }
    });
  }
}

/**
 * What every service app needs, wired once: validated config, logger, the NATS connection (as the app's own
 * identity), its own database role + schema + migrations, outbox relay, transactions, consumers and
 * query responders. Global, so feature modules inject these directly.
 */
@Module({})
export class ServiceModule {
  static forService(app: AppManifest, config: Config): DynamicModule {
    const log = createLogger(app.name, config.LOG_LEVEL);
    return {
      module: ServiceModule,
      global: true,
      imports: [
        TerminusModule.forRoot({ logger: false }),
        // The transport finds the handlers' controllers with it, to check them at start-up.
        DiscoveryModule,
        // Nest's logger (nestjs-pino) writes through the app's own pino logger. No request middleware (`forRoutes`
        // empty): the HTTP routes are scrapes and probes, not worth a line each, and its per-request
        // AsyncLocalStorage would add work to every promise of the process from the first scrape on.
        LoggerModule.forRoot({ pinoHttp: { logger: log }, forRoutes: [] }),
      ],
      providers: [
        { provide: EnvConfig, useValue: config },
        { provide: LOGGER, useValue: log },
        { provide: APP_MANIFEST, useValue: app },
        {
          provide: JetStreamClient,
          useFactory: async () => {
            const creds = natsCredentials(config, app.name);
            if (!creds.seed)
              log.warn('ORDERFLOW_INSECURE=1: connected to NATS without credentials; any client on this broker can act as any service');
            // Streams and consumers are `orderflow setup`'s: this identity may not create them (a missing one stops the start).
            return JetStreamClient.connect(config.NATS_URL, new Namespace(config.ORDERFLOW_NAMESPACE), log, `orderflow-${app.name}`, creds);
          },
        },
        {
          provide: DataSource,
          useFactory: () => openServiceDatabase(config, app),
        },
        {
          provide: DatabaseBreaker,
          useFactory: (ds: DataSource) =>
            new DatabaseBreaker(ds, log.child({ component: 'database' }), config.PG_BREAKER_MAX_PROBE_DELAY_MS),
          inject: [DataSource],
        },
        { provide: PipelineMetrics, useValue: new PipelineMetrics(app.name) },
        {
          provide: OutboxRelay,
          useFactory: (ds: DataSource, client: JetStreamClient, breaker: DatabaseBreaker, metrics: PipelineMetrics) =>
            new OutboxRelay(ds, client, log.child({ component: 'outbox' }), config.OUTBOX_POLL_MS, breaker, metrics),
          inject: [DataSource, JetStreamClient, DatabaseBreaker, PipelineMetrics],
        },
        {
          provide: Transactor,
          useFactory: (ds: DataSource, relay: OutboxRelay, breaker: DatabaseBreaker, metrics: PipelineMetrics) =>
            new Transactor(ds, relay, breaker, metrics),
          inject: [DataSource, OutboxRelay, DatabaseBreaker, PipelineMetrics],
        },
        {
          provide: ConsumerRunner,
          useFactory: (client: JetStreamClient, breaker: DatabaseBreaker, metrics: PipelineMetrics) =>
            new ConsumerRunner(
              client,
              {
                backoffMs: config.RETRY_BACKOFF_MS,
                maxDeliver: config.MAX_DELIVER,
                maxBatch: config.CONSUMER_MAX_BATCH,
                ackWaitMs: config.ACK_WAIT_MS,
              },
              log,
              breaker,
              metrics,
            ),
          inject: [JetStreamClient, DatabaseBreaker, PipelineMetrics],
        },
        {
          provide: InboxPruner,
          useFactory: (ds: DataSource) =>
            new InboxPruner(ds, log.child({ component: 'inbox' }), config.INBOX_RETENTION, config.INBOX_PRUNE_INTERVAL_MS),
          inject: [DataSource],
        },
        {
          provide: ServiceEndpoints,
          useFactory: (client: JetStreamClient) => new ServiceEndpoints(client, app.name, packageVersion(), log),
          inject: [JetStreamClient],
        },
        {
          // The app's Nest microservice transport, built by DI like the rest (Nest docs, "Custom transporters").
          provide: JetStreamServer,
          useFactory: (
            runner: ConsumerRunner,
            transactor: Transactor,
            endpoints: ServiceEndpoints,
            client: JetStreamClient,
            discovery: DiscoveryService,
            scanner: MetadataScanner,
            metrics: PipelineMetrics,
          ) => new JetStreamServer({ runner, transactor, endpoints, client, discovery, scanner, metrics, declared: app }),
          inject: [ConsumerRunner, Transactor, ServiceEndpoints, JetStreamClient, DiscoveryService, MetadataScanner, PipelineMetrics],
        },
        {
          // Null when turned off, or when node runs without --expose-gc (said once, at start).
          provide: IdleHeapCompaction,
          useFactory: (metrics: PipelineMetrics) => {
            if (config.IDLE_HEAP_COMPACTION_MB === 0) return null;
            const probe = processProbe();
            if (!probe) {
              log.info('idle heap compaction off: node runs without --expose-gc');
              return null;
            }
            return new IdleHeapCompaction(probe, config.IDLE_HEAP_COMPACTION_MB, log.child({ component: 'memory' }), 1000, () =>
              metrics.heapCompactions.inc(),
            );
          },
          inject: [PipelineMetrics],
        },
        ServiceLifecycle,
        ScrapeReadings,
      ],
      controllers: [MetricsController, HealthController],
      exports: [
        PipelineMetrics,
        EnvConfig,
        LOGGER,
        APP_MANIFEST,
        JetStreamClient,
        DataSource,
        DatabaseBreaker,
        OutboxRelay,
        Transactor,
        ConsumerRunner,
        ServiceEndpoints,
        JetStreamServer,
      ],
    };
  }
}
