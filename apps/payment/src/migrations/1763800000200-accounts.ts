import { MigrationInterface, QueryRunner } from 'typeorm';

export class Accounts1763800000200 implements MigrationInterface {
  name = 'Accounts1763800000200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      create table accounts (
        customer_id text primary key,
        currency char(3) not null,
        balance bigint not null check (balance >= 0),
        updated_at timestamptz not null default now()
      )`);
    // Every movement of money, in minor units. DECLINE rows (amount 0) record a refused charge so a
    // repeated charge gets the same answer. One CHARGE, one REFUND, one DECLINE at most per order.
    await q.query(`
      create table ledger (
        id bigserial primary key,
        customer_id text not null,
        order_id uuid,
        kind text not null check (kind in ('DEPOSIT', 'CHARGE', 'REFUND', 'DECLINE')),
        amount bigint not null check (amount >= 0),
        currency char(3) not null,
        reason text,
        created_at timestamptz not null default now(),
        unique (order_id, kind)
      )`);
    await q.query('create index ledger_customer on ledger (customer_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop table ledger');
    await q.query('drop table accounts');
  }
}
