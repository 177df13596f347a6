import 'reflect-metadata';
import { runServiceMain } from '@orderflow/runtime';
import { NotificationModule } from './notification.module';

void runServiceMain('notification', (config) => NotificationModule.register(config));
