import { Injectable } from '@nestjs/common';
import type { Sql } from '@orderflow/persistence';

/** An operator key setup registered (`orders.operators`; setup alone writes it). */
export interface OperatorRow {
  name: string;
  public_key: string;
  registered_at: Date;
  revoked_at: Date | null;
}

/** An audited operator action on a saga attempt (`orders.operator_actions`, append-only). */
export interface SagaActionRow {
  action: string;
  saga_id: string;
  operator: string;
  public_key: string | null;
  why: string;
  at: Date;
}

/** A dead-letter replay as the audit records it. */
export interface ReplayRecord {
  /** The operator command's message id: the action's key (asking twice writes once). */
  commandId: string;
  dlqSeq: number;
  replayOf: string;
  newMsgId: string;
  patch: object | null;
  body: unknown;
  operator: string;
  publicKey: string | null;
  why: string;
}

/** The operators' tables: the registered keys and the audit of what they did. */
@Injectable()
export class OperatorsRepository {
  /** Every registered key (of `name`, if given), oldest first; revoked ones too. */
  keys(db: Sql, name?: string): Promise<OperatorRow[]> {
    return db.query<OperatorRow>(
      'select name, public_key, registered_at, revoked_at from operators where $1::text is null or name = $1 order by registered_at, name',
      [name ?? null],
    );
  }

  async keyOf(db: Sql, publicKey: string): Promise<Pick<OperatorRow, 'name' | 'revoked_at'> | undefined> {
    const [row] = await db.query<Pick<OperatorRow, 'name' | 'revoked_at'>>('select name, revoked_at from operators where public_key = $1', [
      publicKey,
    ]);
    return row;
  }

  /** Records a retry or resume of a saga attempt (`newSagaId`: the attempt a retry started). */
  async recordSagaAction(
    tx: Sql,
    a: {
      commandId: string;
      action: 'retry' | 'resume';
      sagaId: string;
      newSagaId: string | null;
      operator: string;
      publicKey: string | null;
      why: string;
    },
  ): Promise<void> {
    await tx.query(
      'insert into operator_actions (id, action, saga_id, new_saga_id, operator, public_key, why) values ($1, $2, $3, $4, $5, $6, $7)',
      [a.commandId, a.action, a.sagaId, a.newSagaId, a.operator, a.publicKey, a.why],
    );
  }

  /** Records a dead-letter replay with its patch or replacement body. */
  async recordReplay(tx: Sql, r: ReplayRecord): Promise<void> {
    await tx.query(
      `insert into operator_actions (id, action, dead_letter, replay_of, new_msg_id, patch, body, operator, public_key, why)
       values ($1, 'replay', $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        r.commandId,
        r.dlqSeq,
        r.replayOf,
        r.newMsgId,
        r.patch ? JSON.stringify(r.patch) : null,
        r.body ? JSON.stringify(r.body) : null,
        r.operator,
        r.publicKey,
        r.why,
      ],
    );
  }

  /**
   * Serialises the replays of dead letter `dlqSeq` across instances until the transaction ends (a transaction-scoped
   * advisory lock): a second replay of it waits for the first to commit, then finds it replayed.
   */
  async lockReplaysOf(tx: Sql, dlqSeq: number): Promise<void> {
    await tx.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`dlq-replay:${dlqSeq}`]);
  }

  /** The newest replay of dead letter `dlqSeq` of message `replayOf`, if any. */
  async lastReplay(db: Sql, replayOf: string, dlqSeq: number): Promise<{ operator: string; at: Date; new_msg_id: string } | undefined> {
    const [row] = await db.query<{ operator: string; at: Date; new_msg_id: string }>(
      `select operator, at, new_msg_id from operator_actions where action = 'replay' and replay_of = $1 and dead_letter = $2 order by at desc limit 1`,
      [replayOf, dlqSeq],
    );
    return row;
  }

  /** The actions on any of `sagaIds`, oldest first. */
  ofSagas(db: Sql, sagaIds: string[]): Promise<SagaActionRow[]> {
    return db.query<SagaActionRow>(
      'select action, saga_id, operator, public_key, why, at from operator_actions where saga_id = any($1::uuid[]) order by at',
      [sagaIds],
    );
  }
}
