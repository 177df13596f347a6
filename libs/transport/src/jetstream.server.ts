import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { CustomTransportStrategy, MessageHandler, Server } from '@nestjs/microservices';
import { PATTERN_METADATA } from '@nestjs/microservices/constants';
import { RpcParamtype } from '@nestjs/microservices/enums/rpc-paramtype.enum';
import { lastValueFrom } from 'rxjs';
import { ConsumerSpec, handlesSubject, QueryTypes } from '@orderflow/contracts';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { BatchHandler, causedBy, ConsumerRunner, InboundMessage, JetStreamClient, PermanentError } from '@orderflow/messaging';
import type { NatsConnection, Status } from '@orderflow/messaging/nats';
import { contextOf, inSpan, linkTo, PipelineMetrics, SpanKind } from '@orderflow/telemetry';
import { Transactor, Tx, Work } from '@orderflow/persistence';
import { JetStreamContext } from './jetstream.context';
import { MESSAGE_CONTROLLER } from './message-controller.decorator';
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
 * A provider of the app, built by Nest's DI (`ServiceModule`); `unwrap()` is its NATS connection, `on()` and `status`
 * report the connection's events.
 *
 * Traps handled (as `HorizonRepublic/nestjs-jetstream` does): an exception filter turns a throw into an Observable
 * error, which is unwrapped here and rethrown so the batch fails and retries. Refused at start-up, before anything is
 * consumed: two handlers for one subject, a subject the consumer handles without a handler, a handler without
 * `@Payload()` or outside a `@MessageController()`, and handlers that disagree with the app's manifest.
 */
export class JetStreamServer extends Server<JetStreamEvents, JetStreamStatus> implements CustomTransportStrategy {
  /** Built by Nest's DI (`ServiceModule`), as Nest's own `ServerNats` is handed its options: nothing to bind later. */
  constructor(private readonly deps: JetStreamServerDeps) {
    super();
  }

  /**
   * Checks every handler (each in a `@MessageController()`, each taking its `@Payload()`; the app's handlers and its
   * manifest's consumers and queries agree), serves the queries and starts one pull loop per consumer.
   * @throws Error (through `callback`) naming what is wrong; nothing is consumed then.
   */
  async listen(callback: (err?: unknown) => void): Promise<void> {
    try {
      const { runner, transactor, endpoints, declared } = this.deps;
      this.checkHandlers();
      const queries = [...this.messageHandlers].filter(([, handler]) => !handler.isEventHandler);
      for (const [subject] of queries)
        if (!QueryTypes[subject])
          throw new Error(`@MessagePattern('${subject}') is not a query subject (see QueryTypes in libs/contracts)`);
      const consumers = this.byConsumer();
      agree(
        `${declared.name}'s manifest`,
        'queries',
        declared.queries,
        queries.map(([subject]) => subject),
      );
      agree(
        `${declared.name}'s manifest`,
        'consumers',
        declared.consumers.map((c) => `${c.stream}/${c.durable}`),
        [...consumers.keys()].map((c) => `${c.stream}/${c.durable}`),
      );
      // Checked: now serve and consume.
      for (const [subject, handler] of queries)
        endpoints.serve(subject, QueryTypes[subject], async (q) =>
          lastValueFrom(this.transformToObservable(await handler(q, new QueryContext(subject))), { defaultValue: undefined }),
        );
      for (const [spec, works] of consumers) await runner.start(spec, this.traced(spec, transactor.handler(spec, works)));
      this.deps.client.events.on('disconnect', () => this._status$.next('disconnected'));
      this.deps.client.events.on('reconnect', () => this._status$.next('connected'));
      this._status$.next('connected');
      callback();
    } catch (e) {
      callback(e);
    }
  }

  /**
   * Every handler method of the app's controllers (found with Nest's `DiscoveryService`, as Nest's own listeners are):
   * in a `@MessageController()` (its exception filter and validation pipe), and taking a `@Payload()`.
   * @throws Error naming the first that is not.
   */
  private checkHandlers(): void {
    const { discovery, scanner } = this.deps;
    for (const { instance, metatype } of discovery.getControllers()) {
      if (!instance || typeof metatype !== 'function') continue;
      const proto = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const method of scanner.getAllMethodNames(proto)) {
        const patterns = Reflect.getMetadata(PATTERN_METADATA, proto[method] as object) as unknown[] | undefined;
        if (!patterns) continue;
        const where = `${metatype.name}.${method} (${patterns.map((p) => JSON.stringify(p)).join(', ')})`;
        if (!Reflect.getMetadata(MESSAGE_CONTROLLER, metatype))
          throw new Error(`${where}: ${metatype.name} must be a @MessageController(), so its errors and payloads are handled as messages`);
        const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, metatype, method) ?? {}) as Record<string, unknown>;
        if (!Object.keys(args).some((k) => Number(k.split(':')[0]) === RpcParamtype.PAYLOAD))
          throw new Error(`${where} takes no @Payload(): its message would never be validated`);
      }
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
      const stop = this.deps.metrics?.batchSeconds.startTimer({ consumer: spec.durable });
      this.deps.metrics?.batchSize.observe({ consumer: spec.durable }, msgs.length);
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
    const stop = this.deps.metrics?.handlerSeconds.startTimer({ subject: msg.subject });
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
    await this.deps.runner.stop();
  }

  /** Listens to the NATS connection's status events (`disconnect`, `reconnect`, `error`, …), as Nest's `ServerNats` does. */
  on<K extends keyof JetStreamEvents>(event: K, callback: JetStreamEvents[K]): void {
    this.deps.client.events.on(event as Status['type'], callback as (status: Status) => void);
  }

  /** The NATS connection (nats.js v3 `NatsConnection`). */
  unwrap<T = NatsConnection>(): T {
    return this.deps.client.nc as T;
  }
}

/** Status events of the server's NATS connection, by nats.js status type. */
export type JetStreamEvents = { [K in Status['type']]: (status: Extract<Status, { type: K }>) => void };
/** What `JetStreamServer.status` emits. */
export type JetStreamStatus = 'connected' | 'disconnected';

/** What the server is built with: the app's machinery (from Nest's DI) and what the app declares (its manifest). */
export interface JetStreamServerDeps {
  runner: ConsumerRunner;
  transactor: Transactor;
  endpoints: ServiceEndpoints;
  client: JetStreamClient;
  discovery: DiscoveryService;
  scanner: MetadataScanner;
  /** The app's name, and the consumers and query subjects its manifest declares. */
  declared: { name: string; consumers: readonly ConsumerSpec[]; queries: readonly string[] };
  metrics?: PipelineMetrics;
}

/** @throws Error when the `what` handled differ from the `what` declared, naming both sides' extras. */
function agree(where: string, what: string, declared: readonly string[], handled: readonly string[]): void {
  const undeclared = handled.filter((x) => !declared.includes(x));
  const unhandled = declared.filter((x) => !handled.includes(x));
  if (undeclared.length || unhandled.length)
    throw new Error(
      `${where} and its handlers disagree on ${what}:${undeclared.length ? ` handled but not declared: ${undeclared.join(', ')};` : ''}${unhandled.length ? ` declared but not handled: ${unhandled.join(', ')}` : ''}`,
    );
}
