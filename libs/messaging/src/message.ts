import { headers as natsHeaders, MsgHdrs } from './nats';
import { Headers } from '@orderflow/contracts';
import type { SignatureCheck } from './signature';

/** A message to publish. `subject` is logical (the namespace is added on publish); `body` is JSON-serialisable. */
export interface OutgoingMessage {
  subject: string;
  body: object;
  correlationId?: string;
  causationId?: string;
  sagaId?: string;
  traceparent?: string;
  /** Extra headers, e.g. replay lineage. */
  headers?: Record<string, string>;
  /** Its `Nats-Msg-Id` (the outbox row id); a random UUID unless given. */
  id?: string;
}

/**
 * What publishes a message with `Nats-Msg-Id` = `msgId` and says whether the stream took it as a duplicate:
 * `JetStreamClient`, or a fake in the tests that run without NATS.
 */
export interface MessagePublisher {
  publish(msg: OutgoingMessage, msgId: string): Promise<{ duplicate: boolean }>;
}

/** A received message handed to a handler: its body decoded into its subject's class (validated by the handler's pipeline). */
export interface InboundMessage<T = unknown> {
  /** Logical subject. */
  subject: string;
  body: T;
  /** Identity of this message: `Replay-Of` if it is a replay, else `Nats-Msg-Id`, else `<stream>:<sequence>` (the causation id of what it causes). */
  messageId: string;
  /**
   * What the inbox records for it: `messageId` for messages between services (their publishers are the apps and
   * operators, authenticated), or the key the consumer derives from the body (`ConsumerSpec.inboxKey`) for
   * messages from outside, whose headers a client chooses.
   */
  inboxKey: string;
  correlationId?: string;
  causationId?: string;
  sagaId?: string;
  traceparent?: string;
  /** For consumers of signed commands (`ConsumerSpec.signed`): what the message's signature headers say. */
  signature?: SignatureCheck;
  /** 1 on first delivery. */
  attempt: number;
  stream: string;
  sequence: number;
  /** When the stream stored it (ms since the epoch): how long it waited there is measured from this. */
  storedAt?: number;
}

/**
 * Headers of a message caused by `cause`: same correlation and saga; causation = the cause's id. The trace is the
 * span active where the message is sent (`Tx.send`), a child of the cause's.
 */
export function causedBy(cause: InboundMessage, extra: Partial<OutgoingMessage> = {}): Omit<OutgoingMessage, 'subject' | 'body'> {
  return {
    correlationId: cause.correlationId,
    causationId: cause.messageId,
    sagaId: cause.sagaId,
    ...extra,
  };
}

export function toNatsHeaders(msg: OutgoingMessage): MsgHdrs {
  const h = natsHeaders();
  // The four are distinct and the headers new: `append` (nats.js's `set` is a `delete` and an `append`, each a scan of
  // the keys). Extra headers may name one of them again: the extra wins, as before.
  const append = (k: string, v?: string) => v !== undefined && v !== '' && h.append(k, v);
  append(Headers.CorrelationId, msg.correlationId);
  append(Headers.CausationId, msg.causationId);
  append(Headers.SagaId, msg.sagaId);
  append(Headers.TraceParent, msg.traceparent);
  for (const [k, v] of Object.entries(msg.headers ?? {})) if (v !== undefined && v !== '') h.set(k, v);
  return h;
}

export const encodeBody = (body: object): Uint8Array => Buffer.from(JSON.stringify(body));
