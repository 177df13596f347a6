import { CustomTransportStrategy, MessageHandler, Server } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ConsumerSpec, handlesSubject, isValidated, QueryTypes } from '@orderflow/contracts';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { BatchHandler, causedBy, ConsumerRunner, InboundMessage, PermanentError } from '@orderflow/messaging';
import { contextOf, inSpan, linkTo, PipelineMetrics, SpanKind } from '@orderflow/telemetry';
import { Transactor, Tx, Work } from '@orderflow/persistence';
import { JetStreamContext } from './jetstream.context';
import { QueryContext } from './query.context';
import { isReply } from './reply';
import { ServiceEndpoints } from './service.endpoints';

/** What `@EventPattern(subject, { consumer })` carries: the durable consumer the subject is pulled by. */
export interface JetStreamExtras {
  consumer: ConsumerSpec;
}

/**
 * Our JetStream machinery as a Nest custom transport strategy (Nest docs, "Custom transporters";
 * `packages/microservices/server/server-nats.ts`). Handlers are declared with
 * `@EventPattern(subject, { consumer: Consumers.x })`; `listen()` groups them by durable consumer and runs one pull
 * loop per consumer (`ConsumerRunner`: batches, ack after commit, nak with backoff, dead letters, held messages
 * while the database is away). Each batch runs in one Postgres transaction with the inbox claim (`Transactor`), and
 * each message goes through Nest's pipeline for its handler — guards, interceptors, pipes, exception filters —
 * with `@Payload()` the body (decoded into its subject's `MessageTypes` class and validated by `MessageValidationPipe`:
 * a bad body is dead-lettered at once) and `@Ctx()` a `JetStreamContext`. What a handler returns (`reply(...)`, an
 * array of them, or nothing) is written to the outbox in the same transaction with causation and correlation set.
 * Queries are `@MessagePattern(Subjects.QueryX)` handlers: each becomes an endpoint of the app's NATS service
 * (`ServiceEndpoints`), its request validated against `QueryTypes`, its result the reply.
 *
 * Traps handled (as `HorizonRepublic/nestjs-jetstream` does): an exception filter turns a throw into an Observable
 * error, which is unwrapped here and rethrown so the batch fails and retries; two handlers for one subject are
 * refused at start-up; a subject the consumer handles without a handler is refused at start-up.
 */
export class JetStreamServer extends Server implements CustomTransportStrategy {
  private runner?: ConsumerRunner;
  private transactor?: Transactor;
  private queries?: ServiceEndpoints;
  private metrics?: PipelineMetrics;

  /**
   * Hands the server the app's consumer runner, transactor, NATS service and metrics (created by Nest's DI, before
   * `listen`).
   */
  bind(runner: ConsumerRunner, transactor: Transactor, queries: ServiceEndpoints, metrics?: PipelineMetrics): void {
    this.runner = runner;
    this.transactor = transactor;
    this.queries = queries;
    this.metrics = metrics;
  }

  /** @throws Error when a subject has two handlers, a handler lacks its consumer, or the server was not bound. */
  async listen(callback: (err?: unknown) => void): Promise<void> {
    try {
      if (!this.runner || !this.transactor || !this.queries) throw new Error('JetStreamServer.bind(...) must be called before listen()');
      for (const [subject, handler] of this.messageHandlers) {
        if (handler.isEventHandler) continue;
        const type = QueryTypes[subject];
        if (!type) throw new Error(`@MessagePattern('${subject}') is not a query subject (see QueryTypes in libs/contracts)`);
        this.queries.serve(subject, type, async (q) => {
          const result = await lastValueFrom(this.transformToObservable(await handler(q, new QueryContext(subject))), {
            defaultValue: undefined,
          });
          if (!isValidated(q)) throw new Error(`handler of ${subject} takes no @Payload(), so its request was never validated`);
          return result;
        });
      }
      for (const [spec, works] of this.byConsumer()) await this.runner.start(spec, this.traced(spec, this.transactor.handler(spec, works)));
      callback();
    } catch (e) {
      callback(e);
    }
  }

  private byConsumer(): Map<ConsumerSpec, Record<string, Work>> {
    const out = new Map<ConsumerSpec, Record<string, Work>>();
    for (const [subject, handler] of this.messageHandlers) {
      if (!handler.isEventHandler) continue;
      const spec = (handler.extras as JetStreamExtras | undefined)?.consumer;
      if (!spec) throw new Error(`@EventPattern('${subject}') needs { consumer } (the durable consumer that pulls it)`);
      if (handler.next) throw new Error(`two handlers for ${subject}: a message is handled by one handler only`);
      if (!handlesSubject(spec, subject))
        throw new Error(`consumer ${spec.durable} does not handle ${subject} (see libs/contracts topology)`);
      const works = out.get(spec) ?? {};
      works[subject] = (tx, msg) => this.consume(spec, handler, msg, tx);
      out.set(spec, works);
    }
    return out;
  }

