import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { MalformedMessageError, validateMessage } from '@orderflow/contracts';

/**
 * Validates a handler's `@Payload()` with class-validator, against the class of the subject it arrived on (the
 * transport decodes each body into an instance of its subject's `MessageTypes` class, or a query's `QueryTypes`
 * class, so a handler for several subjects still gets each one checked by its own class — what Nest's stock
 * `ValidationPipe` cannot do from the parameter's declared type). A failure throws `MalformedMessageError`: a
 * permanent error, so the message is dead-lettered at once (a query is answered `bad_request`), never retried.
 * Put on every handler by `@MessageController()`. Source: Nest docs, "Pipes" / "Class validator".
 */
@Injectable()
export class MessageValidationPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body') return value;
    if (typeof value !== 'object' || value === null) throw new MalformedMessageError(`payload is not a message object`);
    // A JetStream message was validated by the consumer before its batch began (a poison message never joins a
    // batch); a query's request is validated here.
    return validateMessage(value);
  }
}
