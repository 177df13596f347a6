import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { OrdersAndSagas1763800000400 } from './migrations/1763800000400-orders-and-sagas';
import { OperatorCommandsController } from './operations/operator-commands.controller';
import { SagaViewsController } from './operations/saga-views.controller';
import { OrdersController } from './orders/orders.controller';
import { PlaceOrderController } from './place-order/place-order.controller';
import { PlaceOrderOrchestrator } from './place-order/place-order.orchestrator';
import { SagaDeadlines } from './place-order/saga-deadlines';
import { SagaAttempts1763800000410 } from './migrations/1763800000410-saga-attempts';

export const orderMigrations = [OrdersAndSagas1763800000400, SagaAttempts1763800000410];

/** The order app: hosts the PlaceOrder saga orchestrator. Owns the `orders` schema. */
@Module({})
export class OrderModule {
  static register(config: Config): DynamicModule {
    return {
      module: OrderModule,
      imports: [ServiceModule.forService({ service: 'order', migrations: orderMigrations }, config)],
      controllers: [PlaceOrderController, OperatorCommandsController, OrdersController, SagaViewsController],
      providers: [PlaceOrderOrchestrator, SagaDeadlines],
    };
  }
}
