import { EventEmitter } from 'node:events';
import {
  AckPolicy,
  apiErrorCode,
  AuthorizationError,
  connect,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  JetStreamManager,
  Kvm,
  NatsConnection,
  NatsJetStream,
  PubAck,
  RequestError,
  RetentionPolicy,
  Status,
  StorageType,
  TimeoutError,
  UserAuthenticationExpiredError,
} from './nats';
import {
  ConsumerSpec,
  Consumers,
  DLQ_STATE_BUCKET,
  maxDeliveriesAdvisory,
  Namespace,
  StreamName,
  Streams,
  WorkStreams,
} from '@orderflow/contracts';
import { UserNkey } from './nkey';
import type { Logger } from 'pino';
import { NatsAuthError, TopologyMissingError, UnreachableError } from './errors';
import { encodeBody, OutgoingMessage, toNatsHeaders } from './message';
import { PubAcks } from './pub-acks';

/** How long and how much the streams keep (milliseconds, bytes). */
export interface StreamLimits {
  workMaxAgeMs: number;
  /** Most bytes the ingress stream (ORDER) holds; past it the stream refuses new messages. */
  ingressMaxBytes: number;
  /** Largest message a work stream accepts (`max_msg_size`). */
  workMaxMsgSize: number;
  dlqMaxAgeMs: number;
  /** Most bytes the DLQ holds; past it the DLQ refuses new dead letters (and the consumers hold them). */
  dlqMaxBytes: number;
  /** Copies of each stream on a cluster (JetStream's `num_replicas`; R3 survives the loss of one server). */
  replicas: number;
}

/**
 * How a connection authenticates: as `identity`, with its nkey `seed` (NATS "NKeys" authentication: the server sends a
 * nonce, the client signs it), replies on its private `inboxPrefix` (nats.js `inboxPrefix`; the server lets only this
 * identity subscribe there). No seed: an anonymous connection (a broker without authentication).
 */
export interface NatsCredentials {
  identity: string;
  inboxPrefix: string;
  seed?: Uint8Array;
}

/** nats.js connection options for `creds`. */
export const natsAuthOptions = (creds?: NatsCredentials) =>
  creds ? { inboxPrefix: creds.inboxPrefix, ...(creds.seed ? { authenticator: UserNkey.fromSeed(creds.seed).authenticator() } : {}) } : {};

/** The servers of `NATS_URL`: one URL or a comma-separated list of a cluster's. */
export const natsServers = (url: string): string[] =>
  url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * True when NATS refused a connection's credentials: nats.js v3's `AuthorizationError` (authorization violation,
 * authentication timeout or expiry) or `UserAuthenticationExpiredError`.
 */
export function isNatsAuthFailure(e: unknown): boolean {
  return e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError;
}

/** "refused the credentials" for an authentication failure, "is unreachable" otherwise. */
export function natsConnectProblem(url: string, e: unknown): string {
  return isNatsAuthFailure(e)
    ? `NATS at ${url} refused the credentials: ${(e as Error).message}`
    : `NATS at ${url} is unreachable: ${(e as Error).message}`;
}

/** JetStream API error codes of a missing stream or consumer (`err_code`; nats-server `server/errors.json`). */
const NOT_FOUND_CODES = new Set<number>([JetStreamApiCodes.StreamNotFound, JetStreamApiCodes.ConsumerNotFound]);
const isNotFound = (e: unknown) => NOT_FOUND_CODES.has(apiErrorCode(e) ?? 0);

/** JetStream's refusals of a publish (`err_code`, nats-server `server/errors.json`): 10054 message too large, 10077 not stored. */
const TOO_LARGE = 10054;
const NOT_STORED = 10077;

/**
 * Why a stream refused a publish, in words an operator can act on, or undefined when `e` is not such a refusal
 * (no stream, no answer: the caller's own message applies).
 */
