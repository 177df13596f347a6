/**
 * Every subject of the pipeline, spelled once (see DESIGN.md "Subjects, streams, consumers").
 * Commands are `<owner>.cmd.<verb>`, events `<owner>.evt.<past-tense>`; `order.created` is the
 * public ingress contract. Query subjects (core NATS request/reply) live under `query.<owner>.*`
 * so no stream captures them: a stream capturing a request subject would answer it with a PubAck.
 * All subjects are logical: the messaging layer prefixes them with the namespace, if any.
 */
export const Subjects = {
  OrderCreated: 'order.created',
  OrderConfirmed: 'order.confirmed',
  OrderCancelled: 'order.cancelled',

  InventoryReserve: 'inventory.cmd.reserve',
  InventoryRelease: 'inventory.cmd.release',
  InventoryRestock: 'inventory.cmd.restock',
  InventoryReserved: 'inventory.evt.reserved',
  InventoryRejected: 'inventory.evt.rejected',
  InventoryReleased: 'inventory.evt.released',
  InventoryRestocked: 'inventory.evt.restocked',

  PaymentCharge: 'payment.cmd.charge',
  PaymentRefund: 'payment.cmd.refund',
  PaymentDeposit: 'payment.cmd.deposit',
  PaymentCharged: 'payment.evt.charged',
  PaymentDeclined: 'payment.evt.declined',
  PaymentRefunded: 'payment.evt.refunded',
  PaymentDeposited: 'payment.evt.deposited',

  QueryOrder: 'query.order.get',
  QueryStock: 'query.inventory.stock',
  QueryAccount: 'query.payment.account',
  /** Every app answers `query.<app>.ping` with `{"app": name}`: a liveness probe over NATS. */
  ping: (app: string) => `query.${app}.ping`,

  /** Dead letters of `subject` (a logical subject). */
  deadLetter: (subject: string) => `dlq.${subject}`,
} as const;

/** Metadata headers (DESIGN.md: metadata travels in headers, not in the body). */
export const Headers = {
  MsgId: 'Nats-Msg-Id',
  CorrelationId: 'Correlation-Id',
  CausationId: 'Causation-Id',
  SagaId: 'Saga-Id',
  TraceParent: 'traceparent',
  ReplayOf: 'Replay-Of',
  ReplayCount: 'Replay-Count',
  Dlq: {
    Stream: 'Dlq-Stream',
    Sequence: 'Dlq-Sequence',
    Subject: 'Dlq-Subject',
    Consumer: 'Dlq-Consumer',
    Attempts: 'Dlq-Attempts',
    Error: 'Dlq-Error',
    Time: 'Dlq-Time',
  },
} as const;
