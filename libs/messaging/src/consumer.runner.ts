import { ConsumerMessages, JsMsg } from './nats';
import type { ConsumeOutcome, PipelineMetrics } from '@orderflow/telemetry';
import type { Logger } from 'pino';
import {
  ConsumerSpec,
  handlesSubject,
  Headers,
  ignoresSubject,
  MalformedMessageError,
  messageTypeOf,
  parseMessage,
} from '@orderflow/contracts';
import { deadLetter, fingerprintOf } from './dead-letter';
import { classify, describeFailure, errorCode } from './failure';
import { JetStreamClient } from './jetstream.client';
import { InboundMessage } from './message';
import { checkSignature } from './signature';

/** How often a dead letter the DLQ refused is tried again (at most a third of the ack wait, to keep it alive). */
const HELD_RETRY_MS = 5_000;

/** How long one pull request lasts (nats.js `consume({ expires })`; its idle heartbeat is half of it). */
const PULL_EXPIRES_MS = 5_000;

/**
 * Handles a batch of validated messages all or nothing: it either returns (every message's effect is
 * committed) or throws (none is). The runner acks only after it returns.
 */
export type BatchHandler = (msgs: InboundMessage[]) => Promise<void>;

/**
 * Whether the dependencies of the handlers (the database) can be reached: while not, the consume loop keeps the
 * messages it holds alive and waits for `whenAvailable()` instead of naking or dead-lettering them.
 */
export interface Availability {
  whenAvailable(): Promise<void>;
}

/** Redelivery policy: `backoffMs[n-1]` before delivery n+1 (the last value repeats); dead letter after `maxDeliver` deliveries. */
export interface RetryPolicy {
  backoffMs: number[];
  maxDeliver: number;
  /** Most messages handed to the handler at once (one transaction). */
  maxBatch: number;
  /** The consumers' ack wait; messages in hand are reported `working()` every third of it. */
  ackWaitMs: number;
  /** Pauses between in-place tries of a dead-letter publish before the message is held (default 0.2, 1, 3 s). */
  deadLetterRetryMs?: number[];
}

export const backoffFor = (policy: RetryPolicy, attempt: number) => policy.backoffMs[Math.min(attempt - 1, policy.backoffMs.length - 1)];

interface Ready {
  m: JsMsg;
  msg: InboundMessage;
}

/** A message whose dead letter the DLQ refused (full, or unreachable): held unacked, its dead-lettering tried again. */
interface Held {
  spec: ConsumerSpec;
  m: JsMsg;
  deadLetter: () => Promise<void>;
}

/**
 * The pull-consumer loop: one per durable consumer, explicit ack. Messages that arrived while the previous
 * batch was being handled form the next batch (up to `maxBatch`; never waits to fill one), so an idle
 * consumer handles each message at once and a busy one amortises a transaction over many ("group commit").
 * For each message: decode the body into its subject's contract class and validate it (before the batch begins), then:
 * - a body that is not a JSON object, or an unknown subject → dead letter, then `ack` (never retried); ignored subject → `ack`;
 * - batch handled → `ack` each; batch failed → each message is handled alone, so one bad message cannot
 *   hold back the others;
 * - alone and failed → `nak` with the policy's backoff; a permanent failure (`classify`) or the last attempt →
 *   dead letter, then `ack`;
 * - a dead letter that cannot be stored (the DLQ full or unreachable) → the message is held unacked, kept alive, and
 *   its dead-lettering tried again every few seconds (`orderflow_dead_letters_held`), so nothing is lost and no
 *   delivery is used up meanwhile;
 * - the database unavailable (`classify`) → the messages in hand go back to the front of the queue and the loop
 *   waits for `availability.whenAvailable()`: no `nak`, no dead letter, no delivery used. Messages in hand are
 *   kept alive with `working()`, and `max_ack_pending` (CONSUMER_MAX_ACK_PENDING) caps how many the server hands out meanwhile; the rest
 *   wait in the stream ("Circuit breaker", Nygard, *Release It!*; nats.js `working()`).
 * Batches of one consumer run one after another, so they never wait on each other's row locks.
 * Source: nats.js JetStream `consume()` examples (explicit ack, nak to retry).
 */
export class ConsumerRunner {
  private readonly loops: { spec: ConsumerSpec; messages: ConsumerMessages; done: Promise<void>; ended: boolean }[] = [];
  private readonly held = new Set<Held>();
  private heldTimer?: NodeJS.Timeout;
  private stopped = false;
  private retryingHeld = false;

  constructor(
    private readonly client: JetStreamClient,
    private readonly policy: RetryPolicy,
    private readonly log: Logger,
    // Without a breaker to say when the database is back, wait a second before trying again.
    private readonly availability: Availability = { whenAvailable: () => new Promise((r) => setTimeout(r, 1000)) },
    private readonly metrics?: PipelineMetrics,
  ) {}

  /** True while every consumer started is pulling (none stopped or ended): what readiness asks. */
  get pulling(): boolean {
    return this.loops.length > 0 && this.loops.every((l) => !l.ended);
  }

