import 'reflect-metadata';
import { runServiceMain } from '@orderflow/runtime';
import { OrderModule } from './order.module';

void runServiceMain('order', (config) => OrderModule.register(config));
