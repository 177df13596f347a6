import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Consumers, formatMoney, OrderCancelled, OrderConfirmed, Subjects } from '@orderflow/contracts';
import { ConsumerRunner, InboundMessage } from '@orderflow/messaging';
import { Transactor, Tx } from '@orderflow/persistence';
import { Notification, NotificationChannel } from '../channels/notification.channel';

/** Records one notification per order outcome (of each saga attempt) and hands it to the channel. */
@Injectable()
export class NotificationsHandlers implements OnApplicationBootstrap {
  constructor(
    private readonly tx: Transactor,
    private readonly runner: ConsumerRunner,
    private readonly channel: NotificationChannel,
  ) {}

  async onApplicationBootstrap() {
    const confirmed = Consumers.notificationOrderConfirmed;
    const cancelled = Consumers.notificationOrderCancelled;
    await this.runner.start(
      confirmed,
      this.tx.handler(confirmed, {
        [Subjects.OrderConfirmed]: (tx, { body }: InboundMessage<OrderConfirmed>) =>
          this.notify(tx, {
            orderId: body.orderId,
            sagaId: body.sagaId,
            customerId: body.customerId,
            outcome: 'CONFIRMED',
            message: `order ${body.orderId} confirmed: ${formatMoney(body.total, body.currency)} charged`,
          }),
      }),
    );
    await this.runner.start(
      cancelled,
      this.tx.handler(cancelled, {
        [Subjects.OrderCancelled]: (tx, { body }: InboundMessage<OrderCancelled>) =>
          this.notify(tx, {
            orderId: body.orderId,
            sagaId: body.sagaId,
            customerId: body.customerId,
            outcome: 'CANCELLED',
            message: `order ${body.orderId} cancelled: ${body.reason}`,
          }),
      }),
    );
  }

  /**
   * One notification per outcome of a saga attempt (a retried order gets a new one). Sends inside the
   * transaction: if the commit fails the message is redelivered and sent again (at-least-once).
   */
  private async notify(tx: Tx, n: Notification & { sagaId: string }): Promise<void> {
    const inserted = await tx.query(
      `insert into notifications (saga_id, order_id, outcome, customer_id, channel, message) values ($1, $2, $3, $4, $5, $6)
         on conflict (saga_id) do nothing returning 1`,
      [n.sagaId, n.orderId, n.outcome, n.customerId, this.channel.name, n.message],
    );
    if (inserted.length === 1) await this.channel.send(n);
  }
}
