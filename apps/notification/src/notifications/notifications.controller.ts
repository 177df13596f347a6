import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Consumers, formatMoney, OrderCancelled, OrderConfirmed, Subjects } from '@orderflow/contracts';
import { Tx } from '@orderflow/persistence';
import { JetStreamContext, MessageController } from '@orderflow/transport';
import { Notification, NotificationChannel } from '../channels/notification.channel';
import { NotificationsRepository } from './notifications.repository';

/**
 * Records one notification per order outcome (of each saga attempt) and hands it to the channel. Each handler runs
 * in its consumer's batch transaction (`ctx.tx`), after the inbox claim; it causes no messages.
 */
@MessageController()
export class NotificationsController {
  constructor(
    private readonly channel: NotificationChannel,
    private readonly notifications: NotificationsRepository,
  ) {}

  @EventPattern(Subjects.OrderConfirmed, { consumer: Consumers.notificationOrderConfirmed })
  confirmed(@Payload() body: OrderConfirmed, @Ctx() ctx: JetStreamContext): void {
    const message = `order ${body.orderId} confirmed: ${formatMoney(body.total, body.currency)} charged`;
    this.notify(ctx.tx, { orderId: body.orderId, sagaId: body.sagaId, customerId: body.customerId, outcome: 'CONFIRMED', message });
  }

  @EventPattern(Subjects.OrderCancelled, { consumer: Consumers.notificationOrderCancelled })
  cancelled(@Payload() body: OrderCancelled, @Ctx() ctx: JetStreamContext): void {
    const message = `order ${body.orderId} cancelled: ${body.reason}`;
    this.notify(ctx.tx, { orderId: body.orderId, sagaId: body.sagaId, customerId: body.customerId, outcome: 'CANCELLED', message });
  }

  /**
   * One notification per outcome of a saga attempt (a retried order gets a new one). Sends inside the
   * transaction: if the commit fails the message is redelivered and sent again (at-least-once). Not waited for here
   * (`Tx.beforeCommit`): the records of a batch's notifications go to Postgres together, in one round trip.
   */
  private notify(tx: Tx, n: Notification & { sagaId: string }): void {
    const recorded = this.notifications.recordOnce(tx, { ...n, channel: this.channel.name });
    tx.beforeCommit(recorded.then((now) => (now ? this.channel.send(n) : undefined)));
  }
}
