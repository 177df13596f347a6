import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { Stock1763800000100 } from './migrations/1763800000100-stock';
import { StockHandlers } from './stock/stock.handlers';
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
      providers: [StockService, StockHandlers],
    };
  }
}
