import {
  ArrayMaxSize,
  IsArray,
  IsDateString,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  IsUUID,
  Max,
  MaxLength,
  Min,
} from 'class-validator';

export const SagaStatuses = ['RUNNING', 'COMPENSATING', 'COMPLETED', 'CANCELLED', 'FAILED'] as const;
export type SagaStatus = (typeof SagaStatuses)[number];

export class OrderQuery {
  @IsUUID()
  orderId!: string;
}

/** `query.order.saga`: one saga attempt by its id, or the newest attempt of an order by the order id. */
export class SagaQuery {
  @IsUUID()
  id!: string;
}

/** `query.order.saga-types`: the saga types the order app runs (or one), with their steps (what `saga list --step` takes). */
export class SagaTypesQuery {
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  type?: string;
}

/** One saga type: its steps and compensations in the definition's order. */
export interface SagaTypeView {
  type: string;
  steps: { name: string; kind: 'action' | 'compensation'; pivot: boolean }[];
}

/**
 * One step or compensation of an attempt's saga definition, with the command it sends for this attempt (none for a
 * local step): what `saga retry|resume --dry-run` plans and what the DLQ advice checks a dead letter against.
 */
export interface SagaPlanStep {
  name: string;
  kind: 'action' | 'compensation';
  /** The command's subject, null for a local step. */
  subject: string | null;
  /** The reply subjects that end it. */
  replies: string[];
  /** For people: "reserveStock: send inventory.cmd.reserve (CAM×2)", "createOrder: local transaction (pivot)". */
  line: string;
}

/**
 * `query.order.operators`: the operator keys `orderflow setup` registered (revoked ones too: they verify old actions),
 * all of them or one operator's.
 */
export class OperatorsQuery {
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  name?: string;
}

/** One registered operator key: the name setup gave it, its public nkey (`U…`), and when it was revoked (rotated). */
export interface OperatorView {
  name: string;
  publicKey: string;
  registeredAt: string;
  revokedAt: string | null;
}

/** `query.order.sagas`: saga attempts, newest first, filtered. */
export class SagaListQuery {
  @IsOptional()
  @IsArray()
  @IsIn(SagaStatuses, { each: true })
  status?: SagaStatus[];

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  reason?: string;

  /** Only attempts updated at or after this time (ISO 8601). */
  @IsOptional()
  @IsDateString()
  since?: string;

  /** Only attempts at this step, or that failed or timed out on it (whatever their status now). */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  step?: string;

  /** Only attempts of these orders (at most 500 ids: how the CLI works out the state of dead letters in bulk). */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(500)
  @IsUUID('all', { each: true })
  orderIds?: string[];

  /**
   * `updated` (default): most recently updated first, then by saga id; `id`: by saga id, ascending — stable while the
   * sagas change, which is how bulk commands page through a snapshot.
   */
  @IsOptional()
  @IsIn(['updated', 'id'])
  order?: 'updated' | 'id';

  /**
   * Keyset pagination: the rows after this one. With `order: 'id'`, a saga id; with `updated`, `<updatedAt>/<sagaId>`
   * of the previous page's last row (`cursorOf`).
   */
  @IsOptional()
  @IsString()
  @MaxLength(100)
  after?: string;

  /** At most this many rows in one reply (default 100, at most 1000: one reply stays well under NATS's 1 MiB). */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

/** The `after` of the page that follows `row` in `order`. */
export const cursorOf = (row: { sagaId: string; updatedAt: string }, order: 'updated' | 'id' = 'updated'): string =>
  order === 'id' ? row.sagaId : `${row.updatedAt}/${row.sagaId}`;

/** Answer of `query.order.get` (also what `orderflow orders show --json` prints). */
export interface OrderView {
  orderId: string;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  reason: string | null;
  /** The newest saga attempt of the order. */
  saga: {
    id: string;
    attempt: number;
    status: SagaStatus;
    /** The W3C trace id (32 hex digits) of the attempt: one trace across the four apps. Null for attempts made before tracing. */
    traceId: string | null;
    steps: { name: string; status: string; startedAt: string; finishedAt: string | null; error: string | null }[];
  };
}

/** A line of `saga list --json` (docs/operations.md); times ISO 8601. */
export interface SagaSummary {
  sagaId: string;
  orderId: string;
  type: string;
  attempt: number;
  status: SagaStatus;
  reason: string | null;
  /** Name of the current step (or compensation), or of the last one for a finished saga. */
  step: string | null;
  startedAt: string;
  updatedAt: string;
}

/** One execution of a step or a compensation in `saga show` (docs/operations.md). Durations in milliseconds. */
export interface SagaStepView {
  name: string;
  kind: 'action' | 'compensation';
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  /** Times its command was sent (0 for a local step). */
  sends: number;
  error: string | null;
  /** How the step came to run or end other than by its own reply, e.g. "resumed by operator". */
  note: string | null;
  /**
   * While it waits on a participant: what the participant's durable consumer says, e.g. "waiting for payment: nobody
   * is pulling payment-commands (12 message(s) undelivered), command first sent 4 min ago".
   */
  waiting: string | null;
}

/** What `saga show` shows of a PlaceOrder attempt's data (`SagaView<PlaceOrderView>`); money in minor units. */
export interface PlaceOrderView {
  customerId: string;
  currency: string;
  total: number;
  items: { sku: string; quantity: number; unitPrice: number }[];
}

/**
 * Answer of `query.order.saga`, `D` being what the attempt's saga type shows of its data (`PlaceOrderView` for
 * PlaceOrder); `saga show --json` adds `deadLetters` from the DLQ stream.
 */
export interface SagaView<D = unknown> extends SagaSummary {
  detail: string | null;
  /** The W3C trace id (32 hex digits) of the attempt, null for attempts made before tracing. */
  traceId: string | null;
  data: D;
  steps: SagaStepView[];
  /** Steps and compensations still to run, by the saga definition. */
  remaining: string[];
  /** Every step and compensation of the definition, in order, with what it sends for this attempt. */
  plan: SagaPlanStep[];
  /**
   * When the attempt's next deadline passes (ISO 8601): a step without a reply by then is sent again, or the saga's
   * business deadline cancels it. Null when it waits on nothing.
   */
  deadlineAt: string | null;
  attempts: { sagaId: string; attempt: number; status: SagaStatus; reason: string | null }[];
  /**
   * Operator commands on the attempts, oldest first: `operator` is the name setup registered for `publicKey`, the key
   * whose signature the order app verified before acting.
   */
  actions: { action: string; sagaId: string; operator: string; publicKey: string | null; why: string; at: string }[];
}

/**
 * Envelope of every query reply: `{"ok": true, "data": …}` or `{"ok": false, "error": {"code", "message"}}`.
 * `code` is `not_found`, `bad_request`, `unavailable` (the service's database cannot be reached now) or `internal`.
 */
export type QueryReply<T> =
  { ok: true; data: T } | { ok: false; error: { code: 'not_found' | 'bad_request' | 'unavailable' | 'internal'; message: string } };
