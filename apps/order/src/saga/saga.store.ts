import { Injectable } from '@nestjs/common';
import type { SagaStatus } from '@orderflow/contracts';
import type { Sql } from '@orderflow/persistence';
import type { SagaData, SagaState } from './saga.engine';
import type { SagaRow } from './saga.orchestrator';

/** The filters and keyset of a page of `list` (`query.order.sagas`). */
export interface SagaListFilter {
  status?: string[];
  reason?: string;
  since?: string;
  /** The attempt is at this step, or failed or timed out on it. */
  step?: string;
  orderIds?: string[];
  limit: number;
  /** Order by id (bulk snapshots) or by last update, newest first (`saga list`). */
  order: 'id' | 'updated';
  /** The keyset: the last row's id (and, by update, its update time to the millisecond). */
  after?: { id: string; updatedAt?: string };
}

/** One attempt of an order, as `saga show` lists them. */
export interface AttemptRow {
  id: string;
  attempt: number;
  status: SagaStatus;
  reason: string | null;
}

/**
 * The saga instances (`orders.sagas`: one row per attempt, keyed by id; the business key in `order_id`): every
 * statement the saga layer and its views run. Row locks (`FOR UPDATE`) serialise the inputs of one attempt.
 */
@Injectable()
export class SagaStore {
  /** Stores a new attempt with its first state and next deadline. */
  async insert<D extends SagaData>(tx: Sql, type: string, row: SagaRow<D>, s: SagaState, deadline: Date | null): Promise<void> {
    await tx.query(
      `insert into sagas (id, status, step, reason, detail, history, deadline_at, type, order_id, data, attempt, retry_of, trace_parent)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        row.id,
        s.status,
        s.step,
        s.reason,
        s.detail,
        JSON.stringify(s.history),
        deadline,
        type,
        row.order_id,
        JSON.stringify(row.data),
        row.attempt,
        row.retry_of,
        row.trace_parent,
      ],
    );
  }

  /** Stores an attempt's new state and next deadline (null: it waits on nothing). */
  async update(tx: Sql, id: string, s: SagaState, deadline: Date | null): Promise<void> {
    await tx.query(
      `update sagas set status = $2, step = $3, reason = $4, detail = $5, history = $6, deadline_at = $7, updated_at = now()
       where id = $1`,
      [id, s.status, s.step, s.reason, s.detail, JSON.stringify(s.history), deadline],
    );
  }

  /** The attempt, locked until the transaction ends. */
  async lock(tx: Sql, id: string): Promise<SagaRow | undefined> {
    const [row] = await tx.query<SagaRow>('select * from sagas where id = $1 for update', [id]);
    return row;
  }

  /** The newest attempt of a business key, locked. */
  async lockNewest(tx: Sql, orderId: string): Promise<SagaRow | undefined> {
    const [row] = await tx.query<SagaRow>('select * from sagas where order_id = $1 order by attempt desc limit 1 for update', [orderId]);
    return row;
  }

  /** The newest attempt of a business key (of `type`, if given). */
  async newest(db: Sql, orderId: string, type?: string): Promise<Pick<SagaRow, 'id' | 'attempt' | 'status'> | undefined> {
    const [row] = await db.query<Pick<SagaRow, 'id' | 'attempt' | 'status'>>(
      'select id, attempt, status from sagas where order_id = $1 and ($2::text is null or type = $2) order by attempt desc limit 1',
      [orderId, type ?? null],
    );
    return row;
  }

  async statusOf(db: Sql, id: string): Promise<Pick<SagaRow, 'id' | 'status'> | undefined> {
    const [row] = await db.query<Pick<SagaRow, 'id' | 'status'>>('select id, status from sagas where id = $1', [id]);
    return row;
  }

  /** Up to `limit` attempts whose deadline passed, earliest first, locked; rows another instance holds are skipped. */
  lockDue(tx: Sql, limit: number): Promise<SagaRow[]> {
    return tx.query<SagaRow>(`select * from sagas where deadline_at <= now() order by deadline_at limit $1 for update skip locked`, [
      limit,
    ]);
  }

  /** How many attempts are RUNNING, COMPENSATING or FAILED, by type and status (the `orderflow_sagas` gauge). */
  inFlight(db: Sql): Promise<{ type: string; status: string; n: number }[]> {
    return db.query<{ type: string; status: string; n: number }>(
      `select type, status, count(*)::int as n from sagas where status in ('RUNNING', 'COMPENSATING', 'FAILED') group by type, status`,
    );
  }

  /**
   * A page of attempts matching every given filter. Keyset pagination on (updated_at to the millisecond, id) or on
   * id: paging on while sagas change neither skips nor repeats an attempt.
   */
  list(db: Sql, f: SagaListFilter): Promise<SagaRow[]> {
    const byId = f.order === 'id';
    const params: unknown[] = [f.status ?? null, f.reason ?? null, f.since ?? null, f.step ?? null, f.limit, f.orderIds ?? null];
    let after = 'true';
    if (f.after) {
      params.push(f.after.id);
      if (byId) after = `id > $7`;
      else {
        params.push(f.after.updatedAt);
        after = `(date_trunc('milliseconds', updated_at), id) < ($8::timestamptz, $7::uuid)`;
      }
    }
    // `step`: the attempt is at it (its newest history entry), or it failed or timed out on it (a step left RUNNING
    // or FAILED in its history), whatever the attempt's status now: a saga CANCELLED on a deadline names its step.
    return db.query<SagaRow>(
      `select * from sagas
        where ($1::text[] is null or status = any($1)) and ($2::text is null or reason = $2)
          and ($3::timestamptz is null or updated_at >= $3) and ($4::text is null or history -> -1 ->> 'name' = $4
               or exists (select 1 from jsonb_array_elements(history) h where h ->> 'name' = $4 and h ->> 'status' in ('RUNNING', 'FAILED')))
          and ($6::uuid[] is null or order_id = any($6))
          and ${after}
        order by ${byId ? 'id' : `date_trunc('milliseconds', updated_at) desc, id desc`} limit $5`,
      params,
    );
  }

  /** The attempt `id`, or the newest attempt of the business key `id`. */
  async byIdOrKey(db: Sql, id: string): Promise<SagaRow | undefined> {
    const [row] = await db.query<SagaRow>(
      'select * from sagas where id = $1 or order_id = $1 order by (id = $1) desc, attempt desc limit 1',
      [id],
    );
    return row;
  }

  /** Every attempt of a business key, oldest first. */
  attemptsOf(db: Sql, orderId: string): Promise<AttemptRow[]> {
    return db.query<AttemptRow>('select id, attempt, status, reason from sagas where order_id = $1 order by attempt', [orderId]);
  }
}
