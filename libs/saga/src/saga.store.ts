import type { SagaStatus } from '@orderflow/contracts';
import type { Sql, TxSql } from '@orderflow/persistence';
import type { SagaData } from './saga.definition';
import type { SagaState } from './saga.engine';

/**
 * One attempt of a saga (a row of `saga_instances`): keyed by its id, and by its type, business key and attempt
 * number. The business key is the definition's `key` (PlaceOrder: the order id).
 */
export interface SagaInstance<D extends SagaData = SagaData> {
  id: string;
  type: string;
  business_key: string;
  attempt: number;
  retry_of: string | null;
  status: SagaStatus;
  step: number;
  reason: string | null;
  detail: string | null;
  history: SagaState['history'];
  data: D;
  /** W3C `traceparent` of the span that started the attempt: its deadline re-sends continue that trace. */
  trace_parent: string | null;
  /** When its next deadline passes (the earliest of what it waits on); null when it waits on nothing. */
  deadline_at?: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** The engine's state of an attempt. */
export const stateOf = (r: SagaInstance): SagaState => ({
  status: r.status,
  step: r.step,
  reason: r.reason,
  detail: r.detail,
  history: r.history,
});

/** The filters and keyset of a page of `list` (`query.order.sagas`). */
export interface SagaListFilter {
  status?: string[];
  reason?: string;
  since?: string;
  /** The attempt is at this step, or failed or timed out on it. */
  step?: string;
  /** Business keys. */
  keys?: string[];
  limit: number;
  /** Order by id (bulk snapshots) or by last update, newest first (`saga list`). */
  order: 'id' | 'updated';
  /** The keyset: the last row's id (and, by update, its update time to the millisecond). */
  after?: { id: string; updatedAt?: string };
}

/** One attempt of a business key, as `saga show` lists them. */
export interface AttemptRow {
  id: string;
  attempt: number;
  status: SagaStatus;
  reason: string | null;
}

/**
 * Where saga attempts are kept: every statement the saga layer and its views run. The `lock*` methods hold the row
 * until the transaction ends (`FOR UPDATE`), which serialises the inputs of one attempt. Provided in Nest as the
 * token `SagaStore` (an abstract class, so it needs no separate token); `PostgresSagaStore` is the implementation.
 */
export abstract class SagaStore {
  /** Stores a new attempt of `type` with its first state and next deadline; pipelined (`TxSql.execute`). */
  abstract insert<D extends SagaData>(tx: TxSql, type: string, row: SagaInstance<D>, s: SagaState, deadline: Date | null): void;
  /** Stores an attempt's new state and next deadline (null: it waits on nothing); pipelined (`TxSql.execute`). */
  abstract update(tx: TxSql, id: string, s: SagaState, deadline: Date | null): void;
  /** The attempt, locked. */
  abstract lock(tx: Sql, id: string): Promise<SagaInstance | undefined>;
  /** The attempts `ids` that exist, locked in the order of their ids (so two such locks cannot deadlock). */
  abstract lockAll(tx: Sql, ids: string[]): Promise<SagaInstance[]>;
  /** The newest attempt of a business key (whatever its type), locked. */
  abstract lockNewest(tx: Sql, key: string): Promise<SagaInstance | undefined>;
  /** The newest attempt of a business key (of `type`, if given). */
  abstract newest(db: Sql, key: string, type?: string): Promise<Pick<SagaInstance, 'id' | 'attempt' | 'status'> | undefined>;
  abstract statusOf(db: Sql, id: string): Promise<Pick<SagaInstance, 'id' | 'status'> | undefined>;
  /** Up to `limit` attempts whose deadline passed, earliest first, locked; rows another instance holds are skipped. */
  abstract lockDue(tx: Sql, limit: number): Promise<SagaInstance[]>;
  /** How many attempts are RUNNING, COMPENSATING or FAILED, by type and status (the `orderflow_sagas` gauge). */
  abstract inFlight(db: Sql): Promise<{ type: string; status: string; n: number }[]>;
  /** A page of attempts matching every given filter (keyset pagination: paging on while sagas change neither skips nor repeats). */
  abstract list(db: Sql, f: SagaListFilter): Promise<SagaInstance[]>;
  /** The attempt `id`, or the newest attempt of the business key `id`. */
  abstract byIdOrKey(db: Sql, id: string): Promise<SagaInstance | undefined>;
  /** Every attempt of a business key, oldest first. */
  abstract attemptsOf(db: Sql, key: string): Promise<AttemptRow[]>;
}
