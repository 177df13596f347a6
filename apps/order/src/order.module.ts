import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule, ServiceDefinition } from '@orderflow/runtime';
import { OrdersAndSagas1763800000400 } from './migrations/1763800000400-orders-and-sagas';
import { DeadLetterReplays } from './operations/dead-letter-replays';
import { OperatorCommandsController } from './operations/operator-commands.controller';
import { OperatorKeys } from './operations/operator-keys';
import { SagaViewsController } from './operations/saga-views.controller';
import { OrdersController } from './orders/orders.controller';
import { PlaceOrderController } from './place-order/place-order.controller';
import { placeOrderSaga } from './place-order/place-order.saga';
import { SagaDeadlines } from './saga/saga-deadlines';
import { SagaRepliesController } from './saga/saga-replies.controller';
import { SAGA_DEFINITIONS, Sagas } from './saga/sagas';
import { SagaAttempts1763800000410 } from './migrations/1763800000410-saga-attempts';
import { SagaTrace1763800000420 } from './migrations/1763800000420-saga-trace';
import { SignedOperatorActions1763800000430 } from './migrations/1763800000430-signed-operator-actions';
import { ReplayReplacementBody1763800000440 } from './migrations/1763800000440-replay-replacement-body';

/** The order service's database: its migrations, oldest first, and the tables its runtime role may only append to or read. */
export const orderDatabase: ServiceDefinition = {
  service: 'order',
  migrations: [
    OrdersAndSagas1763800000400,
    SagaAttempts1763800000410,
    SagaTrace1763800000420,
    SignedOperatorActions1763800000430,
    ReplayReplacementBody1763800000440,
  ],
  appendOnly: ['operator_actions'],
  // Operator keys are registered by `orderflow setup` (which holds the admin credentials), never by the app.
  readOnly: ['operators'],
};

/** The order app: hosts the saga orchestrator and its sagas (PlaceOrder). Owns the `orders` schema. */
@Module({})
export class OrderModule {
  static register(config: Config): DynamicModule {
    return {
      module: OrderModule,
      imports: [ServiceModule.forService(orderDatabase, config)],
      controllers: [PlaceOrderController, SagaRepliesController, OperatorCommandsController, OrdersController, SagaViewsController],
      providers: [{ provide: SAGA_DEFINITIONS, useValue: [placeOrderSaga] }, Sagas, SagaDeadlines, OperatorKeys, DeadLetterReplays],
    };
  }
}
