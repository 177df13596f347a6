import { AppTopology } from '@orderflow/contracts/permissions';
import { Subjects } from '@orderflow/contracts/subjects';
import type { AppManifest } from '@orderflow/runtime/manifest';
import { OrdersAndSagas1763800000400 } from './migrations/1763800000400-orders-and-sagas';
import { SagaAttempts1763800000410 } from './migrations/1763800000410-saga-attempts';
import { SagaTrace1763800000420 } from './migrations/1763800000420-saga-trace';
import { SignedOperatorActions1763800000430 } from './migrations/1763800000430-signed-operator-actions';
import { ReplayReplacementBody1763800000440 } from './migrations/1763800000440-replay-replacement-body';
import { SagaInstances1763800000450 } from './migrations/1763800000450-saga-instances';

/** The order app: hosts the saga orchestrator and its sagas (PlaceOrder), the operators' commands and the saga views. */
export const orderManifest: AppManifest = {
  name: 'order',
  schema: 'orders',
  migrations: [
    OrdersAndSagas1763800000400,
    SagaAttempts1763800000410,
    SagaTrace1763800000420,
    SignedOperatorActions1763800000430,
    ReplayReplacementBody1763800000440,
    SagaInstances1763800000450,
  ],
  appendOnly: ['operator_actions'],
  // Operator keys are registered by `orderflow setup` (which holds the admin credentials), never by the app.
  readOnly: ['operators'],
  consumers: AppTopology.order.consumers,
  queries: [Subjects.QueryOrder, Subjects.QuerySagas, Subjects.QuerySaga, Subjects.QueryOperators, Subjects.QuerySagaTypes],
  metricsPort: 9461,
};
