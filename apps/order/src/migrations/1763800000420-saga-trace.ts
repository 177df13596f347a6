import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each saga attempt keeps the W3C `traceparent` of the message that started it: its deadline re-sends
 * continue that trace, and `orderflow orders show` / `saga show` print its trace id. Null for older attempts.
 */
export class SagaTrace1763800000420 implements MigrationInterface {
  name = 'SagaTrace1763800000420';

  async up(q: QueryRunner): Promise<void> {
    await q.query('alter table sagas add column trace_parent text');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('alter table sagas drop column trace_parent');
  }
}
