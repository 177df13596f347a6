import { MigrationInterface, QueryRunner } from 'typeorm';

export class OrdersAndSagas1763800000400 implements MigrationInterface {
  name = 'OrdersAndSagas1763800000400';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      create table orders (
        order_id uuid primary key,
        customer_id text not null,
        currency char(3) not null,
        items jsonb not null,
        total bigint not null check (total >= 0),
        status text not null check (status in ('PENDING', 'CONFIRMED', 'CANCELLED')),
        reason text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    // order_id unique: the idempotency key of order.created, so one order runs one saga.
    await q.query(`
      create table sagas (
        id uuid primary key,
        type text not null,
        order_id uuid not null unique references orders (order_id),
        status text not null check (status in ('RUNNING', 'COMPENSATING', 'COMPLETED', 'CANCELLED', 'FAILED')),
        step integer not null,
        reason text,
        detail text,
        history jsonb not null,
        data jsonb not null,
        deadline_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    await q.query('create index sagas_deadline on sagas (deadline_at) where deadline_at is not null');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop table sagas');
    await q.query('drop table orders');
  }
}
