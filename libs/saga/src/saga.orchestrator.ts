import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { trace } from '@opentelemetry/api';
import type { Tx } from '@orderflow/persistence';
import { contextOf, inSpan, PipelineMetrics, SpanKind, traceparentOf } from '@orderflow/telemetry';
import type { SagaData, SagaDefinition } from './saga.definition';
import { SagaEngine, SagaEngineOptions, SagaState, Transition } from './saga.engine';
import { SagaInstance, SagaStore, stateOf } from './saga.store';

const FINAL: SagaState['status'][] = ['COMPLETED', 'CANCELLED', 'FAILED'];

/**
 * The message that made the saga move: its id becomes the causation id of what the saga sends (whose trace is the
 * span active when it is sent: the cause's consume span).
 */
export interface Cause {
  messageId: string;
}

/**
 * Runs the sagas of one definition: keeps each attempt's state in the `SagaStore` and carries out the engine's effects
 * in the caller's transaction — commands and the outcome event through the outbox (correlated by the saga's key,
 * `Saga-Id` the attempt, causation the input), local steps and the outcome's local writes inline. The caller locks
 * the saga row (`Sagas`), so the inputs of one attempt are applied one at a time. Knows nothing of PlaceOrder: a
 * second saga type is a second definition. Logs and spans name the business key `orderId` / `orderflow.order_id`: every
 * saga in this pipeline is keyed by its order, and that is the name operators search by.
 * Source: the orchestration variant of the Saga pattern (C. Richardson, *Microservices Patterns*, ch. 4).
 */
export class SagaOrchestrator<D extends SagaData> {
  readonly engine: SagaEngine<D>;

  constructor(
    readonly definition: SagaDefinition<D>,
    options: SagaEngineOptions,
    private readonly store: SagaStore,
    private readonly log: Logger,
    private readonly metrics?: PipelineMetrics,
  ) {
    this.engine = new SagaEngine(definition, options);
  }

  /** Starts attempt 1 of a saga for `data` (whose `sagaId` is the new row's id). */
  async start(tx: Tx, data: D, cause: Cause): Promise<void> {
    const row = this.newRow(data, 1, null);
    this.log.info({ orderId: row.business_key, sagaId: row.id, saga: this.definition.name }, 'saga started');
    await this.apply(tx, row, this.engine.begin(data), cause, true);
  }

  /** A participant replied to the (locked) attempt `row`. Replies it does not wait on change nothing. */
  async onReply(tx: Tx, row: SagaInstance<D>, subject: string, body: unknown, cause: Cause): Promise<void> {
    const t = this.engine.onReply(stateOf(row), row.data, subject, body);
    if (t.ignored) {
      this.log.debug({ orderId: row.business_key, sagaId: row.id, subject }, 'reply ignored: not for what the saga waits on');
      return;
    }
    await this.apply(tx, row, t, cause);
  }

  /** The (locked) attempt's deadline passed: what is due is sent again, or given up on (in a span of the saga's trace). */
  async onTimeout(tx: Tx, row: SagaInstance<D>): Promise<void> {
    const attributes = () => ({ 'orderflow.order_id': row.business_key, 'orderflow.saga_id': row.id });
    const log = { orderId: row.business_key, sagaId: row.id };
    await inSpan('saga deadline', { kind: SpanKind.INTERNAL, attributes, log }, contextOf(row.trace_parent ?? undefined), async () => {
      this.log.warn({ steps: this.engine.current(stateOf(row)) }, 'saga step deadline passed');
      await this.apply(tx, row, this.engine.onTimeout(stateOf(row), row.data), { messageId: row.id });
    });
  }

  /** A new attempt, from the first step, of the (locked, CANCELLED) attempt `row`; returns the new attempt's row. */
  async retry(tx: Tx, row: SagaInstance<D>, cause: Cause): Promise<SagaInstance<D>> {
    const next = this.newRow({ ...row.data }, row.attempt + 1, row.id);
    await this.definition.onRetry?.(tx, next.data);
    await this.apply(tx, next, this.engine.begin(next.data), cause, true);
    return next;
  }

