import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { orderManifest } from './manifest';
import { DeadLetterReplays } from './operations/dead-letter-replays';
import { OperatorCommandsController } from './operations/operator-commands.controller';
import { OperatorKeys } from './operations/operator-keys';
import { SagaViewsController } from './operations/saga-views.controller';
import { OrdersController } from './orders/orders.controller';
import { orders, OrdersRepository } from './orders/orders.repository';
import { PlaceOrderController } from './place-order/place-order.controller';
import { placeOrderSaga } from './place-order/place-order.saga';
import { SagaDeadlines } from './saga/saga-deadlines';
import { SagaRepliesController } from './saga/saga-replies.controller';
import { SAGA_DEFINITIONS, Sagas } from './saga/sagas';
import { SagaStore } from './saga/saga.store';
import { OperatorsRepository } from './operations/operators.repository';

/** The order app: hosts the saga orchestrator and its sagas (PlaceOrder). Owns the `orders` schema. */
@Module({})
export class OrderModule {
  static register(config: Config): DynamicModule {
    return {
      module: OrderModule,
      imports: [ServiceModule.forService(orderManifest, config)],
      controllers: [PlaceOrderController, SagaRepliesController, OperatorCommandsController, OrdersController, SagaViewsController],
      providers: [
        { provide: SAGA_DEFINITIONS, useValue: [placeOrderSaga] },
        // The instance the PlaceOrder definition uses too.
        { provide: OrdersRepository, useValue: orders },
        SagaStore,
        OperatorsRepository,
        Sagas,
        SagaDeadlines,
        OperatorKeys,
        DeadLetterReplays,
      ],
    };
  }
}
