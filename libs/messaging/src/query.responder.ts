import { Subscription } from 'nats';
import { MalformedMessageError, parseMessage, QueryReply } from '@orderflow/contracts';
import type { Logger } from 'pino';
import { classify } from './failure';
import { JetStreamClient } from './jetstream.client';
import { encodeBody } from './message';

/** Thrown by a query handler when the thing asked for does not exist; answered as `{"ok":false,"error":{"code":"not_found"}}`. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/**
 * Answers core NATS request/reply queries (not JetStream: a query changes nothing and needs no storage).
 * Every app joins the queue group `<app>` so several instances share the load.
 */
export class QueryResponder {
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly client: JetStreamClient,
    private readonly app: string,
    private readonly log: Logger,
  ) {}

  /** Serves `subject` (logical); the request body is validated against `type`. */
  serve<Q extends object, R>(subject: string, type: (new () => Q) | null, handler: (query: Q) => Promise<R>): void {
    const sub = this.client.nc.subscribe(this.client.ns.subject(subject), { queue: this.app });
    this.subs.push(sub);
    (async () => {
      for await (const m of sub) {
        let reply: QueryReply<R>;
        try {
          const query = type ? parseMessage(type, m.data) : ({} as Q);
          reply = { ok: true, data: await handler(query) };
        } catch (e) {
          const code =
            e instanceof NotFoundError
              ? 'not_found'
              : e instanceof MalformedMessageError
                ? 'bad_request'
                : classify(e) === 'unavailable'
                  ? 'unavailable'
                  : 'internal';
          if (code === 'internal') this.log.error({ err: e, subject }, 'query failed');
          const message =
            code === 'unavailable'
              ? `the ${this.app} service's database is unavailable right now; try again shortly`
              : (e as Error).message;
          reply = { ok: false, error: { code, message } };
        }
        m.respond(encodeBody(reply));
      }
    })().catch((e) => this.log.error({ err: e, subject }, 'query subscription ended'));
  }

  async stop(): Promise<void> {
    for (const s of this.subs.splice(0)) s.unsubscribe();
  }
}
