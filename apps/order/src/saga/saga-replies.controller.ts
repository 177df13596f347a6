import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Consumers, OrderScoped } from '@orderflow/contracts';
import { JetStreamContext, MessageController } from '@orderflow/transport';
import { Sagas } from '@orderflow/saga';

const inventoryReplies = Consumers.orderSagaInventoryReplies;
const paymentReplies = Consumers.orderSagaPaymentReplies;

/**
 * The participants' events, for whichever saga attempt they answer (`Saga-Id` header), whatever its type: one durable
 * consumer per participant stream (the topology's `order-saga-replies`). A saga of a new participant adds its
 * consumer here.
 */
@MessageController()
export class SagaRepliesController {
  constructor(private readonly sagas: Sagas) {}

  @EventPattern(inventoryReplies.handles, { consumer: inventoryReplies })
  async inventoryReplied(@Payload() reply: OrderScoped, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.sagas.onReply(ctx.tx, ctx.message, reply.orderId);
  }

  @EventPattern(paymentReplies.handles, { consumer: paymentReplies })
  async paymentReplied(@Payload() reply: OrderScoped, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.sagas.onReply(ctx.tx, ctx.message, reply.orderId);
  }
}
