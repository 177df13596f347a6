import { applyDecorators, Controller, SetMetadata, UseFilters, UsePipes } from '@nestjs/common';
import { ErrorPassthroughFilter } from './error-passthrough.filter';
import { MessageValidationPipe } from './message-validation.pipe';

/** Metadata key `MessageController` sets on its class, which `JetStreamServer` checks at start-up. */
export const MESSAGE_CONTROLLER = 'orderflow:message-controller';

/**
 * A controller of JetStream messages and queries: Nest's `@Controller()` with the transport's exception filter
 * (`ErrorPassthroughFilter`: the consume loop sees a handler's own error, which its retry choice depends on) and
 * validation pipe (`MessageValidationPipe`) on every handler. `JetStreamServer` refuses at start-up a message
 * handler whose controller is not one. Source: Nest docs, "Custom decorators" (decorator composition).
 */
export const MessageController = (): ClassDecorator =>
  applyDecorators(Controller(), SetMetadata(MESSAGE_CONTROLLER, true), UseFilters(ErrorPassthroughFilter), UsePipes(MessageValidationPipe));
