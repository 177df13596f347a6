import {
  apiErrorCode,
  DeliverPolicy,
  JetStreamApiCodes,
  jetstreamManager,
  JetStreamManager,
  JsMsg,
  KV,
  Kvm,
  MsgHdrs,
  StoredMsg,
} from '@orderflow/messaging/nats';
import { asErrorCode, DLQ_STATE_BUCKET, ErrorCode, Headers, OperatorView, SagaSummary, Subjects } from '@orderflow/contracts';
import { fingerprintOf, originalIdOf, verifySignature } from '@orderflow/messaging';
import { PipelineClient } from '../client';
import { ENDED, newestAttempts } from '../saga/newest';

export type DlqState = 'new' | 'replayed' | 'resolved' | 'failed_again' | 'purged' | 'lost';
export const DlqStates: DlqState[] = ['new', 'replayed', 'resolved', 'failed_again', 'purged', 'lost'];

/** A dead letter as `dlq list --json` prints it (docs/operations.md); times ISO 8601. */
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
  /**
   * The failure's stable code (`Dlq-Error-Code`; `max_deliveries` for an advisory): what advice switches on. Null for a
   * dead letter written before the codes.
   */
  errorCode: ErrorCode | null;
  fingerprint: string;
  orderId: string | null;
  sagaId: string | null;
  /** Its message's `Replay-Count`: how many replays deep its lineage is (0 for an original). */
  replayCount: number;
  /** How often operators replayed this entry. */
  timesReplayed: number;
  /** When a replay of it was dead-lettered in turn: that dead letter's SEQ. */
  failedAgainAs: number | null;
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
  /** When the dead letter keeps only the head of a body too large to keep whole: the original's size in bytes. */
  cutFrom: number | null;
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
  /** Set by a replay: how often the entry has been replayed, this one included. */
  replays?: number;
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

/** The subject a state record's signature is bound to (with the namespace), and the entry's id as its message id. */
const RECORD_SUBJECT = 'dlq-state';
const ADVISORY = '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.';

interface ReadOptions {
  /** From this sequence on (default: the first). */
  startSeq?: number;
  /** Only messages on this subject (NATS wildcards). */
  filter?: string;
  /** With their bodies (default: headers only). */
  bodies?: boolean;
}

/**
 * Hands each message of `stream` (from `startSeq`, on subject `filter` if given) to `each`, in order, up to the last
 * one stored when it starts, with an ordered consumer (no server-side state left behind), headers only unless
 * `bodies`. Messages are not kept once `each` returns.
 */
export async function readStream(
  client: PipelineClient,
  jsm: JetStreamManager,
  stream: string,
  each: (m: JsMsg) => void | Promise<void>,
  opts: ReadOptions = {},
): Promise<void> {
  const info = await jsm.streams.info(stream).catch(() => undefined);
  if (!info || info.state.messages === 0 || (opts.startSeq ?? 0) > info.state.last_seq) return;
  const consumer = await client.js.consumers.get(stream, {
    headers_only: !opts.bodies,
    ...(opts.startSeq ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.startSeq } : {}),
    ...(opts.filter ? { filter_subjects: opts.filter } : {}),
  });
  const messages = await consumer.consume({ max_messages: 512 });
  for await (const m of messages) {
    await each(m);
    if (m.info.pending === 0) break;
  }
}

/** A stored message as the entries are built from it, read by a consumer or fetched by sequence. */
interface Raw {
  seq: number;
  subject: string;
  header?: MsgHdrs;
  /** Empty when read headers-only. */
  data: Uint8Array;
  /** When it was stored, nanoseconds since the epoch. */
  nanos: bigint;
}

const fromJs = (m: JsMsg): Raw => ({
  seq: m.seq,
  subject: m.subject,
  header: m.headers,
  data: m.data,
  nanos: BigInt(m.info.timestampNanos),
});

