import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { Consumers, OperatorCommand, Subjects } from '@orderflow/contracts';
import { Logger, LOGGER } from '@orderflow/runtime';
import { JetStreamContext, reply, Reply } from '@orderflow/transport';
import { OperatorOutcome, Sagas } from '../saga/sagas';

const commands = { consumer: Consumers.orderOperatorCommands };

/**
 * Operator commands (`orderflow saga retry|resume`): `order.cmd.retry-saga` and `order.cmd.resume-saga`. Each
 * is carried out in one transaction with its audit row, and answered with `order.evt.saga-retried`,
 * `order.evt.saga-resumed`, or `order.evt.command-refused` naming why (a COMPLETED or RUNNING saga is never
 * touched). The command's message id is its idempotency key: asking twice has one effect (inbox, and the
 * audit row's primary key).
 */
@Controller()
export class OperatorCommandsController {
  constructor(
    private readonly sagas: Sagas,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  @EventPattern(Subjects.OrderRetrySaga, commands)
  async retry(@Payload() cmd: OperatorCommand, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    return this.answer(cmd, ctx, await this.sagas.retry(ctx.tx, cmd, ctx.message));
  }

  @EventPattern(Subjects.OrderResumeSaga, commands)
  async resume(@Payload() cmd: OperatorCommand, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    return this.answer(cmd, ctx, await this.sagas.resume(ctx.tx, cmd, ctx.message));
  }

  private answer(cmd: OperatorCommand, ctx: JetStreamContext, outcome: OperatorOutcome): Reply {
    const headers = { sagaId: cmd.sagaId, correlationId: outcome.done ? outcome.body.orderId : ctx.orderId };
    if (outcome.done) return reply(outcome.subject, outcome.body, headers);
    this.log.warn(
      { sagaId: cmd.sagaId, operator: cmd.operator, subject: ctx.message.subject, reason: outcome.body.reason },
      'operator command refused',
    );
    return reply(Subjects.OrderCommandRefused, outcome.body, headers);
  }
}
