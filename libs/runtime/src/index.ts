export * from './config';
export * from './logger';
export * from './service.module';
export * from './bootstrap';
