import type { MessageSubject } from './messages/registry';
import { Subjects } from './subjects';
import { ConsumerSpec, Consumers, DLQ_STATE_BUCKET, Namespace, StreamName, Streams, WorkStreams } from './topology';

/** The four service apps. */
export const AppNames = ['order', 'inventory', 'payment', 'notification'] as const;
export type AppName = (typeof AppNames)[number];

/**
 * What each app does on the broker, spelled once: the durable consumers it pulls, the subjects it publishes (commands,
 * events, replies — through its outbox) and its query endpoints. The broker's permissions are generated from it
 * (`permissionsFor`), so an app that starts sending a new subject lists it here or the server refuses the publish.
 */
export const AppTopology: Record<
  AppName,
  { consumers: ConsumerSpec[]; sends: MessageSubject[]; replaysDeadLetters?: true; observes?: ConsumerSpec[] }
> = {
  order: {
    consumers: [
      Consumers.orderPlacement,
      Consumers.orderOperatorCommands,
      Consumers.orderSagaInventoryReplies,
      Consumers.orderSagaPaymentReplies,
    ],
    sends: [
      Subjects.InventoryReserve,
      Subjects.InventoryRelease,
      Subjects.InventoryCommit,
      Subjects.PaymentCharge,
      Subjects.PaymentRefund,
      Subjects.OrderConfirmed,
      Subjects.OrderCancelled,
      Subjects.OrderSagaRetried,
      Subjects.OrderSagaResumed,
      Subjects.OrderDeadLetterReplayed,
      Subjects.OrderCommandRefused,
    ],
    // `orderflow dlq replay` goes through the order app, which verifies the operator's signature, enforces the
    // replay rules and republishes: it reads the DLQ and publishes to every subject a consumer pulls.
    replaysDeadLetters: true,
    // `saga show` says whether a step's command waits undelivered: the participants' consumers, read-only.
    observes: [Consumers.inventoryCommands, Consumers.paymentCommands],
  },
  inventory: {
    consumers: [Consumers.inventoryCommands],
    sends: [
      Subjects.InventoryReserved,
      Subjects.InventoryRejected,
      Subjects.InventoryReleased,
      Subjects.InventoryCommitted,
      Subjects.InventoryRestocked,
    ],
  },
  payment: {
    consumers: [Consumers.paymentCommands],
    sends: [Subjects.PaymentCharged, Subjects.PaymentDeclined, Subjects.PaymentRefunded, Subjects.PaymentDeposited],
  },
  notification: {
    consumers: [Consumers.notificationOrderConfirmed, Consumers.notificationOrderCancelled],
    sends: [],
  },
};

/**
 * Who connects to the broker: each app, `ingress` (clients that place orders: `order.created` and nothing else),
 * `setup` (the only identity that manages streams, consumers and the key-value bucket) and each operator
 * (`operator-<name>`, the CLI).
 */
export type Identity = AppName | 'ingress' | 'setup' | `operator-${string}`;

/** An operator's identity name; `name` is a lower-case word (`[a-z0-9_-]`, 1–32). @throws RangeError otherwise. */
export function operatorIdentity(name: string): `operator-${string}` {
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(name)) throw new RangeError(`operator name "${name}" must match [a-z0-9][a-z0-9_-]{0,31}`);
  return `operator-${name}`;
}

/** The inbox prefix an identity's connection uses for replies (nats.js `inboxPrefix`): only it may subscribe there. */
export const inboxPrefixOf = (identity: Identity): string => `_INBOX_${identity}`;

/**
 * A user's permissions as nats-server's config spells them ("Authorization", NATS docs
 * https://docs.nats.io/running-a-nats-service/configuration/securing_nats/authorization). `allow_responses` lets a
 * service answer a request it received, once, without publish rights on the requester's inbox.
 */
export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  allow_responses?: boolean;
}

const JS = '$JS.API';
const uniq = (xs: string[]) => [...new Set(xs)];

/** Pulling and acking one durable consumer: info, next batch, ack/nak/working (never create, update or delete). */
const pullRights = (ns: Namespace, c: ConsumerSpec) => {
  const stream = ns.stream(c.stream);
  return [
    `${JS}.CONSUMER.INFO.${stream}.${c.durable}`,
    `${JS}.CONSUMER.MSG.NEXT.${stream}.${c.durable}`,
    `$JS.ACK.${stream}.${c.durable}.>`,
  ];
};

/** Registering as a NATS service (ADR-32): discovery requests to every service, and to this one by name. */
const serviceRights = (name: string) => ['$SRV.PING', '$SRV.INFO', '$SRV.STATS', `$SRV.*.${name}`, `$SRV.*.${name}.>`];

/**
 * Every subject a consumer of the pipeline pulls but operator commands (signed by an operator, never replayed): what a
 * dead letter may be replayed to.
 */
const workSubjects = (ns: Namespace) =>
  uniq(
    Object.values(Consumers as Record<string, ConsumerSpec>)
      .filter((c) => !c.signed)
      .map((c) => ns.subject(c.filterSubject)),
  );