  /** The consumers started, for scrape-time backlog readings. */
  get consumers(): ConsumerSpec[] {
    return this.loops.map((l) => l.spec);
  }

  private count(spec: ConsumerSpec, m: JsMsg, outcome: ConsumeOutcome): void {
    this.metrics?.consumed.inc({ subject: this.client.ns.logical(m.subject), consumer: spec.durable, outcome });
  }

  /**
   * Starts consuming the durable consumer `spec` (provisioned by `orderflow setup`) into `handler`.
   * @throws TopologyMissingError when the consumer or its stream does not exist.
   */
  async start(spec: ConsumerSpec, handler: BatchHandler): Promise<void> {
    const consumer = await this.client.consumer(spec);
    // Short pulls (5 s, idle heartbeat 2.5 s): a pull lost with its server or consumer leader (a node of a cluster
    // killed) is noticed after two missed heartbeats and re-issued, in ~5 s instead of the default 30 s pulls' ~45 s.
    const messages = await consumer.consume({ max_messages: Math.min(this.policy.maxBatch * 2, 1024), expires: PULL_EXPIRES_MS });
    const loop = { spec, messages, done: Promise.resolve(), ended: false };
    loop.done = this.loop(spec, handler, messages).finally(() => (loop.ended = true));
    this.loops.push(loop);
    this.log.info({ consumer: spec.durable, stream: spec.stream, filter: spec.filterSubject }, 'consumer started');
  }

