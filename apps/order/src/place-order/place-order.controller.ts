import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Consumers, OrderCreated, Subjects } from '@orderflow/contracts';
import { JetStreamContext, MessageController } from '@orderflow/transport';
import { SagaOrchestrator, Sagas } from '@orderflow/saga';
import { acceptOrder, PlaceOrderData, placeOrderData, placeOrderSaga } from './place-order.saga';

/**
 * `order.created` starts a PlaceOrder saga: the order is recorded as PENDING (its id the idempotency key) and the
 * saga's first command goes to the outbox, in the message's transaction. The participants' replies reach the saga
 * through `SagaRepliesController`.
 */
@MessageController()
export class PlaceOrderController {
  private readonly saga: SagaOrchestrator<PlaceOrderData>;

  constructor(sagas: Sagas) {
    this.saga = sagas.of(placeOrderSaga);
  }

  /** @throws IdempotencyKeyReusedError when the order exists with a different body (dead-lettered). */
  @EventPattern(Subjects.OrderCreated, { consumer: Consumers.orderPlacement })
  async placed(@Payload() order: OrderCreated, @Ctx() ctx: JetStreamContext): Promise<void> {
    const data = placeOrderData(order);
    if (await acceptOrder(ctx.tx, data)) await this.saga.start(ctx.tx, data, ctx.message);
  }
}
