import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { OrdersAndSagas1763800000400 } from './migrations/1763800000400-orders-and-sagas';
import { OperatorCommandsHandlers } from './operations/operator-commands.handlers';
import { SagaViewsQuery } from './operations/saga-views.query';
import { OrdersQuery } from './orders/orders.query';
import { PlaceOrderHandlers } from './place-order/place-order.handlers';
import { PlaceOrderOrchestrator } from './place-order/place-order.orchestrator';
import { SagaAttempts1763800000410 } from './migrations/1763800000410-saga-attempts';

export const orderMigrations = [OrdersAndSagas1763800000400, SagaAttempts1763800000410];

/** The order app: hosts the PlaceOrder saga orchestrator. Owns the `orders` schema. */
@Module({})
export class OrderModule {
  static register(config: Config): DynamicModule {
    return {
      module: OrderModule,
      imports: [ServiceModule.forService({ service: 'order', migrations: orderMigrations }, config)],
      providers: [PlaceOrderOrchestrator, PlaceOrderHandlers, OrdersQuery, SagaViewsQuery, OperatorCommandsHandlers],
    };
  }
}
