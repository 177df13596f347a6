import { Injectable } from '@nestjs/common';
import { Sql } from '@orderflow/persistence';

/** One notification to record: of a saga attempt's outcome, sent on `channel`. */
export interface NotificationRecord {
  sagaId: string;
  orderId: string;
  customerId: string;
  outcome: 'CONFIRMED' | 'CANCELLED';
  channel: string;
  message: string;
}

/** The notification app's table, `notifications`: one row per saga attempt's outcome. */
@Injectable()
export class NotificationsRepository {
  /** Records `n` unless its attempt has one already. @returns true when it was recorded now. */
  async recordOnce(tx: Sql, n: NotificationRecord): Promise<boolean> {
    const inserted = await tx.query<{ one: number }>(
      `insert into notifications (saga_id, order_id, outcome, customer_id, channel, message) values ($1, $2, $3, $4, $5, $6)
         on conflict (saga_id) do nothing returning 1 as one`,
      [n.sagaId, n.orderId, n.outcome, n.customerId, n.channel, n.message],
    );
    return inserted.length === 1;
  }
}
