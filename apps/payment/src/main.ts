import 'reflect-metadata';
import { runServiceMain } from '@orderflow/runtime';
import { PaymentModule } from './payment.module';

void runServiceMain('payment', (config) => PaymentModule.register(config));
