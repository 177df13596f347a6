import { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { DynamicModule, INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as NestPinoLogger } from 'nestjs-pino';
import { NatsAuthError, TopologyMissingError, UnreachableError } from '@orderflow/messaging';
import { DatabaseAuthError, DatabaseUnreachableError } from '@orderflow/persistence';
import { JetStreamServer, ServiceEndpoints } from '@orderflow/transport';
import { startTracing } from '@orderflow/telemetry';
import { Config, ConfigError, loadConfig } from './config';
import type { AppManifest } from './manifest';
import { APP_MANIFEST, DatabaseNotMigratedError, LOGGER } from './service.module';
import { packageVersion } from './version';
import { Logger } from './logger';

/**
 * Starts one service app as a Nest hybrid application (Nest docs, "Hybrid application"): the microservice on our
 * JetStream transport (`JetStreamServer`) is how it talks to the other services — only over NATS; its HTTP port
 * (`METRICS_PORT`) serves `/metrics` and `/health/*` to operators' tools, advertised as `metrics_url` and
 * `health_url` in its NATS service metadata. Returns once its consumers pull. Start-up errors are thrown, not logged
 * by Nest, so the caller decides how to report them.
 */
export async function startService(module: (config: Config) => DynamicModule, config: Config): Promise<INestApplication> {
  const app = await NestFactory.create(module(config), { logger: false, abortOnError: false });
  const manifest = app.get<AppManifest>(APP_MANIFEST);
  startTracing(manifest.name, packageVersion());
  // Nest's own lines (route mapping, start, errors it catches) through the app's pino logger (nestjs-pino).
  app.useLogger(app.get(NestPinoLogger));
  // The transport strategy is a provider of the app (built by DI); its handlers' filter and pipe come with their
  // controllers (`@MessageController()`). Connected the plain way: the app runs the init hooks, once.
  app.connectMicroservice({ strategy: app.get(JetStreamServer) });
  const endpoints = app.get(ServiceEndpoints);
  try {
    await listen(app, manifest, config);
    const { port } = app.getHttpServer().address() as AddressInfo;
    const base = `http://${advertisedHost(config)}:${port}`;
    await endpoints.start({ metrics_url: `${base}/metrics`, health_url: `${base}/health/ready` });
    await app.startAllMicroservices();
  } catch (e) {
    await app.close().catch(() => undefined);
    throw e;
  }
  return app;
}

/**
 * The host in the metrics and health URLs the app advertises: `METRICS_PUBLIC_HOST`, else the address it binds when
 * that is one (a loopback port is reachable only there: `orderflow top` on the same machine scrapes it), else, bound
 * on every interface, the machine's host name.
 */
function advertisedHost(config: Config): string {
  if (config.METRICS_PUBLIC_HOST) return config.METRICS_PUBLIC_HOST;
  const bind = config.METRICS_HOST;
  return bind === '0.0.0.0' || bind === '::' || bind === '' ? hostname() : bind.includes(':') ? `[${bind}]` : bind;
}

/**
 * Listens on the app's HTTP port. @throws ConfigError naming `METRICS_PORT` when the port is taken (another stack, or
 * another program), instead of Node's bare `EADDRINUSE`.
 */
async function listen(app: INestApplication, manifest: AppManifest, config: Config): Promise<void> {
  const service = manifest.name;
  const port = config.METRICS_PORT ?? manifest.metricsPort;
  try {
    await app.listen(port, config.METRICS_HOST);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    throw new ConfigError(
      `the ${service} service's metrics port ${config.METRICS_HOST}:${port} is in use (another orderflow stack, or another program): ` +
        `set METRICS_PORT to a free port, or METRICS_PORT=0 for any free port (orderflow top finds it through the NATS service API)`,
    );
  }
}

/**
 * `main.ts` of a service: read the config once, start, shut down gracefully on SIGINT/SIGTERM. A bad
 * config or an unreachable NATS or Postgres prints one line on stderr and exits 1.
 */
export async function runServiceMain(name: string, module: (config: Config) => DynamicModule): Promise<void> {
  try {
    const config = loadConfig();
    const app = await startService(module, config);
    // One shutdown, whichever signal comes first and however often: Ctrl-C under `npm start` delivers SIGINT
    // to the whole process group and the CLI sends SIGTERM as well.
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      // Nest's shutdown hooks run in app.close(): consumers drain, the outbox flushes, connections close.
      app.close().then(
        () => process.exit(0),
        (e: Error) => {
          process.stderr.write(`${name}: shutdown failed: ${e.message}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const endpoints = app.get(ServiceEndpoints);
    app.get<Logger>(LOGGER).info({ pid: process.pid, instance: endpoints.instanceId, metrics: endpoints.metadata.metrics_url }, 'started');
    // Under `orderflow services start` (an IPC channel): tell the supervisor this app is ready.
    process.send?.({ ready: true });
  } catch (e) {
    const err = e as Error;
    const known =
      err instanceof ConfigError ||
      err instanceof UnreachableError ||
      err instanceof NatsAuthError ||
      err instanceof TopologyMissingError ||
      err instanceof DatabaseNotMigratedError ||
      err instanceof DatabaseUnreachableError ||
      err instanceof DatabaseAuthError;
    process.stderr.write(`${name}: ${known ? err.message : (err.stack ?? err.message)}\n`);
    // 78 (sysexits' EX_CONFIG): starting again as configured would fail the same way; a supervisor does not restart it.
    process.exit(err instanceof ConfigError ? 78 : 1);
  }
}
