import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { SagaModule } from '@orderflow/saga';
import { orderManifest } from './manifest';
import { DeadLetterReplays } from './operations/dead-letter-replays';
import { OperatorCommandsController } from './operations/operator-commands.controller';
import { OperatorKeys } from './operations/operator-keys';
import { OperatorsRepository } from './operations/operators.repository';
import { SagaCommands } from './operations/saga-commands';
import { SagaViewsController } from './operations/saga-views.controller';
import { OrdersController } from './orders/orders.controller';
import { orders, OrdersRepository } from './orders/orders.repository';
import { PlaceOrderController } from './place-order/place-order.controller';
import { placeOrderSaga } from './place-order/place-order.saga';
import { SagaRepliesController } from './saga/saga-replies.controller';

/** The order app: hosts the saga orchestrator and its sagas (PlaceOrder). Owns the `orders` schema. */
@Module({})
export class OrderModule {
  static register(config: Config): DynamicModule {
    return {
      module: OrderModule,
      imports: [ServiceModule.forService(orderManifest, config), SagaModule.forRoot([placeOrderSaga])],
      controllers: [PlaceOrderController, SagaRepliesController, OperatorCommandsController, OrdersController, SagaViewsController],
      providers: [
        // The instance the PlaceOrder definition uses too.
        { provide: OrdersRepository, useValue: orders },
        OperatorsRepository,
        SagaCommands,
        OperatorKeys,
        DeadLetterReplays,
      ],
    };
  }
}