export function publishRefusal(e: unknown): string | undefined {
  if (!(e instanceof JetStreamApiError)) return undefined;
  if (e.code === TOO_LARGE) return `the stream refused it: ${e.message} (STREAM_MAX_MSG_SIZE)`;
  if (e.code === NOT_STORED)
    return `the stream refused it: ${e.message} (a full stream refuses new messages until old ones expire: ORDER_STREAM_MAX_BYTES, DLQ_MAX_BYTES, STREAM_MAX_AGE)`;
  return undefined;
}

/** Deletes every stream of the namespace `ns` and its `DLQ_STATE` bucket (tests and the bench clean up with it). */
export async function deleteNamespaceStreams(jsm: JetStreamManager, ns: Namespace): Promise<void> {
  for (const s of Object.keys(Streams) as StreamName[]) await jsm.streams.delete(ns.stream(s)).catch(() => undefined);
  await jsm.streams.delete(`KV_${ns.stream(DLQ_STATE_BUCKET)}`).catch(() => undefined);
}

/** What `provisionTopology` sets on the streams and durable consumers. */
export interface ProvisionOptions extends StreamLimits {
  /** The apps' MAX_DELIVER: the consumers' server-side limit is one more (the apps dead-letter on their last attempt). */
  maxDeliver: number;
  ackWaitMs: number;
  /** Each durable consumer's `max_ack_pending`. */
  maxAckPending: number;
}

/**
 * Creates or updates every stream, every durable consumer of the topology and the `DLQ_STATE` bucket (idempotent).
 * Only `orderflow setup` (and tests, on a broker without authentication) call it: the apps' identities may not manage
 * streams or consumers. Returns the names provisioned.
 */
export async function provisionTopology(client: JetStreamClient, opts: ProvisionOptions): Promise<string[]> {
  const streams = Object.keys(Streams) as StreamName[];
  await client.ensureStreams(streams, opts);
  const consumers = Object.values(Consumers);
  for (const spec of consumers) await client.ensureConsumer(spec, opts);
  const bucket = client.ns.stream(DLQ_STATE_BUCKET);
  await new Kvm(client.js).create(bucket, { replicas: opts.replicas });
  return [
    ...streams.map((s) => `stream ${client.ns.stream(s)}`),
    ...consumers.map((c) => `consumer ${client.ns.stream(c.stream)}/${c.durable}`),
    `bucket ${bucket}`,
  ];
}

/**
 * One NATS connection with its JetStream contexts, bound to a namespace.
 * Source: nats.js JetStream API (`jetstreamManager`, `jetstream().publish` with `msgID` for
 * server-side de-duplication, https://docs.nats.io/using-nats/developer/develop_jetstream/model_deep_dive#message-deduplication).
 */