/**
 * The permissions of `identity` in namespace `ns`, generated from the topology (`AppTopology`, `Consumers`,
 * `Streams`). Everything not allowed is denied:
 * - an app publishes what it sends, the dead letters of what it consumes, and pulls/acks its own durable consumers;
 *   it subscribes to its own inbox, its query subjects and the service API; it answers requests (`allow_responses`);
 *   the app that replays dead letters (the order app) also reads the DLQ and publishes to every subject a consumer pulls;
 * - `ingress` publishes `order.created`;
 * - an operator publishes operator commands (`order.cmd.>`, signed: replays go through them), `order.created`, deposits
 *   and restocks (`orderflow publish`, `accounts deposit`, `stock restock`), the audit (`ops.>`), dead-letter state
 *   (`$KV.DLQ_STATE.>`), queries and service discovery; reads the DLQ, OPS and key-value streams (ordered consumers,
 *   message get) and deletes dead letters (a purge) — never another work subject, a stream or a durable consumer;
 * - `setup` uses the whole JetStream API (streams, consumers, the bucket).
 */
export function permissionsFor(identity: Identity, ns: Namespace): NatsPermissions {
  const inbox = `${inboxPrefixOf(identity)}.>`;
  if (identity === 'setup') return { publish: { allow: [`${JS}.>`] }, subscribe: { allow: [inbox] } };
  if (identity === 'ingress') return { publish: { allow: [ns.subject(Subjects.OrderCreated)] }, subscribe: { allow: [inbox] } };
  if (identity.startsWith('operator-')) return operatorPermissions(identity, ns);
  const app = AppTopology[identity as AppName];
  if (!app) throw new Error(`unknown identity ${identity}`);
  return {
    publish: {
      allow: uniq([
        ...app.sends.map((s) => ns.subject(s)),
        ...app.consumers.map((c) => ns.subject(Subjects.deadLetter(c.filterSubject))),
        `${JS}.INFO`,
        ...app.consumers.flatMap((c) => pullRights(ns, c)),
        ...(app.observes ?? []).map((c) => `${JS}.CONSUMER.INFO.${ns.stream(c.stream)}.${c.durable}`),
        // Reads a dead letter, or the original an advisory points to in a work stream; republishes it.
        ...(app.replaysDeadLetters
          ? [...workSubjects(ns), ...(['DLQ', ...WorkStreams] as StreamName[]).map((s) => `${JS}.STREAM.MSG.GET.${ns.stream(s)}`)]
          : []),
      ]),
    },
    subscribe: { allow: [inbox, ...serviceRights(identity), ns.subject(`query.${identity}.>`)] },
    allow_responses: true,
  };
}

/** The work subjects an operator publishes to directly; everything else an operator does is a signed `order.cmd.>`. */
const operatorSends: MessageSubject[] = [Subjects.OrderCreated, Subjects.PaymentDeposit, Subjects.InventoryRestock];

function operatorPermissions(identity: Identity, ns: Namespace): NatsPermissions {
  const readable: string[] = [ns.stream('DLQ'), ns.stream('OPS'), `KV_${ns.stream(DLQ_STATE_BUCKET)}`];
  return {
    publish: {
      allow: uniq([
        ns.subject('order.cmd.>'),
        ns.subject(Subjects.operatorEvent('>')),
        `$KV.${ns.stream(DLQ_STATE_BUCKET)}.>`,
        ...operatorSends.map((subject) => ns.subject(subject)),
        ns.subject('query.>'),
        '$SRV.>',
        `${JS}.INFO`,
        `${JS}.STREAM.INFO.*`,
        `${JS}.STREAM.MSG.GET.*`,
        `${JS}.DIRECT.GET.*`,
        `${JS}.DIRECT.GET.*.>`,
        `${JS}.STREAM.MSG.DELETE.${ns.stream('DLQ')}`,
        // Ordered consumers (ephemeral) to read the DLQ, the audit and the bucket: 2.9 names them in the subject.
        ...readable.flatMap((s) => [
          `${JS}.CONSUMER.CREATE.${s}`,
          `${JS}.CONSUMER.CREATE.${s}.>`,
          `${JS}.CONSUMER.DELETE.${s}.>`,
          `${JS}.CONSUMER.INFO.${s}.>`,
          `${JS}.CONSUMER.MSG.NEXT.${s}.>`,
        ]),
        // Backlogs of the apps' consumers (`orderflow top`, `services`), read-only.
        `${JS}.CONSUMER.INFO.*.*`,
      ]),
    },
    subscribe: {
      allow: [
        `${inboxPrefixOf(identity)}.>`,
        ...(Object.keys(Streams) as StreamName[])
          .filter((s) => s !== 'NOTIFICATION')
          .flatMap((s) => Streams[s].subjects.map((subject) => ns.subject(subject))),
      ],
    },
  };
}
