import { randomUUID } from 'node:crypto';
import {
  apiErrorCode,
  connect,
  headers as natsHeaders,
  isNoResponders,
  JetStreamApiCodes,
  jetstream,
  jetstreamManager,
  Msg,
  NatsConnection,
  NatsJetStream,
  QueuedIterator,
  serviceApi,
  Subscription,
} from '@orderflow/messaging/nats';
import {
  ErrorCode,
  Headers,
  MalformedMessageError,
  messageTypeOf,
  Namespace,
  OrderView,
  parseMessage,
  QueryReply,
  Subjects,
} from '@orderflow/contracts';
import {
  isNatsAuthFailure,
  natsAuthOptions,
  NatsCredentials,
  natsConnectProblem,
  natsServers,
  PubAcks,
  publishRefusal,
  Signature,
  signatureHeaders,
  signMessage,
} from '@orderflow/messaging';
import type { EndpointData } from '@orderflow/transport';
import { CliFailure, CommandRejected, UsageError } from './cli.errors';

/**
 * What became of a published order: its saga's outcome, `REJECTED` (the order.created was dead-lettered:
 * reason = the error), `DUPLICATE` (its order id belongs to an order with a different body) or `PENDING`
 * (no outcome within the wait).
 */
export interface Outcome {
  orderId: string;
  status: 'CONFIRMED' | 'CANCELLED' | 'REJECTED' | 'DUPLICATE' | 'PENDING';
  reason: string | null;
  /** Milliseconds from publish to the outcome event; null when it never came. */
  ms: number | null;
  /** For a PENDING order: where its newest saga attempt stands (the step it waits on, since when). */
  waiting?: { sagaId: string; attempt: number; status: string; step: string | null; since: string } | null;
}

/**
 * What the CLI knows of the pipeline: JetStream to publish events and commands, core NATS request/reply to
 * ask the owning service. It never touches a database.
 */
export class PipelineClient {
  /** Publishes wait for their streams' acks on one reply subscription (`PubAcks`). */
  private readonly acks: PubAcks;

  private constructor(
    readonly nc: NatsConnection,
    readonly js: NatsJetStream,
    readonly ns: Namespace,
    readonly url: string,
    readonly replicas: number,
    private readonly creds?: NatsCredentials,
  ) {
    this.acks = new PubAcks(nc, creds?.inboxPrefix ?? '_INBOX', 5000);
  }

  /**
   * `url` is one server or a comma-separated list; `replicas` is what the CLI's own bucket gets (NATS_STREAM_REPLICAS);
   * `creds` the identity it connects as (anonymous without).
   * @throws CliFailure naming the URL when NATS does not answer or refuses the credentials.
   */
  static async connect(url: string, namespace: string, replicas = 1, creds?: NatsCredentials): Promise<PipelineClient> {
    try {
      const nc = await connect({
        servers: natsServers(url),
        timeout: 3000,
        maxReconnectAttempts: 0,
        name: `orderflow-cli${creds ? ` (${creds.identity})` : ''}`,
        ...natsAuthOptions(creds),
      });
      return new PipelineClient(nc, jetstream(nc, { timeout: 5000 }), new Namespace(namespace), url, replicas, creds);
    } catch (e) {
      const problem = natsConnectProblem(url, e);
      throw new CliFailure(
        isNatsAuthFailure(e)
          ? problem
          : `${problem}; start it with \`docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d nats\` or \`npm start\``,
        {
          cause: e,
        },
      );
    }
  }

  /**
   * Publishes to JetStream and waits for the stream's ack. `headers` are added to the message (lineage, …).
   * @throws CliFailure when no stream stores it: none for the subject (setup never ran for this namespace), or the
   *   stream refused it (too large, or full).
   */
  async publish(
    subject: string,
    body: object | Uint8Array,
    msgId: string = randomUUID(),
    headers: Record<string, string> = {},
  ): Promise<string> {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    const data = body instanceof Uint8Array ? body : Buffer.from(JSON.stringify(body));
    try {
      await this.acks.publish(this.ns.subject(subject), data, msgId, h);
      return msgId;
    } catch (e) {
      const refusal = publishRefusal(e);
      throw new CliFailure(
        refusal
          ? `could not publish ${subject} (${data.length} bytes): ${refusal}`
          : `could not publish ${subject} to ${this.url}: ${(e as Error).message} (has \`orderflow setup\` created the streams?)`,
        { cause: e },
      );
    }
  }