/** `timestamp` is RFC 3339 with nanoseconds, as the server wrote it. */
function fromStored(m: StoredMsg): Raw {
  const [, whole, fraction] = /^(.*?:\d\d)(?:\.(\d+))?Z$/.exec(m.timestamp) ?? [null, m.timestamp.replace(/Z$/, ''), ''];
  const nanos = BigInt(Date.parse(`${whole}Z`)) * 1_000_000n + BigInt((fraction ?? '').padEnd(9, '0').slice(0, 9));
  return { seq: m.seq, subject: m.subject, header: m.header, data: m.data, nanos };
}

/** A purged entry, from its state record (its message is gone). */
function purgedEntry(id: string, r: StateRecord): DlqMessage {
  const e = r.entry!;
  return {
    ...e,
    timesReplayed: e.timesReplayed ?? 0,
    errorCode: e.errorCode ?? null,
    failedAgainAs: null,
    id,
    state: 'purged',
    source: 'dead_letter',
    hasBody: false,
    cutFrom: null,
    originalId: '',
    dlqMsgId: null,
    record: r,
  };
}

const headersOf = (h: MsgHdrs | undefined): Record<string, string> => Object.fromEntries([...(h ?? [])].map(([k]) => [k, h!.get(k)]));
const num = (v: string | undefined) => (v ? Number(v) : null);

/**
 * The dead-letter stream as operators see it: every entry with its state. What operators did (replayed, purged) lives
 * in the `DLQ_STATE` key-value bucket, keyed by the entry's id; the rest is worked out whenever an operator looks, from
 * the DLQ itself and the order app's sagas (`query.order.sagas`), so it is never stale:
 * - `resolved`: the newest saga attempt of its order ended (COMPLETED or CANCELLED) after it was dead-lettered, however
 *   that came about (a replay, `saga retry` or `resume`, a late reply);
 * - `failed_again`: a replay of it was dead-lettered in turn (`failedAgainAs`);
 * - `replayed`, `purged`: as recorded; `lost`: the original message is gone; `new`: none of these.
 */
export class DeadLetters {
  private operators?: Promise<OperatorView[]>;
  private jsm?: Promise<JetStreamManager>;
  /** Set by `all()` and `get()` when states could not be worked out (the order app did not answer). */
  stale: string | null = null;