  /**
   * A batch transaction in a `<consumer> transaction` span (its size and duration measured): for a batch of one, a
   * child of the message's trace; for more, a root linked to each message's trace (OpenTelemetry messaging
   * semantic conventions, "batch receiving").
   */
  private traced(spec: ConsumerSpec, handle: BatchHandler): BatchHandler {
    return (msgs) => {
      const one = msgs.length === 1;
      const stop = this.metrics?.batchSeconds.startTimer({ consumer: spec.durable });
      this.metrics?.batchSize.observe({ consumer: spec.durable }, msgs.length);
      return inSpan(
        `${spec.durable} transaction`,
        {
          kind: SpanKind.INTERNAL,
          attributes: () => ({ 'messaging.consumer.group.name': spec.durable, 'messaging.batch.message_count': msgs.length }),
          links: one ? undefined : () => msgs.flatMap((m) => linkTo(m.traceparent)),
        },
        one ? contextOf(msgs[0].traceparent) : ROOT_CONTEXT,
        () => handle(msgs),
      ).finally(() => stop?.());
    };
  }

  /**
   * One message in a `<subject> process` consumer span (child of the producer span its `traceparent` names), with
   * its order, saga, trace, subject and stream position bound to every log line written meanwhile.
   */
  private consume(spec: ConsumerSpec, handler: MessageHandler, msg: InboundMessage, tx: Tx): Promise<void> {
    const attributes = () => ({
      'messaging.system': 'nats',
      'messaging.destination.name': msg.subject,
      'messaging.consumer.group.name': spec.durable,
      'messaging.message.id': msg.messageId,
      'messaging.nats.stream': msg.stream,
      'messaging.nats.stream_sequence': msg.sequence,
      'messaging.nats.delivery_attempt': msg.attempt,
      'orderflow.order_id': msg.correlationId,
      'orderflow.saga_id': msg.sagaId,
    });
    const log = { orderId: msg.correlationId, sagaId: msg.sagaId, subject: msg.subject, stream: msg.stream, seq: msg.sequence };
    const stop = this.metrics?.handlerSeconds.startTimer({ subject: msg.subject });
    // A message that carries no trace (published by a client that does not trace) joins its batch's.
    const parent = contextOf(msg.traceparent, context.active());
    return inSpan(`${msg.subject} process`, { kind: SpanKind.CONSUMER, attributes, log }, parent, () =>
      this.invoke(handler, msg, tx),
    ).finally(() => stop?.());
  }

  /** Runs one message through the handler's Nest pipeline and queues what it returns in the outbox. */
  private async invoke(handler: MessageHandler, msg: InboundMessage, tx: Tx): Promise<void> {
    const result = await lastValueFrom(this.transformToObservable(await handler(msg.body, new JetStreamContext(msg, tx))), {
      defaultValue: undefined,
    });
    // The consumer validated the body before the batch (a handler's @Payload() goes through MessageValidationPipe too):
    // should a body ever reach a handler unvalidated, refuse to commit what it did (dead-lettered, replayable).
    if (!isValidated(msg.body))
      throw new PermanentError(
        `handler of ${msg.subject} takes no @Payload(), so its message was never validated; nothing it did was committed`,
      );
    const replies: unknown[] = result === undefined || result === null ? [] : Array.isArray(result) ? result : [result];
    for (const r of replies) {
      // A handler bug no redelivery can fix: dead-letter the message at once (replayable once the handler is fixed).
      if (!isReply(r))
        throw new PermanentError(
          `handler of ${msg.subject} returned ${JSON.stringify(r)}; return reply(subject, body), an array of them, or nothing`,
        );
      const { headers, ...message } = r;
      tx.send({ ...message, ...causedBy(msg, headers) });
    }
  }

  /** Stops pulling; in-flight batches finish and are acked (the outbox and connections close with the app). */
  async close(): Promise<void> {
    await this.runner?.stop();
  }

  on(): never {
    throw new Error('JetStreamServer has no events to listen to');
  }

  unwrap<T>(): T {
    throw new Error('JetStreamServer wraps no client of its own');
  }
}
