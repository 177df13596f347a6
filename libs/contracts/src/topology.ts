import { createHash } from 'node:crypto';
import type { MessageSubject } from './messages/registry';
import { Subjects } from './subjects';

/** The streams: one per owner capturing `<owner>.>`, plus the dead-letter stream. */
export type StreamName = 'ORDER' | 'INVENTORY' | 'PAYMENT' | 'NOTIFICATION' | 'DLQ' | 'OPS';

/** The streams whose messages are handled by consumers (and so can be dead-lettered). */
export const WorkStreams = ['ORDER', 'INVENTORY', 'PAYMENT', 'NOTIFICATION'] as const satisfies readonly StreamName[];

export interface StreamSpec {
  name: StreamName;
  /** Logical subjects (namespace is applied by the messaging layer). */
  subjects: string[];
}

export const Streams: Record<StreamName, StreamSpec> = {
  ORDER: { name: 'ORDER', subjects: ['order.>'] },
  INVENTORY: { name: 'INVENTORY', subjects: ['inventory.>'] },
  PAYMENT: { name: 'PAYMENT', subjects: ['payment.>'] },
  NOTIFICATION: { name: 'NOTIFICATION', subjects: ['notification.>'] },
  // Limits retention, never work-queue: a dead letter stays until an operator deals with it.
  // It also captures the server's MAX_DELIVERIES advisories (see `maxDeliveriesAdvisory`).
  DLQ: { name: 'DLQ', subjects: ['dlq.>'] },
  // The operators' audit log: one event per replay or purge of dead letters (`orderflow dlq`). Limits retention.
  OPS: { name: 'OPS', subjects: ['ops.>'] },
};

/**
 * JetStream key-value bucket holding what operators did to each dead letter (`replayed`, `purged`: a signed record,
 * written compare-and-set), keyed by the entry's `Dlq-Id`; the CLI works out the rest of its state
 * (docs/operations.md).
 */
export const DLQ_STATE_BUCKET = 'DLQ_STATE';

