import {
  ClosedConnectionError,
  createInbox,
  JetStreamApiError,
  Msg,
  MsgHdrs,
  NatsConnection,
  NoRespondersError,
  PubAck,
  RequestError,
  Subscription,
  TimeoutError,
} from './nats';
import { Headers } from '@orderflow/contracts';

interface Waiting {
  resolve: (ack: PubAck) => void;
  reject: (e: Error) => void;
  subject: string;
  /** `performance.now()` past which the publish has timed out. */
  deadline: number;
}

/** What a stream answers to a publish (JetStream wire API): its ack, or an API error. */
interface PubAckResponse {
  stream?: string;
  seq?: number;
  domain?: string;
  duplicate?: boolean;
  error?: { code: number; err_code: number; description: string };
}

/**
 * JetStream publishes that wait for their streams' acks on one subscription: `PUB <subject> <inbox>.<n>`, answered on
 * `<inbox>.<n>` with the PubAck `{stream, seq, duplicate}` or an API error `{error: {code, err_code, description}}`.
 * This is what nats.js's `jetstream().publish` does through its request "mux", less two costs it pays for every
 * publish: a timer of its own, and the `RequestError("cancelled")` (a stack captured) it builds to settle each answered
 * request — together 3–4 % of the order app's CPU in `npm run bench` (V8 profile, 2026-12-06). Here one timer, armed
 * for the oldest publish waiting, times them all out.
 *
 * Errors, as nats.js gives them: a stream's refusal is a `JetStreamApiError` (`code` = `err_code`); a subject no stream
 * takes is a `RequestError` caused by `NoRespondersError` (the server's 503 status); no answer within `timeoutMs` is a
 * `TimeoutError`; a closed connection rejects what waits with `ClosedConnectionError`.
 * Source: NATS docs, "JetStream wire API reference" (publish acks); nats.js `JetStreamClientImpl.publish`.
 */
export class PubAcks {
  private readonly waiting = new Map<string, Waiting>();
  private readonly inbox: string;
  private sub?: Subscription;
  private next = 0;
  private timer?: NodeJS.Timeout;

  /**
   * @param inboxPrefix the connection's inbox prefix (`NatsCredentials.inboxPrefix`): the only subjects its identity
   *   may subscribe to for replies.
   * @param timeoutMs how long a publish waits for its ack.
   */
  constructor(
    private readonly nc: NatsConnection,
    inboxPrefix: string,
    private readonly timeoutMs: number,
  ) {
    this.inbox = createInbox(inboxPrefix);
  }

  /**
   * Publishes `data` with `headers` to `subject` (its full name) and resolves with the stream's ack. `msgId` becomes
   * `Nats-Msg-Id` (set on `headers`): the stream drops a second publish with the same id within its duplicate window.
   * @throws JetStreamApiError, RequestError (no stream), TimeoutError, ClosedConnectionError: see the class.
   */
  publish(subject: string, data: Uint8Array, msgId: string, headers: MsgHdrs): Promise<PubAck> {
    headers.set(Headers.MsgId, msgId);
    const token = (this.next++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      try {
        this.sub ??= this.subscribe();
        this.waiting.set(token, { resolve, reject, subject, deadline: performance.now() + this.timeoutMs });
        this.timer ??= setTimeout(() => this.expire(), this.timeoutMs);
        this.nc.publish(subject, data, { reply: `${this.inbox}.${token}`, headers });
      } catch (e) {
        // Refused before it left (a closed connection, a payload over the server's max_payload).
        this.waiting.delete(token);
        reject(e as Error);
      }
    });
  }

  private subscribe(): Subscription {
    const sub = this.nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => (err ? this.rejectAll(err) : this.answer(msg)),
    });
    // Closed with the connection, or alone by a permissions error (which it resolves with): what waits fails with it,
    // and the next publish subscribes again rather than waiting out its timeout for an answer nobody reads.
    void sub.closed.then((e) => {
      if (this.sub === sub) this.sub = undefined;
      this.rejectAll(e instanceof Error ? e : new ClosedConnectionError());
    });
    return sub;
  }

  private answer(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length + 1);
    const w = this.waiting.get(token);
    if (!w) return; // it timed out already
    this.waiting.delete(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      w.reject(new RequestError(`no stream takes ${w.subject}`, { cause: new NoRespondersError(w.subject) }));
      return;
    }
    let r: PubAckResponse;
    try {
      r = msg.json<PubAckResponse>();
    } catch (e) {
      w.reject(new RequestError(`invalid ack response to a publish to ${w.subject}`, { cause: e }));
      return;
    }
    if (r.error) w.reject(new JetStreamApiError(r.error));
    else if (!r.stream || r.seq === undefined) w.reject(new RequestError(`invalid ack response to a publish to ${w.subject}`));
    else w.resolve({ stream: r.stream, seq: r.seq, domain: r.domain, duplicate: r.duplicate ?? false });
  }

  /** Times out what waited past its deadline (in publish order, so the oldest first); re-arms for the next. */
  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [token, w] of this.waiting) {
      if (w.deadline > now) {
        this.timer = setTimeout(() => this.expire(), w.deadline - now);
        return;
      }
      this.waiting.delete(token);
      w.reject(new TimeoutError());
    }
  }

  private rejectAll(e: Error): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}
