import { JetStreamManager, JsMsg, KV, MsgHdrs, NatsError } from 'nats';
import { DLQ_STATE_BUCKET, Headers, OperatorView, SagaStatus, SagaView, Subjects } from '@orderflow/contracts';
import { fingerprintOf, originalIdOf, verifySignature } from '@orderflow/messaging';
import { PipelineClient } from '../client';

export type DlqState = 'new' | 'replayed' | 'resolved' | 'failed_again' | 'purged' | 'lost';
export const DlqStates: DlqState[] = ['new', 'replayed', 'resolved', 'failed_again', 'purged', 'lost'];

/** A dead letter as `dlq list --json` prints it (OPERATIONS.md); times ISO 8601. */
export interface DlqEntry {
  seq: number;
  /**
   * Its identity, which its state record is keyed by: the `Dlq-Id` header; for an advisory, the consumer's stream,
   * sequence and the advisory's time; for a dead letter written before `Dlq-Id`, its own message id.
   */
  id: string;
  time: string;
  /** The original (logical) subject. */
  subject: string;
  stream: string | null;
  streamSeq: number | null;
  consumer: string | null;
  attempts: number | null;
  error: string;
  fingerprint: string;
  orderId: string | null;
  sagaId: string | null;
  replayCount: number;
  state: DlqState;
}

/**
 * An entry with what `show`, `replay` and the state rules need, but not its message: entries are listed by the
 * thousand, so bodies and headers are read one at a time when wanted (`DeadLetters.message`).
 */
export interface DlqMessage extends DlqEntry {
  source: 'dead_letter' | 'advisory';
  /** The original message is still stored (false when it is gone: `lost`, `purged`). */
  hasBody: boolean;
  /** The id an inbox knows the original by: what a replay names in `Replay-Of`. */
  originalId: string;
  /** The dead letter's `Dlq-Msg-Id` (the original `Nats-Msg-Id`): a replay that failed again is known by it. */
  dlqMsgId: string | null;
  record: StateRecord | null;
}

/** An entry's stored message: headers and body (null when it is gone). */
export interface StoredMessage {
  headers: Record<string, string>;
  data: Uint8Array | null;
}

/**
 * The value kept per entry in the `DLQ_STATE` bucket under the entry's `id`, signed by the operator who wrote it
 * (`signer`, `signature`: over the record's other fields as JSON, on the subject `dlq-state` with the id as the
 * message id).
 */
export interface StateRecord {
  state: DlqState;
  at: string;
  operator: string;
  why: string;
  /** Set by a replay: the new message's `Nats-Msg-Id`. */
  newMsgId?: string;
  /** Set by a purge: the entry as it was, since its message is deleted. */
  entry?: DlqEntry;
  signer?: string;
  signature?: string;
}

/**
 * What a state record's signature says: valid, by the registered operator `operator` (null when the order service did
 * not answer, so the key could not be checked), or what is wrong with it.
 */
export type RecordCheck = { ok: true; operator: string | null; signer: string } | { ok: false; problem: string };

/** The bytes a state record's signature covers: every field but the signature, as written. */
const recordBytes = (r: StateRecord): Uint8Array => {
  const { signer: _s, signature: _g, ...rest } = r;
  return Buffer.from(JSON.stringify(rest));
};

const FINAL: SagaStatus[] = ['COMPLETED', 'CANCELLED', 'FAILED'];
/** The subject a state record's signature is bound to (with the namespace), and the entry's id as its message id. */
const RECORD_SUBJECT = 'dlq-state';
const ADVISORY = '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.';

const headersOf = (h: MsgHdrs | undefined): Record<string, string> => Object.fromEntries([...(h ?? [])].map(([k]) => [k, h!.get(k)]));
const num = (v: string | undefined) => (v ? Number(v) : null);

/**
 * The dead-letter stream as operators see it: every entry with its state. Entry state lives in the
 * `DLQ_STATE` key-value bucket, keyed by DLQ sequence; a `replayed` entry becomes `failed_again` once the
 * replayed message is dead-lettered in turn, or `resolved` once its saga reaches a final state — worked out
 * here whenever an operator looks, and stored.
 */