  private constructor(
    private readonly client: PipelineClient,
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  /** Opens (creating it if missing) the state bucket of the client's namespace. */
  static async open(client: PipelineClient): Promise<DeadLetters> {
    const bucket = client.ns.stream(DLQ_STATE_BUCKET);
    return new DeadLetters(client, await new Kvm(client.js).create(bucket, { replicas: client.replicas }), bucket);
  }

  /** One JetStream manager for every read and delete (nats.js checks the API with a request each time one is made). */
  manager(): Promise<JetStreamManager> {
    return (this.jsm ??= jetstreamManager(this.client.nc));
  }

  get stream(): string {
    return this.client.ns.stream('DLQ');
  }

  /** Every entry, oldest first (purged ones from their state records). */
  async all(): Promise<DlqMessage[]> {
    const records = await this.records();
    const out: DlqMessage[] = [];
    // Headers only: the list never needs a body (an advisory's small one is read on its own).
    await this.read(this.stream, async (m) => {
      const e = await this.toEntry(m);
      out.push({ ...e, record: records.get(e.id) ?? null });
    });
    // Purged entries live on in their records; one whose sequence a newer entry took (a recreated stream) is left out.
    const present = new Set(out.map((e) => e.seq));
    for (const [id, r] of records) if (r.state === 'purged' && r.entry && !present.has(r.entry.seq)) out.push(purgedEntry(id, r));
    out.sort((a, b) => a.seq - b.seq);
    await this.deriveStates(out, out);
    return out;
  }

  /** The entries of one order (its `Correlation-Id`), oldest first. */
  async ofOrder(orderId: string): Promise<DlqMessage[]> {
    return (await this.all()).filter((e) => e.orderId === orderId);
  }

  /**
   * Entry `seq`, read on its own (not by listing the DLQ): its message, its state record, its order's newest saga
   * attempt and, when it was replayed, the dead letters after it (where a replay that failed again would be).
   * @returns undefined when no entry has this sequence.
   */
  async get(seq: number): Promise<DlqMessage | undefined> {
    const stored = await this.getMessage(this.stream, seq);
    if (!stored) {
      const purged = [...(await this.records())].find(([, r]) => r.state === 'purged' && r.entry?.seq === seq);
      return purged && purgedEntry(...purged);
    }
    const e = await this.toEntry(fromStored(stored));
    e.record = await this.record(e.id);
    const later: DlqMessage[] = [];
    if (e.record?.newMsgId)
      await this.read(this.stream, async (m) => void later.push(await this.toEntry(m)), { startSeq: seq + 1, filter: stored.subject });
    await this.deriveStates([e], later);
    return e;
  }

  /** Entry `id`'s state record and its revision in the bucket (0: none yet), for a compare-and-set. */
  async recordOf(id: string): Promise<{ record: StateRecord | null; revision: number }> {
    const kv = await this.kv.get(kvKey(id));
    if (!kv || kv.operation !== 'PUT' || kv.value.length === 0) return { record: null, revision: kv?.revision ?? 0 };
    return { record: JSON.parse(kv.string()) as StateRecord, revision: kv.revision };
  }

  private async record(id: string): Promise<StateRecord | null> {
    return (await this.recordOf(id)).record;
  }

  /**
   * The message of entry `e`: the dead letter as stored in the DLQ, or, for an advisory, the original in its work stream.
   * @throws Error when the stream does not answer.
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
    // nats.js v3 answers null for a message the stream no longer holds (deleted since).
    return (await jsm.streams.getMessage(stream, { seq })) ?? undefined;
  }

  /**
   * Writes entry `id`'s state record, signed by the operator: a compare-and-set on the record the caller read (its
   * revision: 0 for none), so of two operators acting on the same entry at once, one writes and the other learns of it.
   * @returns false when the record changed since `revision` was read (nothing written).
   * @throws CliFailure when the operator has no key.
   */
  async setState(id: string, record: StateRecord, revision: number): Promise<boolean> {
    const sig = this.client.sign(RECORD_SUBJECT, id, recordBytes(record));
    const value = JSON.stringify({ ...record, signer: sig.signer, signature: sig.signature });
    try {
      if (revision === 0) await this.kv.create(kvKey(id), value);
      else await this.kv.update(kvKey(id), value, revision);
      return true;
    } catch (e) {
      // Wrong last sequence: the record changed since it was read (create() on a key that exists says so too).
      const code = apiErrorCode(e);
      if (code === JetStreamApiCodes.StreamWrongLastSequence || code === JetStreamApiCodes.StreamWrongLastSequenceUnknown) return false;
      throw e;
    }
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
    const operator = await this.operatorOf(record.signer);
    if (operator === undefined) return { ok: false, problem: `signed by ${record.signer}, which is not a registered operator key` };
    return { ok: true, operator, signer: record.signer };
  }

  /** Deletes the entry's message from the stream (its state record keeps what it was). */
  async deleteMessage(seq: number): Promise<void> {
    const jsm = await this.manager();
    await jsm.streams.deleteMessage(this.stream, seq, false).catch((e: unknown) => {
      if (apiErrorCode(e) !== JetStreamApiCodes.NoMessageFound) throw e; // already deleted
    });
  }

  /**
   * Every entry's state record, read from the bucket's stream in full (the newest value of a key wins).
   * Not `kv.keys()`: with nats-server 2.9 its last-per-subject listing can stop short.
   */
  private async records(): Promise<Map<string, StateRecord>> {
    const out = new Map<string, StateRecord>();
    const prefix = `$KV.${this.bucket}.`;
    const bodies = { bodies: true };
    await this.read(
      `KV_${this.bucket}`,
      (m) => {
        const key = fromKvKey(m.subject.slice(prefix.length));
        const op = m.headers?.get('KV-Operation');
        if (op === 'DEL' || op === 'PURGE' || m.data.length === 0) out.delete(key);
        else out.set(key, JSON.parse(m.string()));
      },
      bodies,
    );
    return out;
  }

  /** Reads `stream` (see `readStream`). */
  private async read(stream: string, each: (m: JsMsg) => void | Promise<void>, opts: ReadOptions = {}): Promise<void> {
    await readStream(this.client, await this.manager(), stream, each, opts);
  }

  /** Every dead letter's `Dlq-Msg-Id` (the message id of what it holds) and its SEQ: where a replay failed again. */
  async bornAs(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await this.read(this.stream, (m) => {
      const id = m.headers?.get(Headers.Dlq.MsgId);
      if (id) out.set(id, m.seq);
    });
    return out;
  }

  /**
   * The registered operator whose key is `signer` (asked once, over `query.order.operators`): its name, undefined when
   * no operator has that key, null when the order service did not answer.
   */
  async operatorOf(signer: string): Promise<string | null | undefined> {
    this.operators ??= this.client.query<OperatorView[]>(Subjects.QueryOperators, {}).then((v) => v ?? []);
    const registered = await this.operators.catch(() => null);
    return registered && registered.find((o) => o.publicKey === signer)?.name;
  }

  private async toEntry(msg: JsMsg | Raw): Promise<DlqMessage> {
    const m = 'info' in msg ? fromJs(msg) : msg;
    const time = new Date(Number(m.nanos / 1_000_000n)).toISOString();
    if (m.subject.startsWith(ADVISORY)) return this.fromAdvisory(m, time);
    const h = headersOf(m.header);
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
      errorCode: asErrorCode(h[Headers.Dlq.ErrorCode]) ?? null,
      fingerprint: fingerprintOf(error).fingerprint,
      orderId: h[Headers.CorrelationId] ?? null,
      sagaId: h[Headers.SagaId] ?? null,
      replayCount: Number(h[Headers.ReplayCount] ?? 0),
      timesReplayed: 0,
      failedAgainAs: null,
      state: 'new',
      source: 'dead_letter',
      hasBody: true,
      cutFrom: num(h[Headers.Dlq.BodyBytes]),
      originalId,
      dlqMsgId: h[Headers.Dlq.MsgId] ?? null,
      record: null,
    };
  }

