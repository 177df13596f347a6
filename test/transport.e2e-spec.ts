import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import {
  CallHandler,
  Controller,
  DynamicModule,
  ExecutionContext,
  INestApplication,
  Injectable,
  Module,
  NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { connect, headers, jetstream, JetStreamManager, jetstreamManager, NatsConnection } from '@orderflow/messaging/nats';
import { Observable, tap } from 'rxjs';
import { Consumers, Namespace, OrderCancelled, OrderConfirmed, Subjects } from '@orderflow/contracts';
import { deleteNamespaceStreams, PermanentError } from '@orderflow/messaging';
import { dropDatabase } from '@orderflow/persistence';
import { adminDb, Config, loadConfig, migrateServiceDatabase, ServiceModule, startService } from '@orderflow/runtime';
import { PipelineMetrics } from '@orderflow/telemetry';
import { JetStreamContext, JetStreamServer, MessageController, reply } from '@orderflow/transport';
import { notificationManifest } from '../apps/notification/src/manifest';
import { DataSource } from 'typeorm';
import { provisionNats } from './support/provision';
import { waitFor } from './support/stack';

/** What the test controller saw, per order id. */
const seen = new Map<string, { attempts: number[]; intercepted: number; tx: boolean }>();
// Any subject with a message class will do (`reply` only takes those); this one's stream exists in the test.
const TEST_EVENT = Subjects.OrderSagaResumed;

/** Counts, per message, that Nest's interceptor chain ran around the handler. */
@Injectable()
class CountingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const body = context.switchToRpc().getData<OrderConfirmed>();
    const entry = seen.get(body.orderId) ?? { attempts: [], intercepted: 0, tx: false };
    seen.set(body.orderId, entry);
    return next.handle().pipe(tap(() => entry.intercepted++));
  }
}

/** Behaviour by customer: `ok` replies, `flaky` fails its first delivery, `poison` throws a PermanentError. */
@MessageController()
@UseInterceptors(CountingInterceptor)
class TestController {
  @EventPattern(Subjects.OrderConfirmed, { consumer: Consumers.notificationOrderConfirmed })
  async confirmed(@Payload() body: OrderConfirmed, @Ctx() ctx: JetStreamContext) {
    const entry = seen.get(body.orderId)!;
    entry.attempts.push(ctx.attempt);
    entry.tx = (await ctx.tx.query<{ one: number }>('select 1 as one'))[0].one === 1;
    if (body.customerId === 'poison') throw new PermanentError(`cannot handle order ${body.orderId}`);
    if (body.customerId === 'flaky' && ctx.attempt === 1) throw new Error('flaky: first delivery fails');
    return reply(TEST_EVENT, { orderId: body.orderId, sagaId: body.sagaId, step: `attempt ${ctx.attempt}` });
  }

  @EventPattern(Subjects.OrderCancelled, { consumer: Consumers.notificationOrderCancelled })
  async cancelled(@Payload() _body: OrderCancelled, @Ctx() ctx: JetStreamContext) {
    await ctx.tx.query(`insert into inbox (consumer, message_id) values ('handled-cancelled', 'x')`);
    return undefined;
  }
}

@MessageController()
class DuplicateController {
  @EventPattern(Subjects.OrderCancelled, { consumer: Consumers.notificationOrderCancelled })
  again(@Payload() _body: OrderCancelled) {
    return undefined;
  }
}

/** Only OrderConfirmed: the notification manifest's cancelled consumer is left without a handler. */
@MessageController()
class ConfirmedOnlyController {
  @EventPattern(Subjects.OrderConfirmed, { consumer: Consumers.notificationOrderConfirmed })
  confirmed(@Payload() _body: OrderConfirmed) {
    return undefined;
  }
}

@MessageController()
class NoPayloadController {
  @EventPattern(Subjects.OrderCancelled, { consumer: Consumers.notificationOrderCancelled })
  cancelled(@Ctx() _ctx: JetStreamContext) {
    return undefined;
  }
}

/** A plain `@Controller()`: without the transport's filter, a handler's error would reach the consume loop disguised. */
@Controller()
class PlainController {
  @EventPattern(Subjects.OrderCancelled, { consumer: Consumers.notificationOrderCancelled })
  cancelled(@Payload() _body: OrderCancelled) {
    return undefined;
  }
}

const testModule = (controllers: (new () => unknown)[]) => {
  @Module({})
  class TransportTestModule {
    static register(config: Config): DynamicModule {
      return {
        module: TransportTestModule,
        imports: [ServiceModule.forService(notificationManifest, config)],
        controllers,
        providers: [CountingInterceptor],
      };
    }
  }
  return (config: Config) => TransportTestModule.register(config);
};

