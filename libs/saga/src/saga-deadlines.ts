import { BeforeApplicationShutdown, Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { PeriodicTask, Transactor } from '@orderflow/persistence';
import { EnvConfig, Logger, LOGGER } from '@orderflow/runtime';
import { Sagas } from './sagas';

/**
 * A timer that applies the step deadlines of every saga type (so a lost command or reply is re-sent from Postgres, the source of
 * truth), a quarter of the step timeout apart (50 ms to 1 s). While the database's circuit is open it skips its
 * turn; deadlines are re-checked when it is back.
 */
@Injectable()
export class SagaDeadlines implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly timer: PeriodicTask;

  constructor(sagas: Sagas, tx: Transactor, config: EnvConfig, @Inject(LOGGER) log: Logger) {
    const every = Math.max(50, Math.min(1000, Math.floor(config.SAGA_STEP_TIMEOUT_MS / 4)));
    this.timer = new PeriodicTask(
      'deadline sweep',
      every,
      () => tx.run((t) => sagas.onDeadlines(t)),
      log,
      () => tx.available,
    );
  }

  onApplicationBootstrap() {
    this.timer.start();
  }

  async beforeApplicationShutdown() {
    await this.timer.stop();
  }
}