export class JetStreamClient {
  private disconnected = false;
  /**
   * The connection's status events by type (nats.js v3 `Status`: `disconnect`, `reconnect`, `reconnecting`, `update`,
   * `error`, `ldm`, `close`, …), each with its status object; what `JetStreamServer.on` hands Nest.
   */
  readonly events = new EventEmitter<Record<Status['type'], [Status]>>();
  private readonly acks: PubAcks;

  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly js: NatsJetStream,
    readonly ns: Namespace,
    private readonly log: Logger,
    inboxPrefix: string,
    timeoutMs: number,
  ) {
    this.acks = new PubAcks(nc, inboxPrefix, timeoutMs);
    void this.watch();
  }

  /** False from the moment nats.js reports the connection lost until it reconnects (or once it is closed). */
  get connected(): boolean {
    return !this.disconnected && !this.nc.isClosed();
  }

  private async watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.disconnected = true;
      if (s.type === 'reconnect') this.disconnected = false;
      // Only to listeners: an EventEmitter throws on an `error` nobody listens to, and nats.js reports server errors
      // (a permissions violation, say) as `error` statuses that must not end this loop.
      if (this.events.listenerCount(s.type) > 0) this.events.emit(s.type, s);
    }
  }

  /**
   * Connects to `url` as `creds` (anonymously without them).
   * @throws NatsAuthError when the server refuses the credentials.
   * @throws UnreachableError when the server does not answer within `timeoutMs`, or has no JetStream.
   */
  static async connect(
    url: string,
    ns: Namespace,
    log: Logger,
    name: string,
    creds?: NatsCredentials,
    timeoutMs = 5000,
  ): Promise<JetStreamClient> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: natsServers(url),
        name,
        timeout: timeoutMs,
        maxReconnectAttempts: -1,
        // No stack captured at each request (every JetStream publish is one) for an error that almost never comes:
        // it cost the order app about 2.5 % of its CPU in `npm run bench`. Errors keep their message and cause.
        noAsyncTraces: true,
        ...natsAuthOptions(creds),
      });
    } catch (e) {
      const problem = natsConnectProblem(url, e);
      throw isNatsAuthFailure(e) ? new NatsAuthError(problem, { cause: e }) : new UnreachableError(problem, { cause: e });
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
      return new JetStreamClient(nc, jsm, jetstream(nc, { timeout: timeoutMs }), ns, log, creds?.inboxPrefix ?? '_INBOX', timeoutMs);
    } catch (e) {
      await nc.close();
      throw new UnreachableError(`NATS at ${url} has no JetStream (start nats-server with -js): ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Creates (or updates to match) the given streams; idempotent, safe to race with other apps. Work streams keep
   * messages for `limits.workMaxAgeMs`, each at most `limits.workMaxMsgSize`; the ingress stream (ORDER) at most
   * `limits.ingressMaxBytes` of them, the DLQ at most `limits.dlqMaxBytes` for `limits.dlqMaxAgeMs`. A full ORDER or DLQ
   * refuses new messages (`discard: new`) instead of dropping old ones that may not have been dealt with. (The other
   * work streams carry only what the apps publish, as fast as orders come in: they are bounded by age.) The OPS
   * audit log is kept (one small event per operator action). Each has `limits.replicas` copies (consumers inherit it).
   */
  async ensureStreams(names: StreamName[], limits: StreamLimits): Promise<void> {
    const ns = 1_000_000;
    for (const name of names) {
      const spec = Streams[name];
      const streamName = this.ns.stream(name);
      const subjects = spec.subjects.map((s) => this.ns.subject(s));
      if (name === 'DLQ') {
        // Safety net: advisories for messages whose last delivery ended without our own dead-lettering (a crash).
        subjects.push(...WorkStreams.map((s) => maxDeliveriesAdvisory(this.ns.stream(s))));
      }
      const bounds =
        name === 'DLQ'
          ? { max_age: limits.dlqMaxAgeMs * ns, max_bytes: limits.dlqMaxBytes, discard: DiscardPolicy.New }
          : name === 'OPS'
            ? {}
            : {
                max_age: limits.workMaxAgeMs * ns,
                max_msg_size: limits.workMaxMsgSize,
                ...(name === 'ORDER' ? { max_bytes: limits.ingressMaxBytes, discard: DiscardPolicy.New } : {}),
              };
      const config = {
        name: streamName,
        subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        duplicate_window: 2 * 60 * 1_000_000_000,
        num_replicas: limits.replicas,
        ...bounds,
      };
      await this.upsert(
        () => this.jsm.streams.info(streamName),
        () => this.jsm.streams.add(config),
        () => this.jsm.streams.update(streamName, config),
      );
    }
  }

  /** Creates (or updates) a durable pull consumer with explicit ack; idempotent. */
  async ensureConsumer(spec: ConsumerSpec, opts: Pick<ProvisionOptions, 'maxDeliver' | 'ackWaitMs' | 'maxAckPending'>): Promise<void> {
    const { maxDeliver, ackWaitMs, maxAckPending } = opts;
    const stream = this.ns.stream(spec.stream);
    const config = {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: this.ns.subject(spec.filterSubject),
      // One more than ours: we dead-letter on the last attempt ourselves; the server's limit (and its
      // MAX_DELIVERIES advisory) only catches a process that died while handling that attempt.
      max_deliver: maxDeliver + 1,
      ack_wait: ackWaitMs * 1_000_000,
      // What one consumer may hold unacked, and so the most an app keeps in memory for it (alive with working()) while
      // its database is away: nats.js refills its pull as messages arrive, whether or not we have handled them, so
      // this is the bound; the rest waits in the stream.
      max_ack_pending: maxAckPending,
    };
    await this.upsert(
      () => this.jsm.consumers.info(stream, spec.durable),
      () => this.jsm.consumers.add(stream, config),
      () => this.jsm.consumers.update(stream, spec.durable, config),
    );
  }

  /**
   * Creates or updates, retrying for up to 30 s while JetStream is not ready (a request timeout, or 503 "no
   * suitable peers" / "JetStream system temporarily unavailable" while a cluster forms or elects a leader).
   * @throws UnreachableError when it is still not ready after that; the server's error otherwise.
   */
  private async upsert(info: () => Promise<unknown>, add: () => Promise<unknown>, update: () => Promise<unknown>) {
    const deadline = Date.now() + 30_000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.upsertOnce(info, add, update);
      } catch (e) {
        const notReady =
          e instanceof TimeoutError ||
          (e instanceof RequestError && e.isNoResponders()) ||
          (e instanceof JetStreamApiError && e.status === 503) ||
          (e instanceof Error && e.name === 'JetStreamNotEnabled');
        if (!notReady) throw e;
        if (Date.now() > deadline)
          throw new UnreachableError(`JetStream did not become ready within 30 s (${attempt} attempts): ${(e as Error).message}`, {
            cause: e,
          });
        this.log.warn({ err: e, attempt }, 'JetStream not ready yet; retrying stream setup');
        await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 3000)));
      }
    }
  }

  private async upsertOnce(info: () => Promise<unknown>, add: () => Promise<unknown>, update: () => Promise<unknown>) {
    try {
      await info();
    } catch (e) {
      if (!isNotFound(e)) throw e;
      try {
        await add();
        return;
      } catch (addError) {
        // Another app created it between our info and add (nats-server 2.9 may say "already in use" or "subjects
        // overlap with an existing stream"): if it exists now, update it; otherwise the error is real.
        const existsNow = await info().then(
          () => true,
          () => false,
        );
        if (!existsNow) throw addError;
      }
    }
    await update();
  }

  /**
   * The durable consumer `spec`, which `orderflow setup` created.
   * @throws TopologyMissingError naming it (and `orderflow setup`) when it or its stream does not exist.
   */
  async consumer(spec: ConsumerSpec) {
    const stream = this.ns.stream(spec.stream);
    try {
      return await this.js.consumers.get(stream, spec.durable);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      throw new TopologyMissingError(
        `durable consumer ${spec.durable} on stream ${stream} does not exist (${(e as Error).message}): run \`orderflow setup\``,
        { cause: e },
      );
    }
  }

  /**
   * Publishes to JetStream and waits for the stream's ack (`PubAcks`: every publish of the connection on one reply
   * subscription).
   * @param msgId becomes `Nats-Msg-Id`: the stream drops a second publish with the same id within its duplicate window.
   * @returns JetStream's ack (`duplicate` when the stream's duplicate window dropped it as a re-publish).
   * @throws Error when no stream acks (a `JetStreamApiError` for a refusal, see `publishRefusal`; a `TimeoutError`; a
   *   `RequestError` caused by `NoRespondersError` when no stream takes the subject).
   */
  publish(msg: OutgoingMessage, msgId: string): Promise<PubAck> {
    return this.acks.publish(this.ns.subject(msg.subject), encodeBody(msg.body), msgId, toNatsHeaders(msg));
  }

  /**
   * Message `seq` of stream `stream` (its full name), or undefined when the stream does not hold it.
   * @throws Error on anything else (no answer, no permission).
   */
  async storedMessage(
    stream: string,
    seq: number,
  ): Promise<{ subject: string; headers: Record<string, string>; data: Uint8Array } | undefined> {
    try {
      // nats.js v3 answers null for a sequence the stream does not hold.
      const m = await this.jsm.streams.getMessage(stream, { seq });
      if (!m) return undefined;
      const h = m.header;
      return { subject: m.subject, headers: Object.fromEntries([...(h ?? [])].map(([k]) => [k, h.get(k)])), data: m.data };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch (e) {
      this.log.warn({ err: e }, 'NATS drain failed');
    }
  }
}
