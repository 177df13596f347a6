export { JetStreamServer } from './jetstream.server';
export type { JetStreamExtras } from './jetstream.server';
export { JetStreamContext } from './jetstream.context';
export { QueryContext } from './query.context';
export { reply } from './reply';
export type { Reply } from './reply';
export { ErrorPassthroughFilter } from './error-passthrough.filter';
