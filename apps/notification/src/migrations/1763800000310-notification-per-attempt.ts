import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One notification per outcome of each saga attempt (a retried order gets a new outcome).
 * Existing notifications predate saga ids: their order id stands in for the attempt's id.
 */
export class NotificationPerAttempt1763800000310 implements MigrationInterface {
  name = 'NotificationPerAttempt1763800000310';

  async up(q: QueryRunner): Promise<void> {
    await q.query('alter table notifications add column saga_id uuid');
    await q.query('update notifications set saga_id = order_id');
    await q.query(
      'alter table notifications alter column saga_id set not null, drop constraint notifications_pkey, add primary key (saga_id)',
    );
    await q.query('create index notifications_order on notifications (order_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('delete from notifications where saga_id <> order_id');
    await q.query('drop index notifications_order');
    await q.query('alter table notifications drop constraint notifications_pkey, add primary key (order_id), drop column saga_id');
  }
}
