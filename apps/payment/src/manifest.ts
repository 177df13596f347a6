import { AppTopology } from '@orderflow/contracts/permissions';
import { Subjects } from '@orderflow/contracts/subjects';
import type { AppManifest } from '@orderflow/runtime/manifest';
import { Accounts1763800000200 } from './migrations/1763800000200-accounts';
import { LedgerPerAttempt1763800000210 } from './migrations/1763800000210-ledger-per-attempt';

/** The payment app: customer balances and the ledger of deposits, charges and refunds (append-only). */
export const paymentManifest: AppManifest = {
  name: 'payment',
  schema: 'payments',
  migrations: [Accounts1763800000200, LedgerPerAttempt1763800000210],
  appendOnly: ['ledger'],
  consumers: AppTopology.payment.consumers,
  queries: [Subjects.QueryAccount, Subjects.QueryCharges],
  metricsPort: 9463,
};
