import { Inject } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import {
  AccountBalance,
  AccountQuery,
  ChargePayment,
  ChargesQuery,
  Consumers,
  DepositFunds,
  RefundPayment,
  Subjects,
} from '@orderflow/contracts';
import { NotFoundError } from '@orderflow/messaging';
import { readSql, Sql } from '@orderflow/persistence';
import { Logger, LOGGER } from '@orderflow/runtime';
import { JetStreamContext, MessageController, Reply, reply } from '@orderflow/transport';
import { AccountsService } from './accounts.service';

const commands = { consumer: Consumers.paymentCommands };

/**
 * Payment's side of the saga: `payment.cmd.*` in, `payment.evt.*` out (returned, written to the outbox by the
 * transport). A reply names the attempt it answers (`Saga-Id`) from the command's body, which is what the effect
 * was keyed on. Queries are endpoints of the payment service.
 */
@MessageController()
export class AccountsController {
  private readonly read: Sql;

  constructor(
    private readonly accounts: AccountsService,
    ds: DataSource,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.read = readSql(ds);
  }

  @EventPattern(Subjects.PaymentCharge, commands)
  async charge(@Payload() cmd: ChargePayment, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    const outcome = await this.accounts.charge(ctx.tx, cmd);
    const attempt = { sagaId: cmd.sagaId };
    if (outcome.charged)
      return reply(Subjects.PaymentCharged, { orderId: cmd.orderId, amount: outcome.amount, currency: cmd.currency }, attempt);
    this.log.info({ orderId: cmd.orderId, sagaId: cmd.sagaId, reason: outcome.reason, detail: outcome.detail }, 'charge declined');
    return reply(Subjects.PaymentDeclined, { orderId: cmd.orderId, reason: outcome.reason, detail: outcome.detail }, attempt);
  }

  @EventPattern(Subjects.PaymentRefund, commands)
  async refund(@Payload() cmd: RefundPayment, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    const amount = await this.accounts.refund(ctx.tx, cmd);
    return reply(Subjects.PaymentRefunded, { orderId: cmd.orderId, amount }, { sagaId: cmd.sagaId });
  }

  @EventPattern(Subjects.PaymentDeposit, commands)
  async deposit(@Payload() cmd: DepositFunds, @Ctx() ctx: JetStreamContext): Promise<Reply> {
    return reply(Subjects.PaymentDeposited, await this.accounts.deposit(ctx.tx, cmd));
  }

  /** @throws NotFoundError for an unknown customer. */
  @MessagePattern(Subjects.QueryAccount)
  async account(@Payload() q: AccountQuery): Promise<AccountBalance> {
    const balance = await this.accounts.balance(this.read, q.customerId);
    if (!balance) throw new NotFoundError(`unknown customer ${q.customerId}`);
    return balance;
  }

  @MessagePattern(Subjects.QueryCharges)
  charges(@Payload() q: ChargesQuery) {
    return this.accounts.charges(this.read, q.orderId);
  }
}
