import { MessagePattern, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import {
  Consumers,
  ConsumerSpec,
  handlesSubject,
  MalformedMessageError,
  OperatorsQuery,
  OperatorView,
  SagaListQuery,
  SagaQuery,
  SagaSummary,
  SagaTypesQuery,
  SagaTypeView,
  SagaView,
  Subjects,
} from '@orderflow/contracts';
import { JetStreamClient, NotFoundError } from '@orderflow/messaging';
import { traceIdOf } from '@orderflow/telemetry';
import { readSql, Sql } from '@orderflow/persistence';
import { planOf, SagaInstance, SagaListFilter, Sagas, SagaStore, stateOf, typeOf } from '@orderflow/saga';
import { MessageController } from '@orderflow/transport';
import { OperatorsRepository } from './operators.repository';

const iso = (d: Date | string) => new Date(d).toISOString();
/** "4 min", "35 s", "2 h": how long ago `at` was. */
const ago = (at: string) => {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Answers `query.order.sagas` (`orderflow saga list`), `query.order.saga` (`orderflow saga show`),
 * `query.order.saga-types` (the definitions' steps) and `query.order.operators` from the `SagaStore`,
 * `orders.operator_actions` and `orders.operators`. A saga id or an order id (the business key: its newest attempt)
 * is accepted.
 */
@MessageController()
export class SagaViewsController {
  private readonly read: Sql;

  constructor(
    ds: DataSource,
    private readonly sagas: Sagas,
    private readonly store: SagaStore,
    private readonly actions: OperatorsRepository,
    private readonly client: JetStreamClient,
  ) {
    this.read = readSql(ds);
  }

  /**
   * Attempts matching every given filter, one page (default 100, at most 1000) in `q.order`, after `q.after`.
   * Keyset pagination on (updated_at to the millisecond, id) or on id: no page is ever one reply too big, and paging
   * on while sagas change neither skips nor repeats an attempt (by id).
   * @throws MalformedMessageError (a `bad_request`) when `after` is not a cursor of the order.
   */
  @MessagePattern(Subjects.QuerySagas)
  async list(@Payload() q: SagaListQuery): Promise<SagaSummary[]> {
    const byId = q.order === 'id';
    let after: SagaListFilter['after'];
    if (q.after) {
      const [at, id] = byId ? [undefined, q.after] : q.after.split('/');
      if (!UUID.test(id ?? '') || (!byId && Number.isNaN(Date.parse(at ?? ''))))
        throw new MalformedMessageError(`after: "${q.after}" is not a cursor of order ${byId ? 'id' : 'updated'}`);
      after = { id, updatedAt: at };
    }
    const rows = await this.store.list(this.read, {
      status: q.status,
      reason: q.reason,
      since: q.since,
      step: q.step,
      keys: q.orderIds,
      limit: q.limit ?? 100,
      order: byId ? 'id' : 'updated',
      after,
    });
    return rows.map((r) => this.summary(r));
  }

  /** The saga types the app runs (or `q.type`), each with its steps and compensations in order. */
  @MessagePattern(Subjects.QuerySagaTypes)
  types(@Payload() q: SagaTypesQuery): SagaTypeView[] {
    return this.sagas.definitions.filter((d) => !q.type || d.name === q.type).map(typeOf);
  }

  /** @throws NotFoundError when `id` is neither a saga id nor the id of an order with a saga. */
  @MessagePattern(Subjects.QuerySaga)
  async show(@Payload() { id }: SagaQuery): Promise<SagaView> {
    const row = await this.store.byIdOrKey(this.read, id);
    if (!row) throw new NotFoundError(`no saga or order ${id}`);
    const saga = this.sagas.forRow(row);
    const attempts = await this.store.attemptsOf(this.read, row.business_key);
    const actions = await this.actions.ofSagas(
      this.read,
      attempts.map((a) => a.id),
    );
    return {
      ...this.summary(row),
      detail: row.detail,
      traceId: traceIdOf(row.trace_parent ?? undefined) ?? null,
      data: saga.definition.view(row.data),
      steps: await Promise.all(
        row.history.map(async (h) => ({
          name: h.name,
          kind: h.kind,
          status: h.status,
          startedAt: h.startedAt,
          finishedAt: h.finishedAt,
          durationMs: h.finishedAt ? Date.parse(h.finishedAt) - Date.parse(h.startedAt) : null,
          sends: h.attempts,
          error: h.error,
          note: h.note ?? null,
          waiting: h.status === 'RUNNING' && row.status !== 'FAILED' ? await this.waiting(row, h) : null,
        })),
      ),
      remaining: saga.engine.remaining(stateOf(row)),
      plan: planOf(saga.definition, row.data),
      deadlineAt: row.deadline_at ? iso(row.deadline_at) : null,
      attempts: attempts.map((a) => ({
        sagaId: a.id,
        attempt: a.attempt,
        status: a.status,
        reason: a.reason,
      })),
      actions: actions.map((a) => ({
        action: a.action,
        sagaId: a.saga_id,
        operator: a.operator,
        publicKey: a.public_key,
        why: a.why,
        at: iso(a.at),
      })),
    };
  }

  /** Every operator key setup registered, oldest first (revoked ones too: the actions they signed still verify). */
  @MessagePattern(Subjects.QueryOperators)
  async operators(@Payload() q: OperatorsQuery): Promise<OperatorView[]> {
    const rows = await this.actions.keys(this.read, q.name);
    return rows.map((r) => ({
      name: r.name,
      publicKey: r.public_key,
      registeredAt: iso(r.registered_at),
      revokedAt: r.revoked_at ? iso(r.revoked_at) : null,
    }));
  }

  /**
   * What a step in flight waits on, from its participant's durable consumer (consumer info, asked only here: nothing
   * is added to the message path): nobody pulling with messages undelivered (the participant is down), messages
   * ahead of it, or delivered and still unanswered (the participant is retrying, or slow). Null for a local step.
   */
  private async waiting(row: SagaInstance, h: SagaInstance['history'][number]): Promise<string | null> {
    const subject = this.sagas.forRow(row).engine.commandOf(h.name, row.data)?.subject;
    const consumer = subject && Object.values(Consumers as Record<string, ConsumerSpec>).find((c) => handlesSubject(c, subject));
    if (!consumer) return null;
    const participant = consumer.durable.split('-')[0];
    const since = `command first sent ${ago(h.startedAt)} ago${h.attempts > 1 ? `, ${h.attempts} sends` : ''}`;
    const info = await this.client.jsm.consumers.info(this.client.ns.stream(consumer.stream), consumer.durable).catch(() => null);
    if (!info) return `waiting for ${participant}: its consumer ${consumer.durable} could not be read; ${since}`;
    if (info.num_pending > 0 && info.num_waiting === 0)
      return `waiting for ${participant}: nobody is pulling ${consumer.durable} (${info.num_pending} message(s) undelivered); ${since}`;
    if (info.num_pending > 0)
      return `waiting for ${participant}: ${info.num_pending} message(s) not yet delivered, ${info.num_ack_pending} in progress; ${since}`;
    return `${participant} has received it${info.num_redelivered ? ` (${info.num_redelivered} message(s) being redelivered: it is retrying)` : ''} and not answered yet; ${since}`;
  }

  /** `step`: what the attempt waits on or gave up on (compensations in flight together are joined), else its last step. */
  private summary(r: SagaInstance): SagaSummary {
    const current = this.sagas.forRow(r).engine.current(stateOf(r));
    return {
      sagaId: r.id,
      orderId: r.business_key,
      type: r.type,
      attempt: r.attempt,
      status: r.status,
      reason: r.reason,
      step: current.length ? current.join(', ') : (r.history[r.history.length - 1]?.name ?? null),
      startedAt: iso(r.created_at),
      updatedAt: iso(r.updated_at),
    };
  }
}
