import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Signed operator actions: the operator keys `orderflow setup` registers (a rotated key is revoked, not
 * deleted, so the actions it signed still verify), and per action the key that signed it. Dead-letter replays are
 * operator actions too, carried out by the order app: each names the dead letter, the id its original is known by,
 * the replay's message id and the patch.
 */
export class SignedOperatorActions1763800000430 implements MigrationInterface {
  name = 'SignedOperatorActions1763800000430';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      create table operators (
        public_key text primary key check (public_key ~ '^U[A-Z2-7]{55}$'),
        name text not null check (name ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
        registered_at timestamptz not null default now(),
        revoked_at timestamptz
      )`);
    await q.query('create unique index operators_one_key_per_name on operators (name) where revoked_at is null');
    await q.query(`alter table operator_actions
      add column public_key text references operators (public_key),
      add column dead_letter bigint,
      add column replay_of text,
      add column new_msg_id uuid,
      add column patch jsonb,
      alter column saga_id drop not null,
      drop constraint operator_actions_action_check,
      add constraint operator_actions_action_check check (action in ('retry', 'resume', 'replay')),
      add constraint operator_actions_target check (
        case when action = 'replay' then dead_letter is not null and replay_of is not null and new_msg_id is not null
             else saga_id is not null end)`);
    await q.query(`create index operator_actions_replays on operator_actions (replay_of) where action = 'replay'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('drop index operator_actions_replays');
    await q.query(`delete from operator_actions where action = 'replay'`);
    await q.query(`alter table operator_actions
      drop constraint operator_actions_target,
      drop constraint operator_actions_action_check,
      add constraint operator_actions_action_check check (action in ('retry', 'resume')),
      alter column saga_id set not null,
      drop column patch, drop column new_msg_id, drop column replay_of, drop column dead_letter, drop column public_key`);
    await q.query('drop table operators');
  }
}
