import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule, ServiceDefinition } from '@orderflow/runtime';
import { LogChannel, NotificationChannel } from './channels/notification.channel';
import { Notifications1763800000300 } from './migrations/1763800000300-notifications';
import { NotificationsController } from './notifications/notifications.controller';
import { NotificationPerAttempt1763800000310 } from './migrations/1763800000310-notification-per-attempt';

/** The notification service's database: its migrations, oldest first. */
export const notificationDatabase: ServiceDefinition = {
  service: 'notification',
  migrations: [Notifications1763800000300, NotificationPerAttempt1763800000310],
};

/** The notification app: one notification per order outcome. Owns the `notifications` schema. */
@Module({})
export class NotificationModule {
  static register(config: Config): DynamicModule {
    return {
      module: NotificationModule,
      imports: [ServiceModule.forService(notificationDatabase, config)],
      controllers: [NotificationsController],
      providers: [{ provide: NotificationChannel, useClass: LogChannel }],
    };
  }
}
