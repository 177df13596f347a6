import { Inject, Injectable } from '@nestjs/common';
import { Logger, LOGGER } from '@orderflow/runtime';

/** A notification to deliver to a customer. */
export interface Notification {
  orderId: string;
  customerId: string;
  outcome: 'CONFIRMED' | 'CANCELLED';
  message: string;
}

/**
 * Where notifications go. Implement this (e-mail, webhook, …) and provide it under `NotificationChannel`.
 * `send` may be called more than once for one notification (at-least-once); it throws to ask for a retry. The sends
 * of one consumer batch run concurrently, each once its record is written (`Tx.beforeCommit`), and the batch commits
 * after all of them.
 */
export abstract class NotificationChannel {
  abstract readonly name: string;
  abstract send(n: Notification): Promise<void>;
}

/** The default channel: writes the notification to the log. */
@Injectable()
export class LogChannel extends NotificationChannel {
  readonly name = 'log';

  constructor(@Inject(LOGGER) private readonly log: Logger) {
    super();
  }

  async send(n: Notification): Promise<void> {
    this.log.info({ orderId: n.orderId, customerId: n.customerId, outcome: n.outcome }, `notify ${n.customerId}: ${n.message}`);
  }
}
