import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Consumers, OperatorCommand, Subjects } from '@orderflow/contracts';
import { causedBy, ConsumerRunner, InboundMessage } from '@orderflow/messaging';
import { Transactor, Tx } from '@orderflow/persistence';
import { Logger, LOGGER } from '@orderflow/runtime';
import { OperatorOutcome, PlaceOrderOrchestrator } from '../place-order/place-order.orchestrator';

/**
 * Operator commands (`orderflow saga retry|resume`): `order.cmd.retry-saga` and `order.cmd.resume-saga`. Each
 * is carried out in one transaction with its audit row, and answered with `order.evt.saga-retried`,
 * `order.evt.saga-resumed`, or `order.evt.command-refused` naming why (a COMPLETED or RUNNING saga is never
 * touched). The command's message id is its idempotency key: asking twice has one effect (inbox, and the
 * audit row's primary key).
 */
@Injectable()
export class OperatorCommandsHandlers implements OnApplicationBootstrap {
  constructor(
    private readonly saga: PlaceOrderOrchestrator,
    private readonly tx: Transactor,
    private readonly runner: ConsumerRunner,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap() {
    const consumer = Consumers.orderOperatorCommands;
    const answer = (tx: Tx, msg: InboundMessage<OperatorCommand>, outcome: OperatorOutcome) => {
      const headers = causedBy(msg, { sagaId: msg.body.sagaId, correlationId: outcome.done ? outcome.body.orderId : msg.correlationId });
      if (outcome.done) return tx.send({ subject: outcome.subject, body: outcome.body, ...headers });
      this.log.warn(
        { sagaId: msg.body.sagaId, operator: msg.body.operator, subject: msg.subject, reason: outcome.body.reason },
        'operator command refused',
      );
      tx.send({ subject: Subjects.OrderCommandRefused, body: outcome.body, ...headers });
    };
    await this.runner.start(
      consumer,
      this.tx.handler(consumer, {
        [Subjects.OrderRetrySaga]: async (tx, msg: InboundMessage<OperatorCommand>) =>
          answer(tx, msg, await this.saga.retry(tx, msg.body, msg.messageId)),
        [Subjects.OrderResumeSaga]: async (tx, msg: InboundMessage<OperatorCommand>) =>
          answer(tx, msg, await this.saga.resume(tx, msg.body, msg.messageId)),
      }),
    );
  }
}
