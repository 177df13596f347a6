import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Consumers, OrderCreated, OrderScoped, Subjects } from '@orderflow/contracts';
import { InboundMessage } from '@orderflow/messaging';
import { JetStreamContext } from '@orderflow/transport';
import { PlaceOrderOrchestrator } from './place-order.orchestrator';

const inventoryReplies = Consumers.orderSagaInventoryReplies;
const paymentReplies = Consumers.orderSagaPaymentReplies;

/**
 * The PlaceOrder saga on NATS: `order.created` starts one, the participants' events advance it. The orchestrator
 * writes the saga's commands and outcome to the outbox itself, in the message's transaction.
 */
@Controller()
export class PlaceOrderController {
  constructor(private readonly saga: PlaceOrderOrchestrator) {}

  @EventPattern(Subjects.OrderCreated, { consumer: Consumers.orderPlacement })
  async placed(@Payload() _order: OrderCreated, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.saga.start(ctx.tx, ctx.message as InboundMessage<OrderCreated>);
  }

  @EventPattern(inventoryReplies.handles, { consumer: inventoryReplies })
  async inventoryReplied(@Payload() _reply: OrderScoped, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.saga.onReply(ctx.tx, ctx.message as InboundMessage<OrderScoped>);
  }

  @EventPattern(paymentReplies.handles, { consumer: paymentReplies })
  async paymentReplied(@Payload() _reply: OrderScoped, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.saga.onReply(ctx.tx, ctx.message as InboundMessage<OrderScoped>);
  }
}
