/**
 * Every subject of the pipeline, spelled once (see docs/architecture.md, "Subjects, streams, consumers").
 * Commands are `<owner>.cmd.<verb>`, events `<owner>.evt.<past-tense>`; `order.created` is the
 * public ingress contract. Query subjects (core NATS request/reply) live under `query.<owner>.*`
 * so no stream captures them: a stream capturing a request subject would answer it with a PubAck.
 * All subjects are logical: the messaging layer prefixes them with the namespace, if any.
 */
export const Subjects = {
  OrderCreated: 'order.created',
  OrderConfirmed: 'order.confirmed',
  OrderCancelled: 'order.cancelled',
  /** Operator commands to the order app (`orderflow saga retry|resume`), and what it answers them. */
  OrderRetrySaga: 'order.cmd.retry-saga',
  OrderResumeSaga: 'order.cmd.resume-saga',
  OrderReplayDeadLetter: 'order.cmd.replay-dead-letter',
  OrderSagaRetried: 'order.evt.saga-retried',
  OrderSagaResumed: 'order.evt.saga-resumed',
  OrderDeadLetterReplayed: 'order.evt.dead-letter-replayed',
  OrderCommandRefused: 'order.evt.command-refused',

  InventoryReserve: 'inventory.cmd.reserve',
  InventoryRelease: 'inventory.cmd.release',
  InventoryRestock: 'inventory.cmd.restock',
  InventoryCommit: 'inventory.cmd.commit',
  InventoryReserved: 'inventory.evt.reserved',
  InventoryRejected: 'inventory.evt.rejected',
  InventoryReleased: 'inventory.evt.released',
  InventoryCommitted: 'inventory.evt.committed',
  InventoryRestocked: 'inventory.evt.restocked',

  PaymentCharge: 'payment.cmd.charge',
  PaymentRefund: 'payment.cmd.refund',
  PaymentDeposit: 'payment.cmd.deposit',
  PaymentCharged: 'payment.evt.charged',
  PaymentDeclined: 'payment.evt.declined',
  PaymentRefunded: 'payment.evt.refunded',
  PaymentDeposited: 'payment.evt.deposited',

  QueryOrder: 'query.order.get',
  QuerySaga: 'query.order.saga',
  QuerySagas: 'query.order.sagas',
  QueryOperators: 'query.order.operators',
  QuerySagaTypes: 'query.order.saga-types',
  QueryStock: 'query.inventory.stock',
  QueryReservations: 'query.inventory.reservations',
  QueryAccount: 'query.payment.account',
  QueryCharges: 'query.payment.charges',

  /** Dead letters of `subject` (a logical subject). */
  deadLetter: (subject: string) => `dlq.${subject}`,
  /** Operator actions on dead letters (`ops.dlq.replayed`, `ops.dlq.purged`), kept on the OPS stream as an audit log. */
  operatorEvent: (action: string) => `ops.${action}`,
} as const;

/** Metadata headers (metadata travels in headers, not in the body). */
export const Headers = {
  MsgId: 'Nats-Msg-Id',
  CorrelationId: 'Correlation-Id',
  CausationId: 'Causation-Id',
  SagaId: 'Saga-Id',
  TraceParent: 'traceparent',
  /** Replay lineage (docs/operations.md): the original message id (what inboxes key on), how many replays, by whom, why. */
  ReplayOf: 'Replay-Of',
  ReplayCount: 'Replay-Count',
  ReplayedBy: 'Replayed-By',
  ReplayWhy: 'Replay-Why',
  /**
   * An operator's signature (`signMessage`): the signer's public nkey (`U…`) and an ed25519 signature, base64url, over
   * the subject, the `Nats-Msg-Id` and the body.
   */
  Signer: 'Orderflow-Signer',
  Signature: 'Orderflow-Signature',
  Dlq: {
    /**
     * The dead letter's identity (a UUID set when it is written): what operators' state records key on, so that a
     * recreated DLQ stream, whose sequences start again, cannot make a new dead letter look handled.
     */
    Id: 'Dlq-Id',
    /** The original message's `Nats-Msg-Id` (the dead letter gets an id of its own). */
    MsgId: 'Dlq-Msg-Id',
    Stream: 'Dlq-Stream',
    Sequence: 'Dlq-Sequence',
    Subject: 'Dlq-Subject',
    Consumer: 'Dlq-Consumer',
    Attempts: 'Dlq-Attempts',
    Error: 'Dlq-Error',
    /** The error's stable code (`ErrorCodes`): what tools switch on; `Dlq-Error` is for people. */
    ErrorCode: 'Dlq-Error-Code',
    Time: 'Dlq-Time',
    /** Set when the body was too big to keep whole: the original's size in bytes and sha256 (hex); the body is cut. */
    BodyBytes: 'Dlq-Body-Bytes',
    BodySha256: 'Dlq-Body-Sha256',
  },
} as const;
