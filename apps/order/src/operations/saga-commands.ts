import { Inject, Injectable } from '@nestjs/common';
import { CommandRefused, DeadLetterReplayed, SagaCommand, SagaResumed, SagaRetried, Subjects } from '@orderflow/contracts';
import type { Tx } from '@orderflow/persistence';
import { Logger, LOGGER } from '@orderflow/runtime';
import { Cause, Sagas } from '@orderflow/saga';
import type { Operator } from './operator-keys';
import { OperatorsRepository } from './operators.repository';

/** The answer to an operator command: the event to publish, or why it was refused. */
export type OperatorOutcome =
  | { done: true; subject: typeof Subjects.OrderSagaRetried; body: SagaRetried }
  | { done: true; subject: typeof Subjects.OrderSagaResumed; body: SagaResumed }
  | { done: true; subject: typeof Subjects.OrderDeadLetterReplayed; body: DeadLetterReplayed }
  | { done: false; body: CommandRefused };

/**
 * `order.cmd.retry-saga` and `order.cmd.resume-saga` from a verified operator: `Sagas` acts on the attempt, and the
 * action is audited in `operator_actions` in the same transaction.
 */
@Injectable()
export class SagaCommands {
  constructor(
    private readonly sagas: Sagas,
    private readonly operators: OperatorsRepository,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /** A new attempt, from the first step, of the newest attempt of its key when it is CANCELLED. */
  async retry(tx: Tx, cmd: SagaCommand, cause: Cause, operator: Operator): Promise<OperatorOutcome> {
    const r = await this.sagas.retry(tx, cmd.sagaId, cause);
    if ('refused' in r) return { done: false, body: { sagaId: cmd.sagaId, ...r.refused } };
    const { row, next } = r;
    this.log.info(
      { orderId: row.business_key, sagaId: next.id, retryOf: row.id, attempt: next.attempt, operator: operator.name },
      'saga retried by an operator: new attempt',
    );
    await this.audit(tx, cause.messageId, 'retry', cmd, operator, next.id);
    return {
      done: true,
      subject: Subjects.OrderSagaRetried,
      body: { sagaId: row.id, orderId: row.business_key, newSagaId: next.id, attempt: next.attempt },
    };
  }

  /** A FAILED attempt sends what it gave up on again and carries on from there. */
  async resume(tx: Tx, cmd: SagaCommand, cause: Cause, operator: Operator): Promise<OperatorOutcome> {
    const r = await this.sagas.resume(tx, cmd.sagaId, cause);
    if ('refused' in r) return { done: false, body: { sagaId: cmd.sagaId, ...r.refused } };
    const { row } = r;
    const step = r.waitsOn.join(', ');
    this.log.info({ orderId: row.business_key, sagaId: row.id, step, operator: operator.name }, 'saga resumed by an operator');
    await this.audit(tx, cause.messageId, 'resume', cmd, operator, null);
    return { done: true, subject: Subjects.OrderSagaResumed, body: { sagaId: row.id, orderId: row.business_key, step } };
  }

  private audit(tx: Tx, commandId: string, action: 'retry' | 'resume', cmd: SagaCommand, operator: Operator, newSagaId: string | null) {
    return this.operators.recordSagaAction(tx, {
      commandId,
      action,
      sagaId: cmd.sagaId,
      newSagaId,
      operator: operator.name,
      publicKey: operator.publicKey,
      why: cmd.why,
    });
  }
}
