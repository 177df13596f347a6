import { DynamicModule, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Config, ConfigError, loadConfig } from './config';

/**
 * Starts one service app as a standalone Nest application context (no HTTP: services talk only over NATS).
 * Graceful shutdown on SIGINT/SIGTERM. Returns the context so tests can close it.
 */
export async function startService(module: (config: Config) => DynamicModule, config: Config): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(module(config), { logger: ['error', 'warn'], abortOnError: false });
  return app;
}

/**
 * `main.ts` of a service: read the config once, start, and turn start-up failures (bad config, NATS or
 * Postgres unreachable) into one line on stderr and exit code 1.
 */
export async function runServiceMain(name: string, module: (config: Config) => DynamicModule): Promise<void> {
  try {
    const config = loadConfig();
    const app = await startService(module, config);
    app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  } catch (e) {
    const err = e as Error;
    const known = err instanceof ConfigError || /Unreachable/.test(err.name);
    process.stderr.write(`${name}: ${known ? err.message : err.stack ?? err.message}\n`);
    process.exit(1);
  }
}