  /** The (locked, FAILED) attempt sends what it gave up on again; returns what it now waits on. */
  async resume(tx: Tx, row: SagaInstance<D>, cause: Cause): Promise<string[]> {
    const t = this.engine.resume(stateOf(row), row.data);
    await this.apply(tx, row, t, cause);
    return this.engine.current(t.state);
  }

  private newRow(data: D, attempt: number, retryOf: string | null): SagaInstance<D> {
    const id = attempt === 1 ? data.sagaId : randomUUID();
    const row = {
      id,
      business_key: this.definition.key(data),
      attempt,
      retry_of: retryOf,
      data: { ...data, sagaId: id },
    } as SagaInstance<D>;
    return { ...row, trace_parent: traceparentOf() ?? null, created_at: new Date() };
  }

  /** Carries out a transition's effects (running local steps inline) and stores the resulting state. */
  private async apply(tx: Tx, row: SagaInstance<D>, t: Transition, cause: Cause, isNew = false): Promise<void> {
    const def = this.definition;
    // Fields on the line, not a child logger: `child()` serialises (and redacts) its bindings at once, for every
    // transition, though only the last one of a saga writes a line.
    const named = { orderId: row.business_key, sagaId: row.id };
    const headers = { correlationId: row.business_key, sagaId: row.id, causationId: cause.messageId };
    for (let effects = t.effects; effects.length > 0;) {
      const next: typeof effects = [];
      for (const effect of effects) {
        switch (effect.type) {
          case 'send':
            tx.send({ ...effect.command, ...headers });
            break;
          case 'runLocal': {
            const local = def.steps.find((st) => st.name === effect.step)?.local;
            if (!local) throw new Error(`saga ${def.name} has no local step ${effect.step}`);
            t = this.engine.onLocalResult(t.state, row.data, await local(tx, row.data));
            next.push(...t.effects);
            break;
          }
          case 'completed':
            tx.send({ ...def.completed(row.data), ...headers });
            this.log.info(named, 'saga completed');
            break;
          case 'cancelled': {
            const why = { reason: effect.reason, detail: effect.detail };
            await def.onCancelled?.(tx, row.data, why);
            tx.send({ ...def.cancelled(row.data, why), ...headers });
            this.log.info({ ...named, ...why }, 'saga cancelled');
            break;
          }
          case 'failed':
            this.log.error(
              { ...named, error: effect.error },
              'saga FAILED: a step that must finish did not; needs an operator (orderflow saga resume)',
            );
            break;
        }
      }
      effects = next;
    }
    this.observe(tx, row, t.state, isNew);
    this.save(tx, row, t.state, isNew);
  }

  /** The transition as a span event of the active span, and (once committed) in the saga metrics. */
  private observe(tx: Tx, row: SagaInstance<D>, s: SagaState, isNew: boolean): void {
    const type = this.definition.name;
    const span = trace.getActiveSpan();
    if (span?.isRecording())
      span.addEvent('saga.transition', {
        'saga.type': type,
        'saga.id': row.id,
        'saga.status': s.status,
        'saga.step': this.engine.current(s).join(', ') || (s.history[s.history.length - 1]?.name ?? ''),
        ...(s.reason ? { 'saga.reason': s.reason } : {}),
      });
    if (!this.metrics) return;
    const metrics = this.metrics;
    const finished = FINAL.includes(s.status) && (isNew || row.status !== s.status);
    tx.afterCommit(() => {
      if (isNew) metrics.sagasStarted.inc({ type });
      if (!finished) return;
      metrics.sagasFinished.inc({ type, status: s.status, reason: s.reason ?? '' });
      metrics.sagaSeconds.observe({ type, status: s.status }, (Date.now() - new Date(row.created_at).getTime()) / 1000);
    });
  }

  /** Stores the saga's state and its next deadline (the earliest of what it waits on; null when it waits on nothing). */
  private save(tx: Tx, row: SagaInstance<D>, s: SagaState, isNew: boolean): void {
    const deadline = this.engine.deadlineOf(s);
    if (isNew) this.store.insert(tx, this.definition.name, row, s, deadline);
    else this.store.update(tx, row.id, s, deadline);
  }
}