  /** The operator the CLI acts as: the name of its identity (`operator-<name>`). */
  get operator(): string {
    return this.creds?.identity.replace(/^operator-/, '') ?? 'anonymous';
  }

  /**
   * The operator's signature of `data` on `subject` (logical) with `msgId`: what the order app verifies operator commands
   * by, and what the audit records carry.
   * @throws CliFailure when the operator has no key (`orderflow setup operator add NAME`).
   */
  sign(subject: string, msgId: string, data: Uint8Array): Signature {
    if (!this.creds?.seed)
      throw new CliFailure(`no key for ${this.creds?.identity ?? 'this operator'} to sign with: run \`orderflow setup operator add NAME\``);
    return signMessage(this.creds.seed, this.ns.subject(subject), msgId, data);
  }

  /** Publishes `body` signed by the operator (`Orderflow-Signer` / `Orderflow-Signature`). @throws as `publish` and `sign`. */
  async publishSigned(subject: string, body: object, msgId: string = randomUUID(), headers: Record<string, string> = {}): Promise<string> {
    const data = Buffer.from(JSON.stringify(body));
    return this.publish(subject, data, msgId, { ...headers, ...signatureHeaders(this.sign(subject, msgId, data)) });
  }

  /**
   * Asks the owning service. Returns undefined for `not_found`.
   * @throws CliFailure when no service answers, or it reports an error.
   */
  async query<T>(subject: string, body: object, timeoutMs = 5000): Promise<T | undefined> {
    let text: string;
    try {
      text = (await this.nc.request(this.ns.subject(subject), Buffer.from(JSON.stringify(body)), { timeout: timeoutMs })).string();
    } catch (e) {
      const owner = subject.split('.')[1];
      const noResponders = isNoResponders(e);
      if (noResponders) await this.requireNamespace();
      const why = noResponders ? 'no instance is listening' : (e as Error).message;
      throw new CliFailure(`the ${owner} service did not answer ${subject} (${why}); is it running? (\`npm start\`)`, { cause: e });
    }
    const reply = JSON.parse(text) as QueryReply<T>;
    if (reply.ok) return reply.data;
    if (reply.error.code === 'not_found') return undefined;
    throw new CliFailure(`${subject}: ${reply.error.message}`);
  }

  /**
   * @throws UsageError when this namespace has no streams (a misspelt `--namespace` or `ORDERFLOW_NAMESPACE`, or
   *   `orderflow setup` never ran for it): checked only once something it should hold is missing.
   */
  async requireNamespace(): Promise<void> {
    const stream = this.ns.stream('ORDER');
    const jsm = await jetstreamManager(this.nc);
    const exists = await jsm.streams.info(stream).then(
      () => true,
      (e: unknown) => apiErrorCode(e) !== JetStreamApiCodes.StreamNotFound,
    );
    if (!exists)
      throw new UsageError(
        `namespace "${this.ns.prefix}" has no streams (no ${stream}): is --namespace (or ORDERFLOW_NAMESPACE) right? \`orderflow setup\` creates them`,
      );
  }

  /**
   * True when an instance of `app` in this namespace answers the service API's `$SRV.PING.<app>` within `timeoutMs`.
   */
  async ping(app: string, timeoutMs = 500): Promise<boolean> {
    return (await this.answering(app, timeoutMs)) > 0;
  }

  /** How many instances of `app` in this namespace answer `$SRV.PING.<app>` within `timeoutMs`. */
  async answering(app: string, timeoutMs = 500): Promise<number> {
    const replies = await collect(serviceApi(this.nc).client({ strategy: 'timer', maxWait: timeoutMs }).ping(app));
    return replies.filter((r) => (r.metadata?.namespace ?? '') === this.ns.prefix).length;
  }

