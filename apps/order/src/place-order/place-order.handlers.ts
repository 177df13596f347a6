import { BeforeApplicationShutdown, Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Consumers, OrderCreated, Subjects } from '@orderflow/contracts';
import { ConsumerRunner, InboundMessage } from '@orderflow/messaging';
import { PeriodicTask, Transactor, Tx } from '@orderflow/persistence';
import { EnvConfig, Logger, LOGGER } from '@orderflow/runtime';
import { PlaceOrderOrchestrator } from './place-order.orchestrator';

/**
 * Wires the PlaceOrder saga to NATS: `order.created` starts one, participants' events advance it, and a
 * timer applies step deadlines (so a lost command or reply is re-sent from Postgres, the source of truth).
 */
@Injectable()
export class PlaceOrderHandlers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private deadlines?: PeriodicTask;

  constructor(
    private readonly saga: PlaceOrderOrchestrator,
    private readonly tx: Transactor,
    private readonly runner: ConsumerRunner,
    private readonly config: EnvConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap() {
    const placement = Consumers.orderPlacement;
    await this.runner.start(
      placement,
      this.tx.handler(placement, {
        [Subjects.OrderCreated]: (tx, msg: InboundMessage<OrderCreated>) => this.saga.start(tx, msg),
      }),
    );
    for (const spec of [Consumers.orderSagaInventoryReplies, Consumers.orderSagaPaymentReplies]) {
      const reply = (tx: Tx, msg: InboundMessage<{ orderId: string }>) => this.saga.onReply(tx, msg);
      await this.runner.start(spec, this.tx.handler(spec, Object.fromEntries(spec.handles.map((s) => [s, reply]))));
    }
    const every = Math.max(50, Math.min(1000, Math.floor(this.config.SAGA_STEP_TIMEOUT_MS / 4)));
    // While the database's circuit is open the sweep skips its turn (deadlines are re-checked when it is back).
    this.deadlines = new PeriodicTask(
      'deadline sweep',
      every,
      () => this.tx.run((tx) => this.saga.onDeadlines(tx)),
      this.log,
      () => this.tx.available,
    );
    this.deadlines.start();
  }

  async beforeApplicationShutdown() {
    await this.deadlines?.stop();
  }
}
