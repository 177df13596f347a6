import { createHash, randomUUID } from 'node:crypto';
import { headers, JsMsg } from './nats';
import { ErrorCode, Headers, maxDeliveriesAdvisory, Subjects, WorkStreams } from '@orderflow/contracts';
import { JetStreamClient } from './jetstream.client';

/** Why and where a message failed: becomes the `Dlq-*` headers of its dead letter. */
export interface DeadLetterReason {
  consumer: string;
  attempts: number;
  /** For people: `Name [SQLSTATE]: message`. */
  error: string;
  /** For tools: the failure's stable code (`errorCode`). */
  code: ErrorCode;
}

/**
 * Publishes `msg` unchanged (body and original headers) to `dlq.<original subject>` with headers naming
 * the original stream, sequence, subject, consumer, attempts, error, its code and time, and the original
 * `Nats-Msg-Id` as `Dlq-Msg-Id` (a replay names it in `Replay-Of`, so inboxes recognise it). A message
 * without `Correlation-Id` (an `order.created` from a client) gets one from its body's `orderId`, so the
 * dead letter can be found by order. Waits for the DLQ stream's ack, so the caller may ack the original only
 * once the dead letter is stored ("never leave a message in a silent terminal state", nestjs-jetstream's
 * dead-letter guide).
 * @returns the dead letter's DLQ stream sequence (the original's, when this is a repeat the stream de-duplicated).
 * @throws when the DLQ stream does not ack (full, or unreachable); the caller must then hold the original, not ack it.
 */
export async function deadLetter(client: JetStreamClient, msg: JsMsg, reason: DeadLetterReason): Promise<{ seq: number }> {
  const logical = client.ns.logical(msg.subject);
  const h = msg.headers ?? headers();
  const originalId = h.get(Headers.MsgId);
  if (originalId) h.set(Headers.Dlq.MsgId, originalId);
  if (!h.get(Headers.CorrelationId)) {
    const orderId = orderIdOf(msg.data);
    if (orderId) h.set(Headers.CorrelationId, orderId);
  }
  h.set(Headers.Dlq.Id, randomUUID());
  h.set(Headers.Dlq.Stream, msg.info.stream);
  h.set(Headers.Dlq.Sequence, String(msg.info.streamSequence));
  h.set(Headers.Dlq.Subject, msg.subject);
  h.set(Headers.Dlq.Consumer, reason.consumer);
  h.set(Headers.Dlq.Attempts, String(reason.attempts));
  h.set(Headers.Dlq.Error, reason.error.replace(/[\r\n]+/g, ' ').slice(0, 1024));
  h.set(Headers.Dlq.ErrorCode, reason.code);
  h.set(Headers.Dlq.Time, new Date().toISOString());
  // The dead letter's own id: one per original message, so a repeated dead-lettering is de-duplicated.
  const msgID = `dlq:${msg.info.stream}:${msg.info.streamSequence}`;
  h.delete(Headers.MsgId);
  // A body near the server's max_payload would not fit with the Dlq-* headers: keep its head, its size and digest.
  let data = msg.data;
  const limit = keptBodyBytes(client);
  if (data.length > limit) {
    h.set(Headers.Dlq.BodyBytes, String(data.length));
    h.set(Headers.Dlq.BodySha256, createHash('sha256').update(data).digest('hex'));
    data = data.subarray(0, limit);
  }
  const ack = await client.js.publish(client.ns.subject(Subjects.deadLetter(logical)), data, { msgID, headers: h });
  return { seq: ack.seq };
}

/**
 * The most body bytes a dead letter keeps: what the server's `max_payload` leaves after 64 KiB for headers, and at
 * most 512 KiB (a dead letter is evidence, not storage).
 */
function keptBodyBytes(client: JetStreamClient): number {
  const max = client.nc.info?.max_payload ?? 1_048_576;
  return Math.max(1024, Math.min(512 * 1024, max - 64 * 1024));
}

