import { randomUUID } from 'node:crypto';
import { connect, headers as natsHeaders, JetStreamClient, NatsConnection, Subscription } from 'nats';
import { Headers, Namespace, OrderView, QueryReply, Subjects } from '@orderflow/contracts';
import { CliFailure } from './cli.errors';

export interface Outcome {
  orderId: string;
  status: 'CONFIRMED' | 'CANCELLED' | 'PENDING';
  reason: string | null;
  /** Milliseconds from publish to the outcome event; null when it never came. */
  ms: number | null;
}

/**
 * What the CLI knows of the pipeline: JetStream to publish events and commands, core NATS request/reply to
 * ask the owning service. It never touches a database.
 */
export class PipelineClient {
  private constructor(readonly nc: NatsConnection, readonly js: JetStreamClient, readonly ns: Namespace, readonly url: string) {}

  /** @throws CliFailure naming the URL when NATS does not answer. */
  static async connect(url: string, namespace: string): Promise<PipelineClient> {
    try {
      const nc = await connect({ servers: url, timeout: 3000, maxReconnectAttempts: 0, name: 'orderflow-cli' });
      return new PipelineClient(nc, nc.jetstream({ timeout: 5000 }), new Namespace(namespace), url);
    } catch (e) {
      throw new CliFailure(`NATS at ${url} is unreachable (${(e as Error).message}); start it with \`docker compose up -d nats\` or \`npm start\``);
    }
  }

  /**
   * Publishes to JetStream and waits for the stream's ack.
   * @throws CliFailure when no stream stores it (the services never ran with this namespace, or NATS has no JetStream).
   */
  async publish(subject: string, body: object, msgId: string = randomUUID()): Promise<string> {
    try {
      await this.js.publish(this.ns.subject(subject), Buffer.from(JSON.stringify(body)), { msgID: msgId, headers: natsHeaders() });
      return msgId;
    } catch (e) {
      throw new CliFailure(`could not publish ${subject} to ${this.url}: ${(e as Error).message} (have the services run once, to create the streams?)`);
    }
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
      const why = (e as { code?: string }).code === '503' ? 'no instance is listening' : (e as Error).message;
      throw new CliFailure(`the ${owner} service did not answer ${subject} (${why}); is it running? (\`npm start\`)`);
    }
    const reply = JSON.parse(text) as QueryReply<T>;
    if (reply.ok) return reply.data;
    if (reply.error.code === 'not_found') return undefined;
    throw new CliFailure(`${subject}: ${reply.error.message}`);
  }

  async ping(app: string, timeoutMs = 500): Promise<boolean> {
    try {
      await this.nc.request(this.ns.subject(Subjects.ping(app)), Buffer.from('{}'), { timeout: timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Publishes a command and waits for the event it causes (matched on `Causation-Id`).
   * @throws CliFailure after `timeoutMs` without it.
   */
  async command<T>(subject: string, body: object, replySubject: string, timeoutMs = 10000): Promise<T> {
    const msgId = randomUUID();
    const sub = this.nc.subscribe(this.ns.subject(replySubject));
    try {
      const reply = new Promise<T>((resolve) => {
        (async () => {
          for await (const m of sub) if (m.headers?.get(Headers.CausationId) === msgId) return resolve(JSON.parse(m.string()));
        })();
      });
      await this.publish(subject, body, msgId);
      const owner = subject.split('.')[0];
      return await withTimeout(reply, timeoutMs, `no answer from the ${owner} service within ${timeoutMs} ms; is it running? (\`npm start\`)`);
    } finally {
      sub.unsubscribe();
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

export class OutcomeListener {
  private readonly seen = new Map<string, { status: 'CONFIRMED' | 'CANCELLED'; reason: string | null; at: number }>();
  private readonly subs: Subscription[];
  private onSeen: (orderId: string) => void = () => undefined;
  private lastEventAt = Date.now();

  constructor(private readonly client: PipelineClient) {
    const listen = (subject: string, status: 'CONFIRMED' | 'CANCELLED') => {
      const sub = client.nc.subscribe(client.ns.subject(subject));
      (async () => {
        for await (const m of sub) {
          const body = JSON.parse(m.string());
          this.lastEventAt = Date.now();
          if (this.record(body.orderId, status, body.reason ?? null)) this.onSeen(body.orderId);
        }
      })();
      return sub;
    };
    this.subs = [listen(Subjects.OrderConfirmed, 'CONFIRMED'), listen(Subjects.OrderCancelled, 'CANCELLED')];
  }

  /**
   * Waits until every order has an outcome or `timeoutMs` passes. After a quiet second, orders still without
   * one are asked of the order service (their event may have come before we listened, e.g. a re-published
   * order). `publishedAt` maps order id → publish time. Orders with no outcome come back as PENDING.
   */
  async wait(publishedAt: Map<string, number>, timeoutMs: number): Promise<Outcome[]> {
    const deadline = Date.now() + timeoutMs;
    let remaining = [...publishedAt.keys()].filter((id) => !this.seen.has(id)).length;
    await new Promise<void>((resolve) => {
      let asking = false;
      const timer = setInterval(async () => {
        if (Date.now() >= deadline) return finish();
        if (asking || Date.now() - this.lastEventAt < 1000) return;
        asking = true;
        remaining -= await this.askForMissing(publishedAt);
        asking = false;
        if (remaining <= 0) finish();
      }, 250);
      const finish = () => {
        clearInterval(timer);
        resolve();
      };
      this.onSeen = (id) => publishedAt.has(id) && --remaining <= 0 && finish();
      if (remaining <= 0) finish();
    });
    for (const s of this.subs) s.unsubscribe();
    return [...publishedAt].map(([orderId, at]) => {
      const o = this.seen.get(orderId);
      return o ? { orderId, status: o.status, reason: o.reason, ms: o.at - at } : { orderId, status: 'PENDING', reason: null, ms: null };
    });
  }

  /** @returns false when the order already had an outcome. */
  private record(orderId: string, status: 'CONFIRMED' | 'CANCELLED', reason: string | null): boolean {
    if (this.seen.has(orderId)) return false;
    this.seen.set(orderId, { status, reason, at: Date.now() });
    return true;
  }

  /** Asks the order service about (at most 200) orders still without an outcome; returns how many had one. */
  private async askForMissing(publishedAt: Map<string, number>): Promise<number> {
    const missing = [...publishedAt.keys()].filter((id) => !this.seen.has(id)).slice(0, 200);
    const views = await Promise.all(missing.map((id) => this.client.query<OrderView>(Subjects.QueryOrder, { orderId: id }, 2000).catch(() => undefined)));
    let found = 0;
    for (const view of views) {
      if (view && view.status !== 'PENDING' && publishedAt.has(view.orderId) && this.record(view.orderId, view.status, view.reason)) found++;
    }
    return found;
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new CliFailure(message)), ms)))]).finally(() => clearTimeout(timer));
}