  /**
   * Every running instance of the apps in this namespace, from the service API (`$SRV.INFO`, `$SRV.STATS`):
   * name, id, version, start time, pid and, per endpoint, its subject, requests, errors and average time.
   * Collects the replies that arrive within `timeoutMs`.
   */
  async instances(timeoutMs = 1000): Promise<ServiceInstance[]> {
    const services = serviceApi(this.nc).client({ strategy: 'timer', maxWait: timeoutMs });
    const [infos, stats] = await Promise.all([collect(services.info()), collect(services.stats())]);
    const statsById = new Map(stats.map((s) => [s.id, s]));
    return infos
      .filter((i) => (i.metadata?.namespace ?? '') === this.ns.prefix)
      .map((i) => {
        const s = statsById.get(i.id);
        return {
          name: i.name,
          id: i.id,
          version: i.version,
          pid: Number(i.metadata?.pid) || null,
          started: s?.started ?? null,
          metricsUrl: i.metadata?.metrics_url ?? null,
          healthUrl: i.metadata?.health_url ?? null,
          // Our apps measure their async handlers themselves (`data`); nats.js's own figures are the fallback.
          endpoints: (s?.endpoints ?? []).map((e) => {
            const data = e.data as EndpointData | undefined;
            return {
              name: e.name,
              subject: this.ns.logical(e.subject),
              requests: e.num_requests,
              errors: data?.errors ?? e.num_errors,
              averageMs: data?.averageMs ?? Math.round(e.average_processing_time / 1e4) / 100,
            };
          }),
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /**
   * Validates `body` against the subject's contract class (as the service will), publishes the command — signed by the
   * operator when `signed` (operator commands, `order.cmd.>`) — and waits for the first event it causes on one of
   * `replies` (matched on `Causation-Id`).
   * @param check how to tell the user to look at the outcome if it does not come, e.g. "orderflow accounts show alice".
   * @throws UsageError when the body fails validation (nothing is sent).
   * @throws CommandRejected when the service dead-letters the command (with its reason, within a second).
   * @throws CliFailure after `timeoutMs` without either: the command may still be applied later.
   */
  async command<T>(
    subject: string,
    body: object,
    replies: string | string[],
    opts: { timeoutMs?: number; check?: string; msgId?: string; signed?: boolean } = {},
  ): Promise<{ subject: string; body: T }> {
    validated(subject, body);
    const msgId = opts.msgId ?? randomUUID();
    const timeoutMs = opts.timeoutMs ?? 10000;
    const subs = [...[replies].flat(), Subjects.deadLetter(subject)].map((s) => this.nc.subscribe(this.ns.subject(s)));
    try {
      const answer = new Promise<{ subject: string; body: T }>((resolve, reject) => {
        for (const sub of subs) {
          (async () => {
            for await (const m of sub) {
              if (m.headers?.get(Headers.Dlq.MsgId) === msgId)
                return reject(await this.rejection(subject, m.headers.get(Headers.Dlq.Error), msgId));
              if (m.headers?.get(Headers.CausationId) === msgId)
                return resolve({ subject: this.ns.logical(m.subject), body: JSON.parse(m.string()) });
            }
          })();
        }
      });
      await (opts.signed ? this.publishSigned(subject, body, msgId) : this.publish(subject, body, msgId));
      const owner = subject.split('.')[0];
      const check = opts.check ? `; check with \`${opts.check}\` before sending it again` : '';
      return await withTimeout(
        answer,
        timeoutMs,
        `no answer from the ${owner} service within ${timeoutMs} ms: ${subject} is stored and may still be applied when the service runs${check}`,
      );
    } finally {
      for (const sub of subs) sub.unsubscribe();
    }
  }

  /** The dead letter of our command `msgId`, as an error naming the service's reason and the entry to look at. */
  private async rejection(subject: string, error: string, msgId: string): Promise<CommandRejected> {
    const seq = await this.deadLetterSeq(subject, msgId);
    const where = seq ? ` (dead letter ${seq}: \`orderflow dlq show ${seq}\`)` : '';
    return new CommandRejected(
      `${subject} was rejected by the ${subject.split('.')[0]} service: ${error.replace(/^\w+Error: /, '')}${where}`,
      error,
      seq,
    );
  }

  /** The DLQ stream sequence of the newest dead letter of `subject` if it is the one of `msgId`. */
  private async deadLetterSeq(subject: string, msgId: string): Promise<number | null> {
    try {
      const jsm = await jetstreamManager(this.nc);
      const m = await jsm.streams.getMessage(this.ns.stream('DLQ'), { last_by_subj: this.ns.subject(Subjects.deadLetter(subject)) });
      return m?.header?.get(Headers.Dlq.MsgId) === msgId ? m.seq : null;
    } catch {
      return null;
    }
  }

  /**
   * Listens for `order.confirmed` / `order.cancelled`. Call before publishing, then `wait` for the orders.
   */
  outcomes(): OutcomeListener {
    return new OutcomeListener(this);
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }
}

type Final = Exclude<Outcome['status'], 'PENDING'>;

/**
 * Listens for `order.confirmed` / `order.cancelled`, and for dead letters of the `order.created` messages it
 * was told about (`expect`). Create it before publishing, then `wait` for the orders.
 */
export class OutcomeListener {
  private readonly seen = new Map<string, { status: Final; reason: string | null; at: number }>();
  private readonly subs: Subscription[];
  private readonly byMsgId = new Map<string, string>();
  private onSeen: (orderId: string) => void = () => undefined;
  private readonly waiters = new Map<string, () => void>();
  private lastEventAt = Date.now();

  constructor(private readonly client: PipelineClient) {
    const listen = (subject: string, handle: (m: Msg) => void) => {
      const sub = client.nc.subscribe(client.ns.subject(subject));
      (async () => {
        for await (const m of sub) {
          this.lastEventAt = Date.now();
          handle(m);
        }
      })();
      return sub;
    };
    const outcome = (status: Final) => (m: Msg) => {
      const body = JSON.parse(m.string());
      this.record(body.orderId, status, body.reason ?? null);
    };
    this.subs = [
      listen(Subjects.OrderConfirmed, outcome('CONFIRMED')),
      listen(Subjects.OrderCancelled, outcome('CANCELLED')),
      listen(Subjects.deadLetter(Subjects.OrderCreated), (m) => {
        const orderId = this.byMsgId.get(m.headers?.get(Headers.Dlq.MsgId) ?? '');
        const error = m.headers?.get(Headers.Dlq.Error) ?? 'dead-lettered';
        if (!orderId) return;
        if (m.headers?.get(Headers.Dlq.ErrorCode) === ('idempotency_key_reused' satisfies ErrorCode))
          this.record(orderId, 'DUPLICATE', `order ${orderId} already exists with a different body`, true);
        else this.record(orderId, 'REJECTED', error, true);
      }),
    ];
  }

  /** The order.created of `orderId` is published as `msgId`: its dead letter will name it. */
  expect(msgId: string, orderId: string): void {
    this.byMsgId.set(msgId, orderId);
  }

  /**
   * Waits until every order has an outcome, `timeoutMs` passes, or `signal` aborts. After a quiet second,
   * orders still without one are asked of the order service (their event may have come before we listened,
   * e.g. a re-published order). `publishedAt` maps order id → publish time; `onOutcome` is told of each.
   * Orders with no outcome come back as PENDING.
   */
  async wait(
    publishedAt: Map<string, number>,
    timeoutMs: number,
    onOutcome: () => void = () => undefined,
    signal?: AbortSignal,
  ): Promise<Outcome[]> {
    const deadline = Date.now() + timeoutMs;
    let remaining = [...publishedAt.keys()].filter((id) => !this.seen.has(id)).length;
    await new Promise<void>((resolve) => {
      let asking = false;
      const timer = setInterval(async () => {
        if (Date.now() >= deadline) return finish();
        if (asking || Date.now() - this.lastEventAt < 1000) return;
        asking = true;
        remaining -= await this.askForMissing(publishedAt, onOutcome);
        asking = false;
        if (remaining <= 0) finish();
      }, 250);
      const finish = () => {
        clearInterval(timer);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      signal?.addEventListener('abort', finish);
      this.onSeen = (id) => {
        if (!publishedAt.has(id)) return;
        onOutcome();
        if (--remaining <= 0) finish();
      };
      if (remaining <= 0 || signal?.aborted) finish();
    });
    this.close();
    return this.outcomes(publishedAt);
  }

  /** The outcome of each order so far (PENDING where none). */
  private outcomes(publishedAt: Map<string, number>): Outcome[] {
    return [...publishedAt].map(([orderId, at]) => {
      const o = this.seen.get(orderId);
      return o ? { orderId, status: o.status, reason: o.reason, ms: o.at - at } : { orderId, status: 'PENDING', reason: null, ms: null };
    });
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
  }

  /** The first outcome of an order counts, except that a dead letter of our own message overrides one. */
  private record(orderId: string, status: Final, reason: string | null, fromDeadLetter = false): void {
    const known = this.seen.get(orderId);
    if (known && (!fromDeadLetter || known.status === 'REJECTED' || known.status === 'DUPLICATE')) return;
    this.seen.set(orderId, { status, reason, at: known?.at ?? Date.now() });
    if (known) return;
    this.onSeen(orderId);
    this.waiters.get(orderId)?.();
    this.waiters.delete(orderId);
  }

  /** Resolves when the outcome of `orderId` arrives (at once if it has); for callers that track orders one by one. */
  outcomeOf(orderId: string): Promise<void> {
    if (this.seen.has(orderId)) return Promise.resolve();
    return new Promise((r) => this.waiters.set(orderId, r));
  }

  /** Asks the order service about (at most 200) orders still without an outcome; returns how many had one. */
  private async askForMissing(publishedAt: Map<string, number>, onOutcome: () => void): Promise<number> {
    const missing = [...publishedAt.keys()].filter((id) => !this.seen.has(id)).slice(0, 200);
    const views = await Promise.all(
      missing.map((id) => this.client.query<OrderView>(Subjects.QueryOrder, { orderId: id }, 2000).catch(() => undefined)),
    );
    let found = 0;
    for (const view of views) {
      if (!view || view.status === 'PENDING' || !publishedAt.has(view.orderId) || this.seen.has(view.orderId)) continue;
      this.seen.set(view.orderId, { status: view.status, reason: view.reason, at: Date.now() });
      onOutcome();
      found++;
    }
    return found;
  }
}

/**
 * `body` checked against the contract class of `subject`, exactly as the consuming service will check it.
 * @throws UsageError naming every failed field.
 */
export function validated<T extends object>(subject: string, body: T): T {
  const type = messageTypeOf(subject);
  if (!type) throw new Error(`no message class for ${subject}`);
  try {
    parseMessage(type, body);
  } catch (e) {
    if (e instanceof MalformedMessageError) throw new UsageError(`${subject}: ${e.message}`, { cause: e });
    throw e;
  }
  return body;
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new CliFailure(message)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** One running app instance, as the service API describes it (`orderflow services`). */
export interface ServiceInstance {
  name: string;
  id: string;
  version: string;
  pid: number | null;
  /** When it started (ISO 8601), from its stats. */
  started: string | null;
  /** Its `GET /metrics` and `GET /health/ready` URLs, from its service metadata. */
  metricsUrl: string | null;
  healthUrl: string | null;
  endpoints: { name: string; subject: string; requests: number; errors: number; averageMs: number }[];
}

/** The replies of a service API request; none when nothing answers (nats.js ends the iterator with no responders then). */
async function collect<T>(replies: Promise<QueuedIterator<T>>): Promise<T[]> {
  const out: T[] = [];
  try {
    for await (const r of await replies) out.push(r);
  } catch (e) {
    if (!isNoResponders(e)) throw e;
  }
  return out;
}
