import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AccountQuery, ChargePayment, ChargesQuery, Consumers, DepositFunds, RefundPayment, Subjects } from '@orderflow/contracts';
import { causedBy, ConsumerRunner, InboundMessage, NotFoundError, QueryResponder } from '@orderflow/messaging';
import { Transactor } from '@orderflow/persistence';
import { Logger, LOGGER } from '@orderflow/runtime';
import { AccountsService } from './accounts.service';

const consumer = Consumers.paymentCommands;

/**
 * Payment's side of the saga: `payment.cmd.*` in, `payment.evt.*` out (through the outbox). A reply names
 * the attempt it answers (`Saga-Id`) from the command's body, which is what the effect was keyed on.
 */
@Injectable()
export class AccountsHandlers implements OnApplicationBootstrap {
  constructor(
    private readonly accounts: AccountsService,
    private readonly tx: Transactor,
    private readonly runner: ConsumerRunner,
    private readonly queries: QueryResponder,
    private readonly ds: DataSource,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async onApplicationBootstrap() {
    await this.runner.start(
      consumer,
      this.tx.handler(consumer, {
        [Subjects.PaymentCharge]: async (tx, msg: InboundMessage<ChargePayment>) => {
          const { orderId, currency } = msg.body;
          const outcome = await this.accounts.charge(tx, msg.body);
          if (outcome.charged) {
            tx.send({
              subject: Subjects.PaymentCharged,
              body: { orderId, amount: outcome.amount, currency },
              ...causedBy(msg, { sagaId: msg.body.sagaId }),
            });
          } else {
            this.log.info({ orderId, sagaId: msg.sagaId, reason: outcome.reason, detail: outcome.detail }, 'charge declined');
            tx.send({
              subject: Subjects.PaymentDeclined,
              body: { orderId, reason: outcome.reason, detail: outcome.detail },
              ...causedBy(msg, { sagaId: msg.body.sagaId }),
            });
          }
        },
        [Subjects.PaymentRefund]: async (tx, msg: InboundMessage<RefundPayment>) => {
          const amount = await this.accounts.refund(tx, msg.body);
          tx.send({
            subject: Subjects.PaymentRefunded,
            body: { orderId: msg.body.orderId, amount },
            ...causedBy(msg, { sagaId: msg.body.sagaId }),
          });
        },
        [Subjects.PaymentDeposit]: async (tx, msg: InboundMessage<DepositFunds>) => {
          const balance = await this.accounts.deposit(tx, msg.body);
          tx.send({ subject: Subjects.PaymentDeposited, body: balance, ...causedBy(msg) });
        },
      }),
    );
    this.queries.serve(Subjects.QueryAccount, AccountQuery, async (q) => {
      const balance = await this.accounts.balance(this.ds, q.customerId);
      if (!balance) throw new NotFoundError(`unknown customer ${q.customerId}`);
      return balance;
    });
    this.queries.serve(Subjects.QueryCharges, ChargesQuery, (q) => this.accounts.charges(this.ds, q.orderId));
  }
}
