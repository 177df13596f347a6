import type { AppName } from '@orderflow/contracts/permissions';
import type { AppManifest } from '@orderflow/runtime/manifest';
import { inventoryManifest } from './inventory/src/manifest';
import { notificationManifest } from './notification/src/manifest';
import { orderManifest } from './order/src/manifest';
import { paymentManifest } from './payment/src/manifest';

/**
 * Every app of the pipeline, by name: what `orderflow setup`, `db migrate` and the CLI read (one line per app; keyed by
 * `AppName`, so the broker topology and this list cannot disagree).
 */
export const AppManifests: Record<AppName, AppManifest> = {
  order: orderManifest,
  inventory: inventoryManifest,
  payment: paymentManifest,
  notification: notificationManifest,
};
