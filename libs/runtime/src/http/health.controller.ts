import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { ConsumerRunner, JetStreamClient } from '@orderflow/messaging';

/**
 * Health endpoints for an orchestrator's probes (`@nestjs/terminus`; Kubernetes "liveness and readiness probes"):
 * - `GET /health/live`: 200 while the process serves HTTP at all;
 * - `GET /health/ready`: 200 only when NATS is connected, Postgres answers `select 1` within 1.5 s, every migration
 *   is applied and the consumers are pulling; otherwise 503 with the failing checks in `error`. NATS reports a lost
 *   connection at once; a stopped Postgres fails the ping on the next probe.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly client: JetStreamClient,
    private readonly ds: DataSource,
    private readonly runner: ConsumerRunner,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      () => this.probe('nats', async () => (this.client.connected ? {} : fail('not connected'))),
      () => this.probe('postgres', async () => void (await this.ds.query('select 1'))),
      () =>
        this.probe('migrations', async () => {
          const [{ n }] = await this.ds.query('select count(*)::int as n from migrations');
          return n < this.ds.migrations.length ? fail(`${this.ds.migrations.length - n} migration(s) pending`) : { applied: n };
        }),
      () =>
        this.probe('consumers', async () =>
          this.runner.pulling ? { pulling: this.runner.consumers.map((c) => `${c.stream}/${c.durable}`) } : fail('not pulling'),
        ),
    ]);
  }

  /** `key` is up with what `fn` returns, down with its error (or after 1.5 s without an answer). */
  private async probe<K extends string>(key: K, fn: () => Promise<object | void>) {
    const session = this.indicators.check(key);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 1.5 s')), 1500)));
      return session.up({ ...((await Promise.race([fn(), timeout])) ?? {}) });
    } catch (e) {
      return session.down({ message: (e as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}

function fail(message: string): never {
  throw new Error(message);
}
