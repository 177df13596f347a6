import { Inject, Injectable } from '@nestjs/common';
import { isUUID } from 'class-validator';
import type { CommandRefused } from '@orderflow/contracts';
import { InboundMessage, PermanentError } from '@orderflow/messaging';
import { DatabaseBreaker, readSql, Tx } from '@orderflow/persistence';
import { EnvConfig, Logger, LOGGER } from '@orderflow/runtime';
import { PipelineMetrics } from '@orderflow/telemetry';
import { DataSource } from 'typeorm';
import type { SagaData, SagaDefinition } from './saga.definition';
import { Cause, SagaOrchestrator } from './saga.orchestrator';
import { SagaInstance, SagaStore } from './saga.store';

/** The saga definitions the app runs (`SagaModule.forRoot`). */
export const SAGA_DEFINITIONS = Symbol('SAGA_DEFINITIONS');

/** Why an operator's retry or resume is refused: a `CommandRefused` code and reason. */
export type Refusal = Pick<CommandRefused, 'code' | 'reason'>;

/** What an operator's retry or resume did: the attempt it acted on and what followed, or why it was refused. */
export type OperatorResult<T> = { refused: Refusal } | ({ row: SagaInstance } & T);

const notFound = (sagaId: string): Refusal => ({ code: 'not_found', reason: `no saga ${sagaId}` });

/**
 * Every saga the app runs, one `SagaOrchestrator` per definition, and what concerns a saga row whatever its type:
 * locking it (`FOR UPDATE`, so the inputs of one attempt apply one at a time), routing a reply by its `Saga-Id`
 * header (the newest attempt of its business key for a reply without one), the deadline sweep, and the operators'
 * `retry` and `resume` (the caller verifies and audits the operator).
 */
@Injectable()
export class Sagas {
  private readonly byType = new Map<string, SagaOrchestrator<SagaData>>();
  /** Per batch transaction, the attempts its replies name, locked together by the first of them (`locked`). */
  private readonly lockedFor = new WeakMap<Tx, Promise<Map<string, SagaInstance>>>();

  constructor(
    @Inject(SAGA_DEFINITIONS) definitions: SagaDefinition<any>[],
    config: EnvConfig,
    @Inject(LOGGER) log: Logger,
    metrics: PipelineMetrics,
    ds: DataSource,
    breaker: DatabaseBreaker,
    private readonly store: SagaStore,
  ) {
    const options = {
      stepTimeoutMs: config.SAGA_STEP_TIMEOUT_MS,
      stepBackoffMaxMs: config.SAGA_STEP_BACKOFF_MAX_MS,
      sagaDeadlineMs: config.SAGA_DEADLINE,
      compensationMaxAttempts: config.SAGA_COMPENSATION_MAX_ATTEMPTS,
      compensationBackoffMaxMs: config.SAGA_COMPENSATION_BACKOFF_MAX_MS,
    };
    for (const d of definitions) {
      if (this.byType.has(d.name)) throw new Error(`two saga definitions named ${d.name}`);
      this.byType.set(d.name, new SagaOrchestrator(d, options, store, log, metrics));
    }
    metrics.onScrape(async () => {
      if (!breaker.available) return; // as the outbox readings: a scrape during an outage does not wait on Postgres
      const rows = await store.inFlight(readSql(ds));
      for (const type of this.byType.keys())
        for (const status of ['RUNNING', 'COMPENSATING', 'FAILED']) metrics.sagas.set({ type, status }, 0);
      for (const r of rows) metrics.sagas.set({ type: r.type, status: r.status }, r.n);
    });
  }

  /** Every definition the app runs, in the order the module lists them. */
  get definitions(): SagaDefinition<SagaData>[] {
    return [...this.byType.values()].map((o) => o.definition);
  }

  /** The orchestrator of `definition`. @throws Error when the module does not provide that definition. */
  of<D extends SagaData>(definition: SagaDefinition<D>): SagaOrchestrator<D> {
    const o = this.byType.get(definition.name);
    if (!o) throw new Error(`saga ${definition.name} is not among SAGA_DEFINITIONS`);
    return o as unknown as SagaOrchestrator<D>;
  }

  /** The orchestrator of a stored row's type. @throws PermanentError for a type no definition has. */
  forRow(row: SagaInstance): SagaOrchestrator<SagaData> {
    const o = this.byType.get(row.type);
    if (!o) throw new PermanentError(`saga ${row.id} is of type ${row.type}, which this app does not run`);
    return o;
  }

