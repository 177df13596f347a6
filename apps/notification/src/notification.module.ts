import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { notificationManifest } from './manifest';
import { LogChannel, NotificationChannel } from './channels/notification.channel';
import { NotificationsController } from './notifications/notifications.controller';
import { NotificationsRepository } from './notifications/notifications.repository';

/** The notification app: one notification per order outcome. Owns the `notifications` schema. */
@Module({})
export class NotificationModule {
  static register(config: Config): DynamicModule {
    return {
      module: NotificationModule,
      imports: [ServiceModule.forService(notificationManifest, config)],
      controllers: [NotificationsController],
      providers: [{ provide: NotificationChannel, useClass: LogChannel }, NotificationsRepository],
    };
  }
}
