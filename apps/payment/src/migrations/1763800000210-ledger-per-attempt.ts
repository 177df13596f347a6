import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ledger entries per saga attempt: one CHARGE, REFUND, DECLINE at most per `saga_id`; balances and
 * amounts within 2^53 − 1 minor units. Existing entries predate saga ids: their order id stands in for the
 * attempt's id, so sagas in flight should be drained before this runs.
 */
export class LedgerPerAttempt1763800000210 implements MigrationInterface {
  name = 'LedgerPerAttempt1763800000210';

  async up(q: QueryRunner): Promise<void> {
    await q.query('alter table ledger add column saga_id uuid');
    await q.query('update ledger set saga_id = order_id where order_id is not null');
    await q.query('alter table ledger drop constraint ledger_order_id_kind_key');
    await q.query('alter table ledger add constraint ledger_saga_kind unique (saga_id, kind)');
    await q.query('alter table ledger add constraint ledger_saga_for_orders check ((order_id is null) = (saga_id is null))');
    await q.query('create index ledger_order on ledger (order_id)');
    await q.query('alter table ledger add constraint ledger_amount_max check (amount <= 9007199254740991)');
    await q.query('alter table accounts add constraint accounts_balance_max check (balance <= 9007199254740991)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('alter table accounts drop constraint accounts_balance_max');
    await q.query(
      'alter table ledger drop constraint ledger_amount_max, drop constraint ledger_saga_for_orders, drop constraint ledger_saga_kind',
    );
    await q.query('drop index ledger_order');
    await q.query('alter table ledger add constraint ledger_order_id_kind_key unique (order_id, kind)');
    await q.query('alter table ledger drop column saga_id');
  }
}
