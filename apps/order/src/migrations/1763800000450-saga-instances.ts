import { MigrationInterface, QueryRunner } from 'typeorm';

/** The columns an attempt keeps in both tables, after its id, type, key and retry chain. */
const STATE_COLUMNS = `
  attempt integer not null check (attempt >= 1),
  status text not null check (status in ('RUNNING', 'COMPENSATING', 'COMPLETED', 'CANCELLED', 'FAILED')),
  step integer not null,
  reason text,
  detail text,
  history jsonb not null,
  data jsonb not null,
  trace_parent text,
  deadline_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()`;
const COPIED =
  'id, type, retry_of, attempt, status, step, reason, detail, history, data, trace_parent, deadline_at, created_at, updated_at';

/**
 * Saga attempts move from `sagas` (PlaceOrder-shaped: keyed by `order_id`, a foreign key into `orders`) to the saga
 * layer's own `saga_instances`: keyed by (business_key, type, attempt), at most one RUNNING or COMPENSATING attempt
 * per (business_key, type), no foreign key into a business table. Every attempt is copied with its id, so the
 * operator actions (which reference attempts) and the `Saga-Id` of messages in flight stay valid.
 */
export class SagaInstances1763800000450 implements MigrationInterface {
  name = 'SagaInstances1763800000450';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`create table saga_instances (
      id uuid primary key, type text not null, business_key text not null, retry_of uuid references saga_instances (id),
      ${STATE_COLUMNS})`);
    await q.query(`insert into saga_instances (business_key, ${COPIED}) select order_id::text, ${COPIED} from sagas`);
    // (business_key, …) first: replies without a Saga-Id and `saga show <order id>` look attempts up by key alone.
    await q.query('create unique index saga_instances_key on saga_instances (business_key, type, attempt)');
    await q.query(`create unique index saga_instances_one_active on saga_instances (business_key, type)
                     where status in ('RUNNING', 'COMPENSATING')`);
    await q.query('create index saga_instances_deadline on saga_instances (deadline_at) where deadline_at is not null');
    await q.query('create index saga_instances_status_updated on saga_instances (status, updated_at)');
    await this.pointActionsAt(q, 'saga_instances');
    await q.query('drop table sagas');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`create table sagas (
      id uuid primary key, type text not null, order_id uuid not null references orders (order_id), retry_of uuid references sagas (id),
      ${STATE_COLUMNS})`);
    await q.query(`insert into sagas (order_id, ${COPIED}) select business_key::uuid, ${COPIED} from saga_instances`);
    await q.query('create index sagas_deadline on sagas (deadline_at) where deadline_at is not null');
    await q.query('create unique index sagas_order_attempt on sagas (order_id, attempt)');
    await q.query(`create unique index sagas_one_active on sagas (order_id) where status in ('RUNNING', 'COMPENSATING')`);
    await q.query('create index sagas_status_updated on sagas (status, updated_at)');
    await this.pointActionsAt(q, 'sagas');
    await q.query('drop table saga_instances');
  }

  /** The operator actions' references to attempts, re-pointed at `table`. */
  private async pointActionsAt(q: QueryRunner, table: string): Promise<void> {
    await q.query(`alter table operator_actions
      drop constraint operator_actions_saga_id_fkey, drop constraint operator_actions_new_saga_id_fkey,
      add constraint operator_actions_saga_id_fkey foreign key (saga_id) references ${table} (id),
      add constraint operator_actions_new_saga_id_fkey foreign key (new_saga_id) references ${table} (id)`);
  }
}
