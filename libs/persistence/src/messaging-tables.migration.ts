import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outbox and inbox every service keeps in its own schema (unqualified names: `search_path` is the schema).
 * Listed first in each service's migrations.
 */
export class MessagingTables1763800000000 implements MigrationInterface {
  name = 'MessagingTables1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      create table outbox (
        id uuid primary key,
        subject text not null,
        headers jsonb not null default '{}',
        payload jsonb not null,
        created_at timestamptz not null default clock_timestamp()
      )`);
    await q.query('create index outbox_created_at on outbox (created_at)');
    await q.query(`
      create table inbox (
        consumer text not null,
        message_id text not null,
        received_at timestamptz not null default now(),
        primary key (consumer, message_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop table inbox');
    await q.query('drop table outbox');
  }
}

/** An index for pruning the inbox by age (`InboxPruner`). Listed after MessagingTables in each service's migrations. */
export class InboxReceivedAt1763800000001 implements MigrationInterface {
  name = 'InboxReceivedAt1763800000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query('create index inbox_received_at on inbox (received_at)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop index inbox_received_at');
  }
}