  private async loop(spec: ConsumerSpec, handler: BatchHandler, messages: ConsumerMessages): Promise<void> {
    const queue: JsMsg[] = [];
    let batch: JsMsg[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    let stopWaiting: () => void = () => undefined;
    const stopping = new Promise<'stopping'>((r) => (stopWaiting = () => r('stopping')));
    // Messages waiting in the queue or being handled are alive: tell the server, so a slow batch (or a long
    // queue behind it) is not redelivered to another instance meanwhile. Only a crash lets the ack wait run out.
    const heartbeat = setInterval(
      () => {
        for (const m of queue) m.working();
        for (const m of batch) m.working();
      },
      Math.floor(this.policy.ackWaitMs / 3),
    );
    const worker = (async () => {
      for (;;) {
        if (queue.length === 0) {
          if (closed) return;
          await new Promise<void>((r) => (wake = r));
          continue;
        }
        batch = queue.splice(0, this.policy.maxBatch);
        const waiting = await this.handleBatch(spec, handler, batch);
        batch = [];
        if (waiting.length > 0) {
          queue.unshift(...waiting);
          this.log.warn({ consumer: spec.durable, held: queue.length }, 'database unavailable: holding messages until it is back');
          // Shutting down while the database is away: leave what we hold unacked; the server redelivers it after the ack wait.
          if ((await Promise.race([this.availability.whenAvailable(), stopping])) === 'stopping') return;
        }
      }
    })();
    for await (const m of messages) {
      if (m.info.deliveryCount > 1) this.metrics?.redeliveries.inc({ subject: this.client.ns.logical(m.subject), consumer: spec.durable });
      queue.push(m);
      wake?.();
    }
    closed = true;
    wake?.();
    stopWaiting();
    await worker;
    clearInterval(heartbeat);
  }

  /** Handles a batch; returns the messages that must wait because the database is unavailable (unacked, un-naked). */
  private async handleBatch(spec: ConsumerSpec, handler: BatchHandler, batch: JsMsg[]): Promise<JsMsg[]> {
    const ready: Ready[] = [];
    for (const m of batch) {
      const subject = this.client.ns.logical(m.subject);
      if (ignoresSubject(spec, subject)) {
        m.ack();
        this.count(spec, m, 'ignored');
        continue;
      }
      try {
        const type = messageTypeOf(subject);
        if (!handlesSubject(spec, subject) || !type)
          throw new MalformedMessageError(`unknown message type: ${subject} is not handled by consumer ${spec.durable}`);
        // Decoded and validated here, before the batch's transaction: a malformed message is dead-lettered on its own
        // and never takes the valid messages of its batch down with it.
        ready.push({ m, msg: toInbound(spec, m, subject, parseMessage(type, m.data)) });
      } catch (e) {
        await this.fail(spec, m, e as Error);
      }
    }
    if (ready.length > 1) {
      try {
        await handler(ready.map((r) => r.msg));
        for (const r of ready) {
          r.m.ack();
          this.count(spec, r.m, 'acked');
        }
        return [];
      } catch (e) {
        if (classify(e) === 'unavailable') return ready.map((r) => r.m);
        this.log.debug({ err: e, consumer: spec.durable, size: ready.length }, 'batch failed; handling its messages one by one');
      }
    }
    for (const [i, r] of ready.entries()) {
      try {
        await handler([r.msg]);
        r.m.ack();
        this.count(spec, r.m, 'acked');
      } catch (e) {
        if (classify(e) === 'unavailable') return ready.slice(i).map((x) => x.m);
        await this.fail(spec, r.m, e as Error);
      }
    }
    return [];
  }

  /** A message failed alone: retry later, or dead-letter it (at once when retrying cannot help: see `classify`). */
  private async fail(spec: ConsumerSpec, m: JsMsg, error: Error): Promise<void> {
    const attempt = m.info.deliveryCount;
    const log = this.log.child({
      consumer: spec.durable,
      subject: this.client.ns.logical(m.subject),
      seq: m.info.streamSequence,
      orderId: m.headers?.get(Headers.CorrelationId) || undefined,
      sagaId: m.headers?.get(Headers.SagaId) || undefined,
    });
    const permanent = classify(error) === 'permanent';
    if (!permanent && attempt < this.policy.maxDeliver) {
      const delay = backoffFor(this.policy, attempt);
      log.warn({ err: error, attempt, retryInMs: delay }, 'handler failed; will retry');
      m.nak(delay);
      return this.count(spec, m, 'nacked');
    }
    const reason = describeFailure(error);
    const fingerprint = fingerprintOf(reason).fingerprint;
    const deadLettered = async () => {
      const { seq } = await deadLetter(this.client, m, {
        consumer: spec.durable,
        attempts: attempt,
        error: reason,
        code: errorCode(error),
      });
      log.error({ err: error, attempt, dlqSeq: seq }, 'message dead-lettered');
      m.ack();
      this.count(spec, m, 'dead_lettered');
      this.metrics?.deadLetters.inc({ subject: this.client.ns.logical(m.subject), fingerprint });
    };
    try {
      // The dead-letter publish is retried here, not by redelivering the message (which would run the handler again).
      await retrying(deadLettered, this.policy.deadLetterRetryMs ?? [200, 1000, 3000]);
    } catch (dlqError) {
      log.error(
        { err: dlqError, cause: error.message },
        'dead-lettering failed (DLQ full or unreachable): holding the message and trying again',
      );
      this.hold({ spec, m, deadLetter: deadLettered });
    }
  }

  /** Keeps `h` unacked and alive, and tries its dead-lettering again every few seconds until it is stored. */
  private hold(h: Held): void {
    // Stopped meanwhile: leave it unacked; the server redelivers it after the ack wait.
    if (this.stopped) return;
    this.held.add(h);
    this.countHeld(h.spec);
    this.heldTimer ??= setInterval(() => void this.retryHeld(), Math.min(HELD_RETRY_MS, Math.floor(this.policy.ackWaitMs / 3)));
  }

  private async retryHeld(): Promise<void> {
    if (this.retryingHeld) return;
    this.retryingHeld = true;
    try {
      for (const h of this.held) h.m.working();
      // In order, stopping at the first refusal: while the DLQ is full, one probe per round, not one per message.
      for (const h of [...this.held]) {
        try {
          await h.deadLetter();
        } catch {
          return;
        }
        this.held.delete(h);
        this.countHeld(h.spec);
      }
      clearInterval(this.heldTimer);
      this.heldTimer = undefined;
    } finally {
      this.retryingHeld = false;
    }
  }

  private countHeld(spec: ConsumerSpec): void {
    let n = 0;
    for (const h of this.held) if (h.spec.durable === spec.durable && h.spec.stream === spec.stream) n++;
    this.metrics?.deadLettersHeld.set({ stream: spec.stream, consumer: spec.durable }, n);
  }

  /**
   * Stops pulling, then waits for the messages in hand to be handled and acked. Held dead letters stay unacked: the
   * server redelivers them after the ack wait, to this app's next run or another instance.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heldTimer);
    this.heldTimer = undefined;
    this.held.clear();
    const loops = this.loops.splice(0);
    await Promise.all(
      loops.map(async (l) => {
        await l.messages.close();
        await l.done;
      }),
    );
  }
}

/** Runs `fn`, again after each of `delaysMs` while it throws. @throws its last error. */
async function retrying<T>(fn: () => Promise<T>, delaysMs: number[]): Promise<T> {
  for (const delay of delaysMs) {
    try {
      return await fn();
    } catch {
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  return fn();
}

function toInbound<T>(spec: ConsumerSpec, m: JsMsg, subject: string, body: T): InboundMessage<T> {
  const h = (k: string) => m.headers?.get(k) || undefined;
  const messageId = h(Headers.ReplayOf) ?? h(Headers.MsgId) ?? `${m.info.stream}:${m.info.streamSequence}`;
  return {
    subject,
    body,
    messageId,
    inboxKey: spec.inboxKey ? spec.inboxKey(body, m.data) : messageId,
    correlationId: h(Headers.CorrelationId),
    causationId: h(Headers.CausationId),
    sagaId: h(Headers.SagaId),
    traceparent: h(Headers.TraceParent),
    signature: spec.signed ? checkSignature(h, m.subject, h(Headers.MsgId), m.data) : undefined,
    attempt: m.info.deliveryCount,
    stream: m.info.stream,
    sequence: m.info.streamSequence,
    storedAt: m.info.timestampNanos ? Number(m.info.timestampNanos) / 1e6 : undefined,
  };
}
