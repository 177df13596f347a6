import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule, ServiceDefinition } from '@orderflow/runtime';
import { Stock1763800000100 } from './migrations/1763800000100-stock';
import { StockController } from './stock/stock.controller';
import { StockService } from './stock/stock.service';
import { ReservationsPerAttempt1763800000110 } from './migrations/1763800000110-reservations-per-attempt';

/** The inventory service's database: its migrations, oldest first. */
export const inventoryDatabase: ServiceDefinition = {
  service: 'inventory',
  migrations: [Stock1763800000100, ReservationsPerAttempt1763800000110],
};

/** The inventory app: stock per SKU, reservations per order. Owns the `inventory` schema. */
@Module({})
export class InventoryModule {
  static register(config: Config): DynamicModule {
    return {
      module: InventoryModule,
      imports: [ServiceModule.forService(inventoryDatabase, config)],
      controllers: [StockController],
      providers: [StockService],
    };
  }
}
