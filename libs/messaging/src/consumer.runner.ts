import { ConsumerMessages, JsMsg } from 'nats';
import { ConsumerSpec, Headers, MalformedMessageError, MessageTypes, parseMessage } from '@orderflow/contracts';
import type { Logger } from 'pino';
import { deadLetter } from './dead-letter';
import { PermanentError } from './errors';
import { JetStreamClient } from './jetstream.client';
import { InboundMessage } from './message';

export type MessageHandler<T = any> = (msg: InboundMessage<T>) => Promise<void>;

/** Redelivery policy: `backoffMs[n-1]` before delivery n+1 (the last value repeats); dead letter after `maxDeliver` deliveries. */
export interface RetryPolicy {
  backoffMs: number[];
  maxDeliver: number;
  concurrency: number;
}

export const backoffFor = (policy: RetryPolicy, attempt: number) =>
  policy.backoffMs[Math.min(attempt - 1, policy.backoffMs.length - 1)];

/**
 * The pull-consumer loop: one per durable consumer, explicit ack. For each message:
 * validate the body against its contract class → run the handler → `ack`.
 * - malformed body, unknown subject or PermanentError → dead letter, then `ack` (never retried);
 * - any other error → `nak` with the policy's backoff; on the last attempt → dead letter, then `ack`;
 * - a dead letter that cannot be stored → `nak`, so nothing is lost.
 * Source: nats.js JetStream `consume()` examples (explicit ack, nak to retry).
 */
export class ConsumerRunner {
  private readonly loops: { messages: ConsumerMessages; done: Promise<void> }[] = [];

  constructor(private readonly client: JetStreamClient, private readonly policy: RetryPolicy, private readonly log: Logger) {}

  /** Creates the durable consumer if needed and starts consuming. `handlers` are keyed by logical subject. */
  async start(spec: ConsumerSpec, handlers: Record<string, MessageHandler>): Promise<void> {
    for (const subject of spec.handles) {
      if (!handlers[subject]) throw new Error(`consumer ${spec.durable} handles ${subject} but has no handler for it`);
    }
    await this.client.ensureConsumer(spec, this.policy.maxDeliver);
    const consumer = await this.client.js.consumers.get(this.client.ns.stream(spec.stream), spec.durable);
    const messages = await consumer.consume({ max_messages: Math.min(this.policy.concurrency * 2, 1024) });
    const done = this.loop(spec, handlers, messages);
    this.loops.push({ messages, done });
    this.log.info({ consumer: spec.durable, stream: spec.stream, filter: spec.filterSubject }, 'consumer started');
  }

  private async loop(spec: ConsumerSpec, handlers: Record<string, MessageHandler>, messages: ConsumerMessages): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for await (const m of messages) {
      const p = this.handle(spec, handlers, m).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= this.policy.concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  private async handle(spec: ConsumerSpec, handlers: Record<string, MessageHandler>, m: JsMsg): Promise<void> {
    const subject = this.client.ns.logical(m.subject);
    const attempt = m.info.deliveryCount;
    try {
      if (spec.ignores?.includes(subject)) return m.ack();
      const handler = handlers[subject];
      const type = MessageTypes[subject];
      if (!handler || !type) throw new MalformedMessageError(`unknown message type: no handler for subject ${subject} on consumer ${spec.durable}`);
      const body = parseMessage(type, m.data);
      await handler(toInbound(m, subject, body));
      m.ack();
    } catch (e) {
      const error = e as Error;
      // Built only on failure: the success path is the hot path.
      const log = this.log.child({ consumer: spec.durable, subject, seq: m.info.streamSequence, orderId: m.headers?.get(Headers.CorrelationId) || undefined });
      const permanent = error instanceof MalformedMessageError || error instanceof PermanentError;
      if (!permanent && attempt < this.policy.maxDeliver) {
        const delay = backoffFor(this.policy, attempt);
        log.warn({ err: error, attempt, retryInMs: delay }, 'handler failed; will retry');
        return m.nak(delay);
      }
      await this.sendToDeadLetter(spec, m, attempt, error, log);
    }
  }

  private async sendToDeadLetter(spec: ConsumerSpec, m: JsMsg, attempt: number, error: Error, log: Logger) {
    try {
      await deadLetter(this.client, m, { consumer: spec.durable, attempts: attempt, error: `${error.name}: ${error.message}` });
      log.error({ err: error, attempt }, 'message dead-lettered');
      m.ack();
    } catch (dlqError) {
      log.error({ err: dlqError, cause: error.message }, 'dead-lettering failed; message will be redelivered');
      m.nak(backoffFor(this.policy, attempt));
    }
  }

  /** Stops pulling, then waits for the messages in hand to be handled and acked. */
  async stop(): Promise<void> {
    const loops = this.loops.splice(0);
    await Promise.all(loops.map(async (l) => {
      await l.messages.close();
      await l.done;
    }));
  }
}

function toInbound<T>(m: JsMsg, subject: string, body: T): InboundMessage<T> {
  const h = (k: string) => m.headers?.get(k) || undefined;
  return {
    subject,
    body,
    messageId: h(Headers.ReplayOf) ?? h(Headers.MsgId) ?? `${m.info.stream}:${m.info.streamSequence}`,
    correlationId: h(Headers.CorrelationId),
    causationId: h(Headers.CausationId),
    sagaId: h(Headers.SagaId),
    traceparent: h(Headers.TraceParent),
    attempt: m.info.deliveryCount,
    stream: m.info.stream,
    sequence: m.info.streamSequence,
  };
}
