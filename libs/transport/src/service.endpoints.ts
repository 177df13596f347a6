import { decodeMessage, MalformedMessageError, MessageClass, QueryReply } from '@orderflow/contracts';
import { classify, encodeBody, JetStreamClient, NotFoundError } from '@orderflow/messaging';
import { Service, serviceApi, ServiceMsg } from '@orderflow/messaging/nats';
import type { Logger } from 'pino';

/** Our error codes and the status codes they carry in the service API's `Nats-Service-Error-Code` header. */
const ERROR_STATUS = { bad_request: 400, not_found: 404, internal: 500, unavailable: 503 } as const;
type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * What an endpoint's stats carry in `data`: nats.js counts errors and time only for handlers that throw or return
 * synchronously, and ours are async, so we measure both ourselves.
 */
export interface EndpointData {
  requests: number;
  errors: number;
  averageMs: number;
}

/** The endpoint name of a query subject: `query.inventory.stock` → `stock` (names allow `[A-Za-z0-9_-]` only). */
export const endpointName = (subject: string) => subject.split('.').slice(2).join('-') || subject.replace(/\./g, '-');

/**
 * The app as a NATS service (the NATS service API, "micro": https://github.com/nats-io/nats-architecture-and-design,
 * ADR-32): registered under the app's name with its version, an instance id, and its namespace and pid as metadata,
 * so any NATS client discovers the running instances with `$SRV.PING`, `$SRV.INFO.<name>`, `$SRV.STATS.<name>`
 * (`nats micro ls`, `orderflow services`). Each query subject is an endpoint; instances share the load (queue group).
 * Replies are JSON `QueryReply` envelopes; an error also carries the service API's `Nats-Service-Error` and
 * `Nats-Service-Error-Code` headers (400 bad request, 404 not found, 500 internal, 503 database unavailable).
 */
export class ServiceEndpoints {
  private service!: Service;
  /** Per endpoint subject (namespaced): requests, errors, total milliseconds. */
  private readonly measured = new Map<string, { requests: number; errors: number; totalMs: number }>();

  /** The app's NATS service, registered by `start`. */
  constructor(
    private readonly client: JetStreamClient,
    private readonly app: string,
    private readonly version: string,
    private readonly log: Logger,
  ) {}

  /**
   * Registers the app with the service API (no endpoints yet), with its namespace, pid and `extra` (e.g. the
   * `metrics_url` and `health_url` of its HTTP port) as metadata.
   */
  async start(extra: Record<string, string> = {}): Promise<void> {
    this.service = await serviceApi(this.client.nc).add({
      name: this.app,
      version: this.version,
      description: `orderflow ${this.app} service`,
      metadata: { namespace: this.client.ns.prefix, pid: String(process.pid), ...extra },
      statsHandler: async (endpoint) => this.dataOf(endpoint.subject),
    });
  }

  private dataOf(subject: string): EndpointData {
    const m = this.measured.get(subject) ?? { requests: 0, errors: 0, totalMs: 0 };
    return { requests: m.requests, errors: m.errors, averageMs: m.requests ? Math.round((m.totalMs / m.requests) * 100) / 100 : 0 };
  }

  /** The metadata the instance advertises (empty before `start`). */
  get metadata(): Record<string, string> {
    return this.service?.info().metadata ?? {};
  }

  /** The instance id the service API gave this process (undefined before `start`). */
  get instanceId(): string | undefined {
    return this.service?.info().id;
  }

  /**
   * Serves `subject` (logical) as an endpoint. The request is decoded into an instance of `type` (bad JSON is a
   * `bad_request`); validating it is the handler's pipeline's job (`MessageValidationPipe`).
   */
  serve<R>(subject: string, type: MessageClass, handler: (query: object) => Promise<R>): void {
    this.service.addEndpoint(endpointName(subject), {
      subject: this.client.ns.subject(subject),
      metadata: { subject },
      handler: (err, msg) => {
        if (err) return this.log.error({ err, subject }, 'query endpoint stopped');
        void this.answer(msg, subject, type, handler);
      },
    });
  }

  private async answer<R>(msg: ServiceMsg, subject: string, type: MessageClass, handler: (query: object) => Promise<R>) {
    const started = performance.now();
    const m = this.measured.get(msg.subject) ?? { requests: 0, errors: 0, totalMs: 0 };
    this.measured.set(msg.subject, m);
    m.requests++;
    try {
      const reply: QueryReply<R> = { ok: true, data: await handler(decodeMessage(type, msg.data)) };
      msg.respond(encodeBody(reply));
    } catch (e) {
      const code: ErrorCode =
        e instanceof NotFoundError
          ? 'not_found'
          : e instanceof MalformedMessageError
            ? 'bad_request'
            : classify(e) === 'unavailable'
              ? 'unavailable'
              : 'internal';
      if (code === 'internal') this.log.error({ err: e, subject }, 'query failed');
      // An unexpected error's text (SQL, values) stays in the app's log; the requester learns only that it failed.
      const message =
        code === 'unavailable'
          ? `the ${this.app} service's database is unavailable right now; try again shortly`
          : code === 'internal'
            ? `the ${this.app} service failed to answer ${subject}; see its log`
            : (e as Error).message;
      const reply: QueryReply<R> = { ok: false, error: { code, message } };
      msg.respondError(ERROR_STATUS[code], message, encodeBody(reply));
      m.errors++;
    } finally {
      m.totalMs += performance.now() - started;
    }
  }

  /** Stops the service: its endpoints stop taking requests. */
  async stop(): Promise<void> {
    await this.service?.stop();
  }
}