export class DeadLetters {
  private operators?: Promise<OperatorView[]>;
  private jsm?: Promise<JetStreamManager>;

  private constructor(
    private readonly client: PipelineClient,
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  /** Opens (creating it if missing) the state bucket of the client's namespace. */
  static async open(client: PipelineClient): Promise<DeadLetters> {
    const bucket = client.ns.stream(DLQ_STATE_BUCKET);
    return new DeadLetters(client, await client.js.views.kv(bucket, { replicas: client.replicas }), bucket);
  }

  /** One JetStream manager for every read and delete (nats.js checks the API with a request each time one is made). */
  private manager(): Promise<JetStreamManager> {
    return (this.jsm ??= this.client.nc.jetstreamManager());
  }

  get stream(): string {
    return this.client.ns.stream('DLQ');
  }

  /** Every entry, oldest first (purged ones from their state records). */
  async all(): Promise<DlqMessage[]> {
    const records = await this.records();
    const out: DlqMessage[] = [];
    await this.read(this.stream, async (m) => {
      const e = await this.toEntry(m, null);
      const record = records.get(e.id) ?? null;
      out.push(record ? { ...e, record, state: record.state } : e);
    });
    // Purged entries live on in their records; one whose sequence a newer entry took (a recreated stream) is left out.
    const present = new Set(out.map((e) => e.seq));
    for (const [id, r] of records) {
      if (r.state === 'purged' && r.entry && !present.has(r.entry.seq))
        out.push({ ...r.entry, id, state: 'purged', source: 'dead_letter', hasBody: false, originalId: '', dlqMsgId: null, record: r });
    }
    out.sort((a, b) => a.seq - b.seq);
    await this.refresh(out);
    return out;
  }

  /** The entries of one order (its `Correlation-Id`), oldest first. */
  async ofOrder(orderId: string): Promise<DlqMessage[]> {
    return (await this.all()).filter((e) => e.orderId === orderId);
  }

  /** @returns undefined when no entry has this sequence. */
  async get(seq: number): Promise<DlqMessage | undefined> {
    return (await this.all()).find((e) => e.seq === seq);
  }

  /**
   * The message of entry `e`: the dead letter as stored in the DLQ, or, for an advisory, the original in its work stream.
   * @throws NatsError when the stream does not answer.
   */
  async message(e: DlqMessage): Promise<StoredMessage> {
    const gone = { headers: {}, data: null };
    if (!e.hasBody) return gone;
    const stored =
      e.source === 'advisory' && e.stream && e.streamSeq
        ? await this.getMessage(e.stream, e.streamSeq)
        : await this.getMessage(this.stream, e.seq);
    return stored ? { headers: headersOf(stored.header), data: stored.data } : gone;
  }

  private async getMessage(stream: string, seq: number) {
    const jsm = await this.manager();
    return jsm.streams.getMessage(stream, { seq }).catch((e: NatsError) => {
      if (e.api_error?.err_code === 10037) return undefined; // no message found (deleted since)
      throw e;
    });
  }

  /** Writes entry `id`'s state record, signed by the operator. @throws CliFailure when the operator has no key. */
  async setState(id: string, record: StateRecord): Promise<void> {
    const sig = this.client.sign(RECORD_SUBJECT, id, recordBytes(record));
    await this.kv.put(kvKey(id), JSON.stringify({ ...record, signer: sig.signer, signature: sig.signature }));
  }

  /**
   * Checks the signature of entry `id`'s state record against the operator keys the order app has registered (asked
   * once, over `query.order.operators`).
   */
  async verifyRecord(id: string, record: StateRecord): Promise<RecordCheck> {
    if (!record.signer || !record.signature) return { ok: false, problem: 'unsigned' };
    const valid = verifySignature(
      { signer: record.signer, signature: record.signature },
      this.client.ns.subject(RECORD_SUBJECT),
      id,
      recordBytes(record),
    );
    if (!valid) return { ok: false, problem: `the signature of ${record.signer} does not verify: the record was changed` };
    this.operators ??= this.client.query<OperatorView[]>(Subjects.QueryOperators, {}).then((v) => v ?? []);
    const registered = await this.operators.catch(() => null);
    if (!registered) return { ok: true, operator: null, signer: record.signer };
    const key = registered.find((o) => o.publicKey === record.signer);
    if (!key) return { ok: false, problem: `signed by ${record.signer}, which is not a registered operator key` };
    return { ok: true, operator: key.name, signer: record.signer };
  }

  /** Deletes the entry's message from the stream (its state record keeps what it was). */
  async deleteMessage(seq: number): Promise<void> {
    const jsm = await this.manager();
    await jsm.streams.deleteMessage(this.stream, seq, false).catch((e: NatsError) => {
      if (e.api_error?.err_code !== 10037) throw e; // 10037: no message found (already deleted)
    });
  }

  /**
   * Every entry's state record, read from the bucket's stream in full (the newest value of a key wins).
   * Not `kv.keys()`: with nats-server 2.9 its last-per-subject listing can stop short.
   */
  private async records(): Promise<Map<string, StateRecord>> {
    const out = new Map<string, StateRecord>();
    const prefix = `$KV.${this.bucket}.`;
    await this.read(`KV_${this.bucket}`, (m) => {
      const key = fromKvKey(m.subject.slice(prefix.length));
      const op = m.headers?.get('KV-Operation');
      if (op === 'DEL' || op === 'PURGE' || m.data.length === 0) out.delete(key);
      else out.set(key, JSON.parse(m.string()));
    });
    return out;
  }

  /**
   * Hands each message of `stream` to `each`, in order, up to the last one stored when it starts, with an ordered
   * consumer (no server-side state left behind). Messages are not kept once `each` returns.
   */
  private async read(stream: string, each: (m: JsMsg) => void | Promise<void>): Promise<void> {
    const jsm = await this.manager();
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (!info || info.state.messages === 0) return;
    const consumer = await this.client.js.consumers.get(stream);
    const messages = await consumer.consume({ max_messages: 512 });
    for await (const m of messages) {
      await each(m);
      if (m.info.pending === 0) break;
    }
  }

  private async toEntry(m: JsMsg, record: StateRecord | null): Promise<DlqMessage> {
    const time = new Date(Math.floor(m.info.timestampNanos / 1e6)).toISOString();
    if (m.subject.startsWith(ADVISORY)) return this.fromAdvisory(m, time, record);
    const h = headersOf(m.headers);
    const error = h[Headers.Dlq.Error] ?? 'unknown error';
    const originalId = originalIdOf(h);
    return {
      seq: m.seq,
      id: h[Headers.Dlq.Id] ?? h[Headers.MsgId] ?? `dlq:${m.seq}`,
      time: h[Headers.Dlq.Time] ?? time,
      subject: this.client.ns.logical(m.subject).replace(/^dlq\./, ''),
      stream: h[Headers.Dlq.Stream] ?? null,
      streamSeq: num(h[Headers.Dlq.Sequence]),
      consumer: h[Headers.Dlq.Consumer] ?? null,
      attempts: num(h[Headers.Dlq.Attempts]),
      error,
      fingerprint: fingerprintOf(error).fingerprint,
      orderId: h[Headers.CorrelationId] ?? null,
      sagaId: h[Headers.SagaId] ?? null,
      replayCount: Number(h[Headers.ReplayCount] ?? 0),
      state: record?.state ?? 'new',
      source: 'dead_letter',
      hasBody: true,
      originalId,
      dlqMsgId: h[Headers.Dlq.MsgId] ?? null,
      record,
    };
  }

  /** A MAX_DELIVERIES advisory: a consumer gave up without our dead-lettering (the handler never finished). */
  private async fromAdvisory(m: JsMsg, time: string, record: StateRecord | null): Promise<DlqMessage> {
    const a = JSON.parse(m.string()) as { stream: string; consumer: string; stream_seq: number; deliveries: number };
    const error = `MaxDeliveriesExceeded: consumer ${a.consumer} gave up after ${a.deliveries} deliveries without an ack`;
    const jsm = await this.manager();
    const original = await jsm.streams.getMessage(a.stream, { seq: a.stream_seq }).catch(() => undefined);
    const h = headersOf(original?.header);
    return {
      seq: m.seq,
      id: `advisory:${a.stream}:${a.stream_seq}:${m.info.timestampNanos}`,
      time,
      subject: original ? this.client.ns.logical(original.subject) : '(lost)',
      stream: a.stream,
      streamSeq: a.stream_seq,
      consumer: a.consumer,
      attempts: a.deliveries,
      error,
      fingerprint: fingerprintOf(error).fingerprint,
      orderId: h[Headers.CorrelationId] ?? null,
      sagaId: h[Headers.SagaId] ?? null,
      replayCount: Number(h[Headers.ReplayCount] ?? 0),
      state: record?.state ?? (original ? 'new' : 'lost'),
      source: 'advisory',
      hasBody: !!original,
      originalId: originalIdOf(h, { stream: a.stream, seq: a.stream_seq }),
      dlqMsgId: null,
      record,
    };
  }

  /** `replayed` → `failed_again` (dead-lettered again) or `resolved` (its saga reached a final state since). */
  private async refresh(entries: DlqMessage[]): Promise<void> {
    const byOriginal = new Set(entries.map((e) => e.dlqMsgId).filter(Boolean));
    for (const e of entries) {
      const r = e.record;
      if (e.state !== 'replayed' || !r?.newMsgId) continue;
      let next: DlqState | null = byOriginal.has(r.newMsgId) ? 'failed_again' : null;
      if (!next && (e.sagaId || e.orderId)) {
        const saga = await this.client.query<SagaView>(Subjects.QuerySaga, { id: e.sagaId ?? e.orderId }, 2000).catch(() => undefined);
        if (saga && FINAL.includes(saga.status) && Date.parse(saga.updatedAt) >= Date.parse(r.at)) next = 'resolved';
      }
      if (next) {
        e.state = next;
        e.record = { ...r, state: next };
        await this.setState(e.id, e.record);
      }
    }
  }
}

/** The entry without the message itself: the shape `dlq list --json` prints. */
export function listed(e: DlqMessage): DlqEntry {
  const { seq, id, time, subject, stream, streamSeq, consumer, attempts, error, fingerprint, orderId, sagaId, replayCount, state } = e;
  return { seq, id, time, subject, stream, streamSeq, consumer, attempts, error, fingerprint, orderId, sagaId, replayCount, state };
}

/** A key-value key for an entry id (keys allow `[-/_=.A-Za-z0-9]`): other characters as `=XX`. */
const kvKey = (id: string) => id.replace(/[^-/_.A-Za-z0-9]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
const fromKvKey = (key: string) => key.replace(/=([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

/** Filters of `dlq list | replay | purge`. */
export interface DlqFilter {
  subject?: string;
  error?: string;
  fingerprint?: string;
  order?: string;
  state?: DlqState;
  since?: string;
}

/** True when `e` passes every given filter. `subject` takes NATS wildcards (`payment.cmd.*`, `inventory.>`). */
export function matches(e: DlqEntry, f: DlqFilter): boolean {
  const subject = f.subject && new RegExp(`^${f.subject.replace(/\./g, '\\.').replace(/\*/g, '[^.]+').replace(/>$/, '.+')}$`);
  return (
    (!subject || subject.test(e.subject)) &&
    (!f.error || e.error.toLowerCase().includes(f.error.toLowerCase())) &&
    (!f.fingerprint || e.fingerprint === f.fingerprint) &&
    (!f.order || e.orderId === f.order) &&
    (!f.state || e.state === f.state) &&
    (!f.since || Date.parse(e.time) >= Date.parse(f.since))
  );
}
