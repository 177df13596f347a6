import { DynamicModule, Module } from '@nestjs/common';
import { Config, ServiceModule } from '@orderflow/runtime';
import { inventoryManifest } from './manifest';
import { StockController } from './stock/stock.controller';
import { StockRepository } from './stock/stock.repository';
import { StockService } from './stock/stock.service';

/** The inventory app: stock per SKU, reservations per order. Owns the `inventory` schema. */
@Module({})
export class InventoryModule {
  static register(config: Config): DynamicModule {
    return {
      module: InventoryModule,
      imports: [ServiceModule.forService(inventoryManifest, config)],
      controllers: [StockController],
      providers: [StockService, StockRepository],
    };
  }
}
