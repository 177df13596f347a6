export * from './errors';
export * from './failure';
export * from './message';
export * from './jetstream.client';
export * from './dead-letter';
export * from './consumer.runner';
export * from './query.responder';
