import { AppTopology } from '@orderflow/contracts/permissions';
import type { AppManifest } from '@orderflow/runtime/manifest';
import { Notifications1763800000300 } from './migrations/1763800000300-notifications';
import { NotificationPerAttempt1763800000310 } from './migrations/1763800000310-notification-per-attempt';

/** The notification app: one notification per order outcome. */
export const notificationManifest: AppManifest = {
  name: 'notification',
  schema: 'notifications',
  migrations: [Notifications1763800000300, NotificationPerAttempt1763800000310],
  consumers: AppTopology.notification.consumers,
  queries: [],
  metricsPort: 9464,
};