/**
 * The JetStream transport on its own: handlers declared with @EventPattern run through Nest's pipeline per message,
 * inside the batch transaction, and keep every guarantee of the consume loop (retry, dead letter, outbox replies).
 */
describe('JetStream transport', () => {
  const id = `tr${process.pid}${randomUUID().slice(0, 6)}`;
  let config: Config;
  let app: INestApplication;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let ns: Namespace;

  beforeAll(async () => {
    config = loadConfig({
      ...process.env,
      ORDERFLOW_NAMESPACE: id,
      PGDATABASE: `orderflow_${id}`,
      LOG_LEVEL: 'silent',
      MAX_DELIVER: '3',
      RETRY_BACKOFF_MS: '50,100',
      OUTBOX_POLL_MS: '200',
    });
    ns = new Namespace(id);
    nc = await connect({ servers: config.NATS_URL });
    jsm = await jetstreamManager(nc);
    await provisionNats(config);
    await migrateServiceDatabase(config, notificationManifest);
    app = await startService(testModule([TestController]), config);
  });
  afterAll(async () => {
    await app?.close();
    await deleteNamespaceStreams(jsm, ns);
    await nc.close();
    await dropDatabase(adminDb(config));
  });

  const publish = async (customerId: string, patch: object = {}, subject: string = Subjects.OrderConfirmed) => {
    const body = { orderId: randomUUID(), sagaId: randomUUID(), customerId, total: 100, currency: 'USD', ...patch };
    const h = headers();
    h.set('Correlation-Id', body.orderId);
    await jetstream(nc).publish(ns.subject(subject), Buffer.from(JSON.stringify(body)), { msgID: randomUUID(), headers: h });
    return body;
  };
  const deadLetters = async () => (await jsm.streams.info(ns.stream('DLQ'))).state.messages;
  const lastDeadLetter = async (subject: string) =>
    (await jsm.streams.getMessage(ns.stream('DLQ'), { last_by_subj: ns.subject(Subjects.deadLetter(subject)) }))!;

  it('runs each message through the interceptors and the handler in the batch transaction, and writes its reply to the outbox with causation and correlation', async () => {
    const body = await publish('ok');
    let m: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>> | undefined;
    await waitFor(async () => {
      m = await jsm.streams.getMessage(ns.stream('ORDER'), { last_by_subj: ns.subject(TEST_EVENT) }).catch(() => undefined);
      return !!m && JSON.parse(Buffer.from(m.data).toString()).orderId === body.orderId;
    });
    expect(seen.get(body.orderId)).toEqual({ attempts: [1], intercepted: 1, tx: true });
    expect(m!.header.get('Causation-Id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(m!.header.get('Correlation-Id')).toBe(body.orderId);
  });

  it('retries a handler that throws (nak with backoff) and dead-letters a PermanentError at once, keeping its class', async () => {
    const flaky = await publish('flaky');
    const poison = await publish('poison');
    await waitFor(() => (seen.get(flaky.orderId)?.attempts.length ?? 0) === 2);
    expect(seen.get(flaky.orderId)!.attempts).toEqual([1, 2]);
    let letters = 0;
    await waitFor(async () => (letters = (await jsm.streams.info(ns.stream('DLQ'))).state.messages) === 1);
    const letter = await lastDeadLetter(Subjects.OrderConfirmed);
    expect(letter.header.get('Dlq-Attempts')).toBe('1');
    expect(letter.header.get('Dlq-Error')).toMatch(/^PermanentError: cannot handle order/);
    expect(seen.get(poison.orderId)!.attempts).toEqual([1]);
    expect(letters).toBe(1);
  });

  it("validates @Payload() against its subject's class in the pipeline: a bad body is dead-lettered at once and the handler never runs", async () => {
    const before = await deadLetters();
    const bad = await publish('ok', { total: -5, extra: 'field' });
    await waitFor(async () => (await deadLetters()) === before + 1);
    const letter = await lastDeadLetter(Subjects.OrderConfirmed);
    expect(letter.header.get('Dlq-Attempts')).toBe('1');
    expect(letter.header.get('Dlq-Error')).toMatch(
      /^MalformedMessageError: invalid OrderConfirmed: .*total.*extra|^MalformedMessageError: invalid OrderConfirmed: .*extra.*total/,
    );
    // The interceptor ran (it comes before pipes); the handler did not.
    expect(seen.get(bad.orderId)?.attempts ?? []).toEqual([]);
  });

  it('validates every message before its batch: the handler acts only on valid ones', async () => {
    const db = app.get(DataSource);
    const handled = async () =>
      (await db.query(`select count(*)::int as n from inbox where consumer = 'handled-cancelled'`))[0].n as number;
    const before = await deadLetters();
    await publish('ok', { reason: 'out_of_stock' }, Subjects.OrderCancelled); // an OrderConfirmed's total and currency
    await waitFor(async () => (await deadLetters()) === before + 1);
    const letter = await lastDeadLetter(Subjects.OrderCancelled);
    expect(letter.header.get('Dlq-Error')).toMatch(/^MalformedMessageError: invalid OrderCancelled: .*should not exist/);
    expect(await handled()).toBe(0);
    await publish('ok', { reason: 'out_of_stock', total: undefined, currency: undefined }, Subjects.OrderCancelled);
    await waitFor(async () => (await handled()) === 1);
  });

  it('holds a message whose dead letter the full DLQ refuses, alive and unacked past the ack wait, and stores it once there is room', async () => {
    const dlq = ns.stream('DLQ');
    const { config: dlqConfig, state } = await jsm.streams.info(dlq);
    // Full: the DLQ (discard: new) refuses anything more.
    await jsm.streams.update(dlq, { ...dlqConfig, max_bytes: Math.max(1, state.bytes) });
    const held = () =>
      app
        .get(PipelineMetrics)
        .deadLettersHeld.get()
        .then((g) => g.values.reduce((n, v) => n + v.value, 0));
    try {
      const poison = await publish('poison');
      await waitFor(async () => (await held()) === 1);
      // Past the ack wait: not redelivered (the handler ran once), not dead-lettered, still unacked.
      await new Promise((r) => setTimeout(r, config.ACK_WAIT_MS + 1000));
      expect(seen.get(poison.orderId)!.attempts).toEqual([1]);
      expect(await deadLetters()).toBe(state.messages);
      const consumer = await jsm.consumers.info(ns.stream('ORDER'), Consumers.notificationOrderConfirmed.durable);
      expect(consumer.num_ack_pending).toBe(1);
      expect(consumer.num_redelivered).toBe(0);
      await jsm.streams.update(dlq, dlqConfig);
      await waitFor(async () => (await deadLetters()) === state.messages + 1);
      const letter = await lastDeadLetter(Subjects.OrderConfirmed);
      expect(JSON.parse(Buffer.from(letter.data).toString()).orderId).toBe(poison.orderId);
      expect(letter.header.get('Dlq-Attempts')).toBe('1');
      await waitFor(async () => (await held()) === 0);
      await waitFor(
        async () => (await jsm.consumers.info(ns.stream('ORDER'), Consumers.notificationOrderConfirmed.durable)).num_ack_pending === 0,
      );
    } finally {
      await jsm.streams.update(dlq, dlqConfig);
    }
  });

  it.each([
    ['two handlers for one subject', [TestController, DuplicateController], /two handlers for order.cancelled/],
    [
      'a handler without @Payload()',
      [ConfirmedOnlyController, NoPayloadController],
      /NoPayloadController.cancelled .* takes no @Payload\(\)/,
    ],
    [
      'a handler outside a @MessageController()',
      [ConfirmedOnlyController, PlainController],
      /PlainController must be a @MessageController\(\)/,
    ],
    [
      'a consumer the manifest declares without a handler',
      [ConfirmedOnlyController],
      /notification's manifest and its handlers disagree on consumers: declared but not handled: ORDER\/notification-order-cancelled/,
    ],
  ])('refuses %s at start-up', async (_, controllers, error) => {
    await expect(startService(testModule(controllers), { ...config, ORDERFLOW_NAMESPACE: `${id}b` } as Config)).rejects.toThrow(error);
    await deleteNamespaceStreams(jsm, new Namespace(`${id}b`));
  });

  it("is a provider of the app: unwrap() is its NATS connection, on() and status report the connection's events", async () => {
    const server = app.get(JetStreamServer);
    const nc = server.unwrap<NatsConnection>();
    expect(nc.isClosed()).toBe(false);
    expect(nc.info?.server_id).toEqual(expect.any(String));
    const events: string[] = [];
    const statuses: string[] = [];
    server.on('disconnect', (s) => events.push(s.type));
    server.on('reconnect', (s) => events.push(s.type));
    const sub = server.status.subscribe((s) => statuses.push(s));
    try {
      await nc.reconnect(); // nats.js v3: drops the connection and connects again
      await waitFor(() => events.includes('reconnect'));
      expect(events).toEqual(['disconnect', 'reconnect']);
      expect(statuses.slice(-2)).toEqual(['disconnected', 'connected']);
    } finally {
      sub.unsubscribe();
    }
    // Still consuming after it.
    const after = await publish('ok');
    await waitFor(() => (seen.get(after.orderId)?.attempts.length ?? 0) === 1);
  });
});
