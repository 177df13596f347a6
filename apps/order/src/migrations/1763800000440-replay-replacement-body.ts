import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A dead-letter replay may replace the whole body (`orderflow dlq replay --body FILE`, for a body no merge patch can
 * fix): the operator action keeps the body it sent, as it keeps a patch.
 */
export class ReplayReplacementBody1763800000440 implements MigrationInterface {
  name = 'ReplayReplacementBody1763800000440';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`alter table operator_actions add column body jsonb,
      add constraint operator_actions_patch_or_body check (patch is null or body is null)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('alter table operator_actions drop constraint operator_actions_patch_or_body, drop column body');
  }
}