  /** A MAX_DELIVERIES advisory: a consumer gave up without our dead-lettering (the handler never finished). */
  private async fromAdvisory(m: Raw, time: string): Promise<DlqMessage> {
    const body = m.data?.length ? m.data : (await this.getMessage(this.stream, m.seq))?.data;
    const a = JSON.parse(Buffer.from(body ?? []).toString('utf8') || '{}') as {
      stream: string;
      consumer: string;
      stream_seq: number;
      deliveries: number;
    };
    const error = `MaxDeliveriesExceeded: consumer ${a.consumer} gave up after ${a.deliveries} deliveries without an ack`;
    const original = await this.getMessage(a.stream, a.stream_seq).catch(() => undefined);
    const h = headersOf(original?.header);
    return {
      seq: m.seq,
      id: `advisory:${a.stream}:${a.stream_seq}:${Number(m.nanos)}`,
      time,
      subject: original ? this.client.ns.logical(original.subject) : '(lost)',
      stream: a.stream,
      streamSeq: a.stream_seq,
      consumer: a.consumer,
      attempts: a.deliveries,
      error,
      errorCode: 'max_deliveries',
      fingerprint: fingerprintOf(error).fingerprint,
      orderId: h[Headers.CorrelationId] ?? null,
      sagaId: h[Headers.SagaId] ?? null,
      replayCount: Number(h[Headers.ReplayCount] ?? 0),
      timesReplayed: 0,
      failedAgainAs: null,
      state: original ? 'new' : 'lost',
      source: 'advisory',
      hasBody: !!original,
      cutFrom: null,
      originalId: originalIdOf(h, { stream: a.stream, seq: a.stream_seq }),
      dlqMsgId: null,
      record: null,
    };
  }

