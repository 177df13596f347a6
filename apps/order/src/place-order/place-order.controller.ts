import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Consumers, isCanonicalUuid, isValidated, OrderCreated, Subjects } from '@orderflow/contracts';
import { Tx } from '@orderflow/persistence';
import { JetStreamContext, MessageController } from '@orderflow/transport';
import { SagaOrchestrator, Sagas } from '@orderflow/saga';
import { orders } from '../orders/orders.repository';
import { acceptOrder, PlaceOrderData, placeOrderData, placeOrderSaga } from './place-order.saga';

/**
 * `order.created` starts a PlaceOrder saga: the order is recorded as PENDING (its id the idempotency key) and the
 * saga's first command goes to the outbox, in the message's transaction. The participants' replies reach the saga
 * through `SagaRepliesController`.
 */
@MessageController()
export class PlaceOrderController {
  private readonly saga: SagaOrchestrator<PlaceOrderData>;
  /** Per batch transaction, the orders recorded ahead (`recordAhead`): by order id, whether it was new. */
  private readonly recordedFor = new WeakMap<Tx, Promise<Map<string, boolean>>>();

  constructor(sagas: Sagas) {
    this.saga = sagas.of(placeOrderSaga);
  }

  /** @throws IdempotencyKeyReusedError when the order exists with a different body (dead-lettered). */
  @EventPattern(Subjects.OrderCreated, { consumer: Consumers.orderPlacement })
  async placed(@Payload() order: OrderCreated, @Ctx() ctx: JetStreamContext): Promise<void> {
    const data = placeOrderData(order);
    if (await acceptOrder(ctx.tx, data, await this.recordedAhead(ctx.tx, data.orderId))) await this.saga.start(ctx.tx, data, ctx.message);
  }

  /**
   * Whether the batch's first message recorded this order ahead (true: new; false: it existed), once; undefined when
   * it did not. In a batch of more than one message the first records every order the batch's messages carry in one
   * statement, instead of one round trip per message; the first message of an order id takes it (a second message of
   * that id records as it goes, and finds the first one's order). Only validated bodies (the consumer validates each
   * before its batch) with an order id as Postgres writes it are recorded ahead.
   */
  private async recordedAhead(tx: Tx, orderId: string): Promise<boolean | undefined> {
    let recorded = this.recordedFor.get(tx);
    if (!recorded) this.recordedFor.set(tx, (recorded = recordAhead(tx)));
    const ahead = await recorded;
    const isNew = ahead.get(orderId);
    ahead.delete(orderId);
    return isNew;
  }
}

async function recordAhead(tx: Tx): Promise<Map<string, boolean>> {
  const byId = new Map<string, PlaceOrderData>();
  if (tx.messages.length > 1) {
    for (const { subject, body } of tx.messages) {
      if (subject !== Subjects.OrderCreated || !isValidated(body)) continue;
      const data = placeOrderData(body as OrderCreated);
      if (isCanonicalUuid(data.orderId) && !byId.has(data.orderId)) byId.set(data.orderId, data);
    }
  }
  if (byId.size === 0) return new Map();
  const created = await orders.insertPendingAll(tx, [...byId.values()]);
  return new Map([...byId.keys()].map((id) => [id, created.has(id)]));
}
