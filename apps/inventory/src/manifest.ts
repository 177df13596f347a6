import { AppTopology } from '@orderflow/contracts/permissions';
import { Subjects } from '@orderflow/contracts/subjects';
import type { AppManifest } from '@orderflow/runtime/manifest';
import { Stock1763800000100 } from './migrations/1763800000100-stock';
import { ReservationsPerAttempt1763800000110 } from './migrations/1763800000110-reservations-per-attempt';

/** The inventory app: stock per SKU, reservations per saga attempt. */
export const inventoryManifest: AppManifest = {
  name: 'inventory',
  schema: 'inventory',
  migrations: [Stock1763800000100, ReservationsPerAttempt1763800000110],
  consumers: AppTopology.inventory.consumers,
  queries: [Subjects.QueryStock, Subjects.QueryReservations],
  metricsPort: 9462,
};
