import 'reflect-metadata';
import { runServiceMain } from '@orderflow/runtime';
import { InventoryModule } from './inventory.module';

void runServiceMain('inventory', (config) => InventoryModule.register(config));