  /**
   * Applies a participant's reply about business key `key` to the saga attempt named by its `Saga-Id` header.
   * @throws PermanentError when there is no such saga of that key (a stray reply: dead-lettered for an operator).
   */
  async onReply(tx: Tx, msg: InboundMessage, key: string): Promise<void> {
    const row = msg.sagaId ? await this.locked(tx, msg.sagaId) : await this.store.lockNewest(tx, key);
    if (!row || row.business_key !== key) throw new PermanentError(`no saga ${msg.sagaId ?? '(no Saga-Id header)'} for ${key}`);
    await this.forRow(row).onReply(tx, row, msg.subject, msg.body, msg);
  }

  /**
   * The attempt `sagaId`, locked. The first reply of a batch locks every attempt the batch's replies name, in one
   * statement (one round trip for the batch, not one per reply; a batch naming one attempt locks it alone); the
   * replies running alongside it (`ConsumerSpec.orderingKey`) wait for that statement. Each row is taken from there
   * once: the reply changes it, so a second reply to the same attempt in the batch (which runs after the first) reads
   * it again, after the first one's update.
   */
  private async locked(tx: Tx, sagaId: string): Promise<SagaInstance | undefined> {
    let locking = this.lockedFor.get(tx);
    if (!locking) {
      // Saga-Id is a header anyone could have set: only uuids go in the array (the id column's type).
      const ids = new Set(tx.messages.map((m) => m.sagaId).filter((id): id is string => !!id && isUUID(id)));
      locking =
        ids.size > 1 ? this.store.lockAll(tx, [...ids]).then((all) => new Map(all.map((r) => [r.id, r]))) : Promise.resolve(new Map());
      this.lockedFor.set(tx, locking);
    }
    const rows = await locking;
    const row = rows.get(sagaId);
    if (!row) return this.store.lock(tx, sagaId);
    rows.delete(sagaId);
    return row;
  }

  /** Handles sagas whose deadline passed; returns how many. Rows locked by others are skipped. */
  async onDeadlines(tx: Tx, limit = 100): Promise<number> {
    const due = await this.store.lockDue(tx, limit);
    for (const row of due) await this.forRow(row).onTimeout(tx, row);
    return due.length;
  }

  /**
   * A new attempt, from the first step, of attempt `sagaId` — when it is CANCELLED and the newest of its key.
   * @returns the attempt and the new one, or why not (`not_found`, `not_allowed`, `superseded`).
   */
  async retry(tx: Tx, sagaId: string, cause: Cause): Promise<OperatorResult<{ next: SagaInstance }>> {
    const row = await this.store.lock(tx, sagaId);
    const refused = row ? await this.refusal(tx, row, 'CANCELLED') : notFound(sagaId);
    if (refused || !row) return { refused: refused! };
    return { row, next: await this.forRow(row).retry(tx, row, cause) };
  }

  /**
   * A FAILED attempt `sagaId` (the newest of its key) sends what it gave up on again and carries on from there.
   * @returns the attempt and what it now waits on, or why not.
   */
  async resume(tx: Tx, sagaId: string, cause: Cause): Promise<OperatorResult<{ waitsOn: string[] }>> {
    const row = await this.store.lock(tx, sagaId);
    const refused = row ? await this.refusal(tx, row, 'FAILED') : notFound(sagaId);
    if (refused || !row) return { refused: refused! };
    return { row, waitsOn: await this.forRow(row).resume(tx, row, cause) };
  }

  /** Why an operator may not act on `row` (which must be in `wanted`), or null. */
  private async refusal(tx: Tx, row: SagaInstance, wanted: 'CANCELLED' | 'FAILED'): Promise<Refusal | null> {
    if (row.status !== wanted) {
      const hint =
        row.status === 'FAILED'
          ? ': resume it instead (orderflow saga resume)'
          : row.status === 'CANCELLED'
            ? ': retry it instead (orderflow saga retry)'
            : '';
      return { code: 'not_allowed', reason: `saga ${row.id} is ${row.status}, not ${wanted}${hint}` };
    }
    const newest = await this.store.newest(tx, row.business_key, row.type);
    if (newest && newest.id !== row.id)
      return {
        code: 'superseded',
        reason: `saga ${row.id} is attempt ${row.attempt}; the order's newest attempt is ${newest.attempt} (${newest.id}, ${newest.status})`,
      };
    return null;
  }
}
