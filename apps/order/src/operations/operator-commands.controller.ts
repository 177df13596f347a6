import { Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Consumers, ReplayDeadLetter, ResumeSaga, RetrySaga, Subjects } from '@orderflow/contracts';
import { Logger, LOGGER } from '@orderflow/runtime';
import { JetStreamContext, MessageController, Reply, reply } from '@orderflow/transport';
import { DeadLetterReplays } from './dead-letter-replays';
import { Operator, OperatorKeys } from './operator-keys';
import { OperatorOutcome, SagaCommands } from './saga-commands';

const commands = { consumer: Consumers.orderOperatorCommands };

/**
 * Operator commands (`orderflow saga retry|resume`, `orderflow dlq replay`): `order.cmd.retry-saga`,
 * `order.cmd.resume-saga` and `order.cmd.replay-dead-letter`. Each must be signed by a registered operator key
 * (`OperatorKeys`); each is carried out in one transaction with its audit row, and answered with
 * `order.evt.saga-retried`, `order.evt.saga-resumed`, `order.evt.dead-letter-replayed`, or `order.evt.command-refused`
 * naming why (unsigned or unknown key; a COMPLETED or RUNNING saga is never touched). The command's message id is its
 * idempotency key: asking twice has one effect (inbox, and the audit row's primary key).
 */
@MessageController()
export class OperatorCommandsController {
  constructor(
    private readonly sagas: SagaCommands,
    private readonly replays: DeadLetterReplays,
    private readonly keys: OperatorKeys,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  @EventPattern(Subjects.OrderRetrySaga, commands)
  retry(@Payload() cmd: RetrySaga, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    return this.act(ctx, { sagaId: cmd.sagaId }, (operator) => this.sagas.retry(ctx.tx, cmd, ctx.message, operator));
  }

  @EventPattern(Subjects.OrderResumeSaga, commands)
  resume(@Payload() cmd: ResumeSaga, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    return this.act(ctx, { sagaId: cmd.sagaId }, (operator) => this.sagas.resume(ctx.tx, cmd, ctx.message, operator));
  }

  @EventPattern(Subjects.OrderReplayDeadLetter, commands)
  replay(@Payload() cmd: ReplayDeadLetter, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    return this.act(ctx, { dlqSeq: cmd.dlqSeq }, (operator) => this.replays.replay(ctx.tx, cmd, ctx.message, operator));
  }

  /** Verifies who signed the command, then does `work`; answers with its event or a refusal naming why. */
  private async act(
    ctx: JetStreamContext,
    target: { sagaId?: string; dlqSeq?: number },
    work: (operator: Operator) => Promise<OperatorOutcome>,
  ): Promise<Reply> {
    const verified = await this.keys.verify(ctx.tx, ctx.message);
    const outcome: OperatorOutcome =
      'refused' in verified
        ? { done: false, body: { ...target, code: 'unverified', reason: verified.refused } }
        : await work(verified.operator);
    const orderId = 'orderId' in outcome.body ? outcome.body.orderId : ctx.orderId;
    const headers = { sagaId: target.sagaId ?? ctx.sagaId, correlationId: orderId };
    if (outcome.done) return reply(outcome.subject, outcome.body, headers);
    this.log.warn(
      {
        ...target,
        operator: 'operator' in verified ? verified.operator.name : undefined,
        subject: ctx.message.subject,
        code: outcome.body.code,
        reason: outcome.body.reason,
      },
      'operator command refused',
    );
    return reply(Subjects.OrderCommandRefused, outcome.body, headers);
  }
}
