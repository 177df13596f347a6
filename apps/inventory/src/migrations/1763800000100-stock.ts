import { MigrationInterface, QueryRunner } from 'typeorm';

export class Stock1763800000100 implements MigrationInterface {
  name = 'Stock1763800000100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      create table stock (
        sku text primary key,
        available bigint not null check (available >= 0),
        reserved bigint not null check (reserved >= 0),
        updated_at timestamptz not null default now()
      )`);
    // One reservation per order: its status answers a repeated reserve/release the same way (business idempotency).
    await q.query(`
      create table reservations (
        order_id uuid primary key,
        status text not null check (status in ('RESERVED', 'REJECTED', 'RELEASED')),
        items jsonb not null,
        reason text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop table reservations');
    await q.query('drop table stock');
  }
}
