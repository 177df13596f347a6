import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { Stock1763800000100 } from './migrations/1763800000100-stock';
import { StockController } from './stock/stock.controller';
import { StockService } from './stock/stock.service';
import { ReservationsPerAttempt1763800000110 } from './migrations/1763800000110-reservations-per-attempt';

export const inventoryMigrations = [Stock1763800000100, ReservationsPerAttempt1763800000110];

/** The inventory app: stock per SKU, reservations per order. Owns the `inventory` schema. */
@Module({})
export class InventoryModule {
  static register(config: Config): DynamicModule {
    return {
      module: InventoryModule,
      imports: [ServiceModule.forService({ service: 'inventory', migrations: inventoryMigrations }, config)],
      controllers: [StockController],
      providers: [StockService],
    };
  }
}
