import { Inject, Injectable } from '@nestjs/common';
import { CommandRefused, DeadLetterReplayed, SagaCommand, SagaResumed, SagaRetried, Subjects } from '@orderflow/contracts';
import { InboundMessage, PermanentError } from '@orderflow/messaging';
import { DatabaseBreaker, readSql, Tx } from '@orderflow/persistence';
import { EnvConfig, Logger, LOGGER } from '@orderflow/runtime';
import { PipelineMetrics } from '@orderflow/telemetry';
import { DataSource } from 'typeorm';
import { SagaData, SagaDefinition } from './saga.engine';
import { Cause, SagaOrchestrator, SagaRow } from './saga.orchestrator';
import { SagaStore } from './saga.store';
import { OperatorsRepository } from '../operations/operators.repository';
import type { Operator } from '../operations/operator-keys';

/** The saga definitions the order app runs (provided by its module). */
export const SAGA_DEFINITIONS = Symbol('SAGA_DEFINITIONS');

/** The answer to an operator command: the event to publish, or why it was refused. */
export type OperatorOutcome =
  | { done: true; subject: typeof Subjects.OrderSagaRetried; body: SagaRetried }
  | { done: true; subject: typeof Subjects.OrderSagaResumed; body: SagaResumed }
  | { done: true; subject: typeof Subjects.OrderDeadLetterReplayed; body: DeadLetterReplayed }
  | { done: false; body: CommandRefused };

/** Why an operator command is refused: `CommandRefused`'s code and reason. */
type Refusal = Pick<CommandRefused, 'code' | 'reason'>;
const notFound = (sagaId: string): Refusal => ({ code: 'not_found', reason: `no saga ${sagaId}` });

/**
 * Every saga the app runs, one `SagaOrchestrator` per definition, and what concerns a saga row whatever its type:
 * locking it (`FOR UPDATE`, so the inputs of one attempt apply one at a time), routing a reply by its `Saga-Id`
 * header (the newest attempt of its correlation key for a reply without one), the deadline sweep, and the operator
 * commands (`orderflow saga retry|resume`, audited in `operator_actions`).
 */
@Injectable()
export class Sagas {
  private readonly byType = new Map<string, SagaOrchestrator<SagaData>>();

  constructor(
    @Inject(SAGA_DEFINITIONS) definitions: SagaDefinition<any>[],
    config: EnvConfig,
    @Inject(LOGGER) private readonly log: Logger,
    metrics: PipelineMetrics,
    ds: DataSource,
    breaker: DatabaseBreaker,
    private readonly store: SagaStore,
    private readonly operators: OperatorsRepository,
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
  forRow(row: SagaRow): SagaOrchestrator<SagaData> {
    const o = this.byType.get(row.type);
    if (!o) throw new PermanentError(`saga ${row.id} is of type ${row.type}, which this app does not run`);
    return o;
  }

  /**
   * Applies a participant's reply to the saga attempt named by its `Saga-Id` header.
   * @throws PermanentError when there is no such saga (a stray reply: dead-lettered for an operator).
   */
  async onReply(tx: Tx, msg: InboundMessage<{ orderId: string }>): Promise<void> {
    const row = msg.sagaId ? await this.lock(tx, msg.sagaId) : await this.lockNewest(tx, msg.body.orderId);
    if (!row || row.order_id !== msg.body.orderId)
      throw new PermanentError(`no saga ${msg.sagaId ?? '(no Saga-Id header)'} for order ${msg.body.orderId}`);
    await this.forRow(row).onReply(tx, row, msg.subject, msg.body, msg);
  }

  /** Handles sagas whose deadline passed; returns how many. Rows locked by others are skipped. */
  async onDeadlines(tx: Tx, limit = 100): Promise<number> {
    const due = await this.store.lockDue(tx, limit);
    for (const row of due) await this.forRow(row).onTimeout(tx, row);
    return due.length;
  }

  /**
   * `order.cmd.retry-saga` from `operator` (verified): a new attempt, from the first step, of the newest attempt of its
   * key when it is CANCELLED.
   * @returns the event to answer with, or why it was refused.
   */
  async retry(tx: Tx, cmd: SagaCommand, cause: Cause, operator: Operator): Promise<OperatorOutcome> {
    const row = await this.lock(tx, cmd.sagaId);
    const refused = row ? await this.refusal(tx, row, 'CANCELLED') : notFound(cmd.sagaId);
    if (refused || !row) return { done: false, body: { sagaId: cmd.sagaId, ...refused! } };
    const next = await this.forRow(row).retry(tx, row, cause);
    this.log.info(
      { orderId: row.order_id, sagaId: next.id, retryOf: row.id, attempt: next.attempt, operator: operator.name },
      'saga retried by an operator: new attempt',
    );
    await this.audit(tx, cause.messageId, 'retry', cmd, operator, next.id);
    return {
      done: true,
      subject: Subjects.OrderSagaRetried,
      body: { sagaId: row.id, orderId: row.order_id, newSagaId: next.id, attempt: next.attempt },
    };
  }

  /** `order.cmd.resume-saga` from `operator`: a FAILED attempt sends what it gave up on again and carries on from there. */
  async resume(tx: Tx, cmd: SagaCommand, cause: Cause, operator: Operator): Promise<OperatorOutcome> {
    const row = await this.lock(tx, cmd.sagaId);
    const refused = row ? await this.refusal(tx, row, 'FAILED') : notFound(cmd.sagaId);
    if (refused || !row) return { done: false, body: { sagaId: cmd.sagaId, ...refused! } };
    const step = (await this.forRow(row).resume(tx, row, cause)).join(', ');
    this.log.info({ orderId: row.order_id, sagaId: row.id, step, operator: operator.name }, 'saga resumed by an operator');
    await this.audit(tx, cause.messageId, 'resume', cmd, operator, null);
    return { done: true, subject: Subjects.OrderSagaResumed, body: { sagaId: row.id, orderId: row.order_id, step } };
  }

  /** Why an operator may not act on `row` (which must be in `wanted`), or null. */
  private async refusal(tx: Tx, row: SagaRow, wanted: 'CANCELLED' | 'FAILED'): Promise<Refusal | null> {
    if (row.status !== wanted) {
      const hint =
        row.status === 'FAILED'
          ? ': resume it instead (orderflow saga resume)'
          : row.status === 'CANCELLED'
            ? ': retry it instead (orderflow saga retry)'
            : '';
      return { code: 'not_allowed', reason: `saga ${row.id} is ${row.status}, not ${wanted}${hint}` };
    }
    const newest = await this.store.newest(tx, row.order_id, row.type);
    if (newest && newest.id !== row.id)
      return {
        code: 'superseded',
        reason: `saga ${row.id} is attempt ${row.attempt}; the order's newest attempt is ${newest.attempt} (${newest.id}, ${newest.status})`,
      };
    return null;
  }

  private audit(tx: Tx, commandId: string, action: 'retry' | 'resume', cmd: SagaCommand, operator: Operator, newSagaId: string | null) {
    return this.operators.recordSagaAction(tx, {
      commandId,
      action,
      sagaId: cmd.sagaId,
      newSagaId,
      operator: operator.name,
      publicKey: operator.publicKey,
      why: cmd.why,
    });
  }

  private lock(tx: Tx, sagaId: string): Promise<SagaRow | undefined> {
    return this.store.lock(tx, sagaId);
  }

  private lockNewest(tx: Tx, orderId: string): Promise<SagaRow | undefined> {
    return this.store.lockNewest(tx, orderId);
  }
}