/** The `orderId` of a JSON body, if it has a plausible one (the body may be anything: it is being dead-lettered). */
function orderIdOf(data: Uint8Array): string | undefined {
  try {
    const id = (JSON.parse(Buffer.from(data).toString('utf8')) as { orderId?: unknown })?.orderId;
    return typeof id === 'string' && /^[0-9a-fA-F-]{36}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error without what varies between occurrences (ids, numbers, quoted values), so that dead letters of
 * one cause group together; and a short hash of it, the fingerprint (`orderflow dlq stats`, the dead-letter metric).
 */
export function fingerprintOf(error: string): { masked: string; fingerprint: string } {
  const masked = error
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<id>')
    .replace(/"[^"]*"|'[^']*'/g, '<v>')
    .replace(/\b\d+(\.\d+)?\b/g, '<n>');
  return { masked, fingerprint: createHash('sha1').update(masked).digest('hex').slice(0, 10) };
}

/**
 * The id a consumer's inbox knows the original of a DLQ entry by (what a replay names in `Replay-Of`, as
 * `toInbound` derives a message id): from a dead letter's own headers, or — for an advisory — from the original's
 * headers at `advisory.stream:advisory.seq`. The CLI plans a replay with it and the order app checks the plan against
 * it: spelled once so the two always agree.
 */
export function originalIdOf(h: Record<string, string>, advisory?: { stream: string; seq: number }): string {
  if (advisory) return h[Headers.ReplayOf] ?? h[Headers.MsgId] ?? `${advisory.stream}:${advisory.seq}`;
  return h[Headers.ReplayOf] ?? h[Headers.Dlq.MsgId] ?? `${h[Headers.Dlq.Stream]}:${h[Headers.Dlq.Sequence]}`;
}

/** A dead letter as the order app replays it: the original message (from the advisory's work stream if need be). */
export interface StoredDeadLetter {
  seq: number;
  /** The original logical subject. */
  subject: string;
  /** The original's headers (a dead letter's carry its `Dlq-*` too). */
  headers: Record<string, string>;
  /** The original body; null when the original is gone (an advisory whose message the work stream no longer has). */
  data: Uint8Array | null;
  /** The id the consumer's inbox knows the original by: what a replay names in `Replay-Of`. */
  originalId: string;
  /** How often the original was a replay already (`Replay-Count`). */
  replayCount: number;
  /** When the body was too big to keep whole: the original's size (the stored body is cut). */
  cutFrom?: number;
}

/**
 * Entry `seq` of the namespace's DLQ stream: a dead letter, or a MAX_DELIVERIES advisory whose original is read from
 * its work stream. Undefined when the DLQ has no such entry (purged, or never).
 * @throws Error when the server does not answer.
 */
export async function readDeadLetter(client: JetStreamClient, seq: number): Promise<StoredDeadLetter | undefined> {
  const m = await client.storedMessage(client.ns.stream('DLQ'), seq);
  if (!m) return undefined;
  const ns = client.ns;
  const advisoryPrefix = maxDeliveriesAdvisory('').replace(/\.>$/, '');
  if (m.subject.startsWith(advisoryPrefix)) {
    const a = JSON.parse(Buffer.from(m.data).toString('utf8')) as { stream?: string; stream_seq?: number };
    const ours = WorkStreams.map((w) => ns.stream(w));
    if (!a.stream || !ours.includes(a.stream) || !Number.isSafeInteger(a.stream_seq)) return undefined;
    const original = await client.storedMessage(a.stream, a.stream_seq!);
    const h = original?.headers ?? {};
    return {
      seq,
      subject: original ? ns.logical(original.subject) : '(lost)',
      headers: h,
      data: original?.data ?? null,
      originalId: originalIdOf(h, { stream: a.stream, seq: a.stream_seq! }),
      replayCount: Number(h[Headers.ReplayCount] ?? 0),
    };
  }
  const h = m.headers;
  return {
    seq,
    subject: ns.logical(m.subject).replace(/^dlq\./, ''),
    headers: h,
    data: m.data,
    originalId: originalIdOf(h),
    replayCount: Number(h[Headers.ReplayCount] ?? 0),
    cutFrom: h[Headers.Dlq.BodyBytes] ? Number(h[Headers.Dlq.BodyBytes]) : undefined,
  };
}
