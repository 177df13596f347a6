import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Saga attempts: a saga is identified by its id, an order can have several attempts (`saga retry`),
 * only the newest may be active. Operator actions are audited. Totals are bounded to 2^53 − 1 minor units.
 * Sagas that already exist become attempt 1 and carry their id in their data (commands send it as `sagaId`).
 */
export class SagaAttempts1763800000410 implements MigrationInterface {
  name = 'SagaAttempts1763800000410';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`alter table sagas add column attempt integer not null default 1 check (attempt >= 1),
                                     add column retry_of uuid references sagas (id)`);
    await q.query(`update sagas set data = data || jsonb_build_object('sagaId', id) where not data ? 'sagaId'`);
    await q.query('alter table sagas drop constraint sagas_order_id_key');
    await q.query('create unique index sagas_order_attempt on sagas (order_id, attempt)');
    // At most one active attempt per order: a retry of an attempt that is still running is impossible.
    await q.query(`create unique index sagas_one_active on sagas (order_id) where status in ('RUNNING', 'COMPENSATING')`);
    await q.query('create index sagas_status_updated on sagas (status, updated_at)');
    await q.query('alter table orders add constraint orders_total_max check (total <= 9007199254740991)');
    // One row per operator command (`id` = the command's message id: asking twice has one effect).
    await q.query(`
      create table operator_actions (
        id text primary key,
        action text not null check (action in ('retry', 'resume')),
        saga_id uuid not null references sagas (id),
        new_saga_id uuid references sagas (id),
        operator text not null,
        why text not null,
        at timestamptz not null default now()
      )`);
    await q.query('create index operator_actions_saga on operator_actions (saga_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop table operator_actions');
    await q.query('alter table orders drop constraint orders_total_max');
    await q.query('drop index sagas_status_updated');
    await q.query('drop index sagas_one_active');
    await q.query('drop index sagas_order_attempt');
    await q.query('alter table sagas add constraint sagas_order_id_key unique (order_id)');
    await q.query(`update sagas set data = data - 'sagaId'`);
    await q.query('alter table sagas drop column retry_of, drop column attempt');
  }
}