/** Subject of the advisory the server publishes when a consumer exhausts MaxDeliver. */
export const maxDeliveriesAdvisory = (stream: string) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.>`;

/**
 * A durable pull consumer with explicit ack, named `<consuming-app>-<purpose>`.
 * nats-server 2.9 allows one filter subject per consumer; a consumer belongs to one stream,
 * so the saga listens to its replies through one consumer on each participant's stream.
 */
export interface ConsumerSpec {
  stream: StreamName;
  durable: string;
  filterSubject: string;
  /** Subjects this consumer handles (each a `MessageTypes` entry). Anything else matching the filter is dead-lettered... */
  handles: MessageSubject[];
  /** ...unless listed here: events on the filter that this consumer deliberately skips (acked). */
  ignores?: MessageSubject[];
  /**
   * For messages from outside the pipeline: the inbox key, derived from the decoded body and the raw bytes instead
   * of the headers (`Nats-Msg-Id`, `Replay-Of`), which any client chooses. Without it the inbox keys on the headers.
   */
  inboxKey?: (body: unknown, data: Uint8Array) => string;
  /**
   * The ordering key of a message, from its validated body: a batch's messages run concurrently in its transaction,
   * those with the same key one after another, in the order received, so their statements share round trips. Only
   * for a consumer whose messages change nothing but the rows of their own key (two keys never touch one row); without
   * it the batch runs one message after another. Source: Google Cloud Pub/Sub, "Ordering messages" (ordering keys).
   */
  orderingKey?: (body: unknown) => string;
  /**
   * Operator commands: the consumer verifies each message's signature (`Orderflow-Signer` / `Orderflow-Signature`)
   * and hands the handler the key that signed it (`InboundMessage.signer`).
   */
  signed?: true;
}

/**
 * The inbox key of an `order.created`: its `orderId` (the ingress idempotency key) plus a digest of the exact bytes.
 * A reused `Nats-Msg-Id` or a forged `Replay-Of` cannot make a different order look handled; the same bytes again
 * are a duplicate; the same `orderId` with another body reaches the handler, which dead-letters it
 * (`idempotency_key_reused`) — or, when it is the same order written differently, finds it already accepted.
 */
export const orderCreatedInboxKey = (body: unknown, data: Uint8Array): string => {
  const orderId = (body as { orderId?: unknown } | null)?.orderId;
  const digest = createHash('sha256').update(data).digest('base64url').slice(0, 22);
  return `order:${typeof orderId === 'string' ? orderId.slice(0, 64) : '?'}:${digest}`;
};

/** True when `subject` (a logical subject received at run time) is one `spec` handles. */
export const handlesSubject = (spec: ConsumerSpec, subject: string): boolean => (spec.handles as readonly string[]).includes(subject);

/** True when `subject` is one `spec` deliberately skips. */
export const ignoresSubject = (spec: ConsumerSpec, subject: string): boolean =>
  (spec.ignores as readonly string[] | undefined)?.includes(subject) ?? false;

/**
 * The ordering key of a message about one order (`OrderCreated`, the participants' `OrderScoped` replies): the order
 * app changes only that order's rows and its saga attempts' for it.
 */
const byOrder = (body: unknown): string => (body as { orderId: string }).orderId;

export const Consumers = {
  orderPlacement: {
    stream: 'ORDER',
    durable: 'order-placement',
    filterSubject: Subjects.OrderCreated,
    handles: [Subjects.OrderCreated],
    inboxKey: orderCreatedInboxKey,
    orderingKey: byOrder,
  },
  orderOperatorCommands: {
    stream: 'ORDER',
    durable: 'order-operator-commands',
    filterSubject: 'order.cmd.>',
    handles: [Subjects.OrderRetrySaga, Subjects.OrderResumeSaga, Subjects.OrderReplayDeadLetter],
    signed: true,
  },
  orderSagaInventoryReplies: {
    stream: 'INVENTORY',
    durable: 'order-saga-replies',
    filterSubject: 'inventory.evt.>',
    handles: [Subjects.InventoryReserved, Subjects.InventoryRejected, Subjects.InventoryReleased, Subjects.InventoryCommitted],
    ignores: [Subjects.InventoryRestocked],
    orderingKey: byOrder,
  },
  orderSagaPaymentReplies: {
    stream: 'PAYMENT',
    durable: 'order-saga-replies',
    filterSubject: 'payment.evt.>',
    handles: [Subjects.PaymentCharged, Subjects.PaymentDeclined, Subjects.PaymentRefunded],
    ignores: [Subjects.PaymentDeposited],
    orderingKey: byOrder,
  },
  inventoryCommands: {
    stream: 'INVENTORY',
    durable: 'inventory-commands',
    filterSubject: 'inventory.cmd.>',
    handles: [Subjects.InventoryReserve, Subjects.InventoryRelease, Subjects.InventoryCommit, Subjects.InventoryRestock],
  },
  paymentCommands: {
    stream: 'PAYMENT',
    durable: 'payment-commands',
    filterSubject: 'payment.cmd.>',
    handles: [Subjects.PaymentCharge, Subjects.PaymentRefund, Subjects.PaymentDeposit],
  },
  // Two consumers on the exact outcome subjects rather than one on `order.>`: one filter subject per
  // consumer on 2.9, and a filter on `order.>` would deliver (and make us ack) every order.created too.
  notificationOrderConfirmed: {
    stream: 'ORDER',
    durable: 'notification-order-confirmed',
    filterSubject: Subjects.OrderConfirmed,
    handles: [Subjects.OrderConfirmed],
  },
  notificationOrderCancelled: {
    stream: 'ORDER',
    durable: 'notification-order-cancelled',
    filterSubject: Subjects.OrderCancelled,
    handles: [Subjects.OrderCancelled],
  },
} satisfies Record<string, ConsumerSpec>;

/**
 * A namespace isolates one deployment (or one test run) on a shared NATS server:
 * subjects become `<ns>.<subject>` and streams `<NS>_<STREAM>`. The empty namespace is the default
 * and leaves every name as docs/architecture.md ("Subjects, streams, consumers") spells it.
 */
export class Namespace {
  readonly prefix: string;

  /** @throws Error when `prefix` is not `[A-Za-z0-9_-]*` (it becomes a subject token and a stream name part). */
  constructor(prefix = '') {
    if (!/^[A-Za-z0-9_-]*$/.test(prefix)) {
      throw new Error(`namespace "${prefix}" must match [A-Za-z0-9_-]*`);
    }
    this.prefix = prefix;
  }

  subject(logical: string): string {
    return this.prefix ? `${this.prefix}.${logical}` : logical;
  }

  /** The logical subject of a namespaced one (inverse of `subject`). */
  logical(subject: string): string {
    return this.prefix && subject.startsWith(this.prefix + '.') ? subject.slice(this.prefix.length + 1) : subject;
  }

  /** A stream or key-value bucket name: `<NS>_<NAME>`. */
  stream(name: StreamName | typeof DLQ_STATE_BUCKET): string {
    return this.prefix ? `${this.prefix.toUpperCase().replace(/-/g, '_')}_${name}` : name;
  }
}
