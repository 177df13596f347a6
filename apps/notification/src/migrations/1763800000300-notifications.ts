import { MigrationInterface, QueryRunner } from 'typeorm';

export class Notifications1763800000300 implements MigrationInterface {
  name = 'Notifications1763800000300';

  async up(q: QueryRunner): Promise<void> {
    // One notification per order outcome: the primary key makes a second one impossible.
    await q.query(`
      create table notifications (
        order_id uuid primary key,
        outcome text not null check (outcome in ('CONFIRMED', 'CANCELLED')),
        customer_id text not null,
        channel text not null,
        message text not null,
        created_at timestamptz not null default now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop table notifications');
  }
}