  /**
   * Sets each of `entries`' `state` (see the class comment, from its order's newest saga attempt), `failedAgainAs`
   * (looked for among `deadLetters`) and `timesReplayed`. When the order app does not answer, states are as
   * recorded, and `stale` says why.
   */
  private async deriveStates(entries: DlqMessage[], deadLetters: DlqMessage[]): Promise<void> {
    const bornAs = new Map(deadLetters.filter((e) => e.dlqMsgId).map((e) => [e.dlqMsgId!, e.seq]));
    const orders = [...new Set(entries.filter((e) => e.orderId && e.state !== 'purged').map((e) => e.orderId!))];
    const newest = await newestAttempts(this.client, orders).catch((e: Error) => {
      this.stale = `states as last recorded, not worked out from the sagas: ${e.message}`;
      return new Map<string, SagaSummary>();
    });
    for (const e of entries) {
      const r = e.record;
      e.timesReplayed = r?.replays ?? (r?.newMsgId ? 1 : 0);
      if (e.state === 'purged' || r?.state === 'purged') {
        e.state = 'purged';
        continue;
      }
      e.failedAgainAs = r?.newMsgId ? (bornAs.get(r.newMsgId) ?? null) : null;
      const saga = e.orderId ? newest.get(e.orderId) : undefined;
      // A different order under an existing order id never ran: its order's saga ending does not resolve it.
      const ownSaga = e.errorCode !== 'idempotency_key_reused';
      if (ownSaga && saga && ENDED.includes(saga.status) && saga.updatedAt >= e.time) e.state = 'resolved';
      else if (e.state === 'lost') continue;
      else if (e.failedAgainAs !== null) e.state = 'failed_again';
      else if (r?.newMsgId) e.state = 'replayed';
      else e.state = 'new';
    }
  }
}

/** The entry without the message itself: the shape `dlq list --json` prints. */
export function listed(e: DlqMessage): DlqEntry {
  const { seq, id, time, subject, stream, streamSeq, consumer, attempts, error, errorCode, fingerprint, orderId, sagaId } = e;
  const { replayCount, timesReplayed, failedAgainAs, state } = e;
  return {
    seq,
    id,
    time,
    subject,
    stream,
    streamSeq,
    consumer,
    attempts,
    error,
    errorCode,
    fingerprint,
    orderId,
    sagaId,
    replayCount,
    timesReplayed,
    failedAgainAs,
    state,
  };
}

/** A key-value key for an entry id (keys allow `[-/_=.A-Za-z0-9]`): other characters as `=XX`. */
const kvKey = (id: string) => id.replace(/[^-/_.A-Za-z0-9]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
const fromKvKey = (key: string) => key.replace(/=([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

/**
 * Filters of `dlq list | replay | purge | stats`: each may be given several times (its values OR-ed); different
 * filters are AND-ed.
 */
export interface DlqFilter {
  subject?: string[];
  error?: string[];
  fingerprint?: string[];
  order?: string[];
  state?: DlqState[];
  since?: string;
}

/** A NATS subject filter (`payment.cmd.*`, `inventory.>`) as a regular expression. */
const subjectPattern = (filter: string) => new RegExp(`^${filter.replace(/\./g, '\\.').replace(/\*/g, '[^.]+').replace(/>$/, '.+')}$`);

/** True when `e` passes every given filter (one of its values). `subject` takes NATS wildcards. */
export function matches(e: DlqEntry, f: DlqFilter): boolean {
  const any = <T>(values: T[] | undefined, test: (v: T) => boolean) => !values?.length || values.some(test);
  return (
    any(f.subject, (s) => subjectPattern(s).test(e.subject)) &&
    any(f.error, (t) => e.error.toLowerCase().includes(t.toLowerCase())) &&
    any(f.fingerprint, (fp) => e.fingerprint === fp) &&
    any(f.order, (o) => e.orderId === o) &&
    any(f.state, (st) => e.state === st) &&
    (!f.since || Date.parse(e.time) >= Date.parse(f.since))
  );
}
