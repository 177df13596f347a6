import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Reservations per saga attempt: keyed by `saga_id`, with a COMMITTED status (`inventory.cmd.commit`:
 * reserved units become sold). Stock keeps `sold` and `restocked`, and the database enforces
 * `available + reserved + sold = restocked`, every figure within 2^53 − 1.
 * Existing reservations predate saga ids: their order id stands in for the attempt's id, so sagas in flight
 * should be drained before this runs.
 */
export class ReservationsPerAttempt1763800000110 implements MigrationInterface {
  name = 'ReservationsPerAttempt1763800000110';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`alter table stock add column sold bigint not null default 0 check (sold >= 0),
                                     add column restocked bigint`);
    await q.query('update stock set restocked = available + reserved');
    await q.query(`alter table stock alter column restocked set not null,
                                     add constraint stock_conserved check (available + reserved + sold = restocked),
                                     add constraint stock_max check (restocked <= 9007199254740991)`);
    await q.query('alter table reservations add column saga_id uuid');
    await q.query('update reservations set saga_id = order_id');
    await q.query('alter table reservations drop constraint reservations_pkey');
    await q.query('alter table reservations alter column saga_id set not null, add primary key (saga_id)');
    await q.query('create index reservations_order on reservations (order_id)');
    await q.query('alter table reservations drop constraint reservations_status_check');
    await q.query(
      `alter table reservations add constraint reservations_status_check check (status in ('RESERVED', 'REJECTED', 'RELEASED', 'COMMITTED'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`delete from reservations where saga_id <> order_id`);
    await q.query('alter table reservations drop constraint reservations_status_check');
    await q.query(
      `alter table reservations add constraint reservations_status_check check (status in ('RESERVED', 'REJECTED', 'RELEASED'))`,
    );
    await q.query('drop index reservations_order');
    await q.query('alter table reservations drop constraint reservations_pkey, add primary key (order_id), drop column saga_id');
    await q.query('alter table stock drop constraint stock_conserved, drop constraint stock_max, drop column restocked, drop column sold');
  }
}
