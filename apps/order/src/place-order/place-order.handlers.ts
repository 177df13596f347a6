import { BeforeApplicationShutdown, Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Consumers, OrderCreated, Subjects } from '@orderflow/contracts';
import { ConsumerRunner, MessageHandler } from '@orderflow/messaging';
import { Transactor } from '@orderflow/persistence';
import { EnvConfig, Logger, LOGGER } from '@orderflow/runtime';
import { PlaceOrderOrchestrator } from './place-order.orchestrator';

/**
 * Wires the PlaceOrder saga to NATS: `order.created` starts one, participants' events advance it, and a
 * timer applies step deadlines (so a lost command or reply is re-sent from Postgres, the source of truth).
 */
@Injectable()
export class PlaceOrderHandlers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private sweeping: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly saga: PlaceOrderOrchestrator,
    private readonly tx: Transactor,
    private readonly runner: ConsumerRunner,
    private readonly config: EnvConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap() {
    const placement = Consumers.orderPlacement;
    await this.runner.start(placement, {
      [Subjects.OrderCreated]: this.tx.inboxed<OrderCreated>(placement.durable, (tx, msg) => this.saga.start(tx, msg)),
    });
    for (const spec of [Consumers.orderSagaInventoryReplies, Consumers.orderSagaPaymentReplies]) {
      // The durable name is the same on both streams; the inbox key includes the stream's subject family.
      const inboxName = `${spec.durable}:${spec.stream}`;
      const reply: MessageHandler = this.tx.inboxed<{ orderId: string }>(inboxName, (tx, msg) => this.saga.onReply(tx, msg));
      await this.runner.start(spec, Object.fromEntries(spec.handles.map((s) => [s, reply])));
    }
    const every = Math.max(50, Math.min(1000, Math.floor(this.config.SAGA_STEP_TIMEOUT_MS / 4)));
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.sweeping = this.tx.run((tx) => this.saga.onDeadlines(tx)).catch((e) => this.log.warn({ err: e }, 'deadline sweep failed; will retry')).finally(() => (busy = false));
    }, every);
  }

  async beforeApplicationShutdown() {
    clearInterval(this.timer);
    await this.sweeping;
  }
}
