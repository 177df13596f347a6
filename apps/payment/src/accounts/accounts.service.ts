import { Injectable } from '@nestjs/common';
import { AccountBalance, ChargePayment, DeclineReason, DepositFunds, RefundPayment } from '@orderflow/contracts';
import { PermanentError } from '@orderflow/messaging';
import { Tx } from '@orderflow/persistence';

export type ChargeOutcome = { charged: true; amount: number } | { charged: false; reason: DeclineReason; detail?: string };

interface AccountRow { customer_id: string; currency: string; balance: string }

/**
 * Customer balances and their ledger, in integer minor units. Money is never created or lost: for every
 * account, balance + charged − refunded = deposited. Every method runs inside the caller's transaction.
 */
@Injectable()
export class AccountsService {
  /** Charges an order once; a repeated charge returns the first outcome; a charge after a refund of the order is declined (`refunded`). */
  async charge(tx: Tx, cmd: ChargePayment): Promise<ChargeOutcome> {
    const previous = await this.entriesOf(tx, cmd.orderId);
    const charge = previous.find((e) => e.kind === 'CHARGE');
    if (charge) return { charged: true, amount: Number(charge.amount) };
    const decline = previous.find((e) => e.kind === 'DECLINE');
    if (decline) return { charged: false, reason: decline.reason as DeclineReason };
    if (previous.some((e) => e.kind === 'REFUND')) return { charged: false, reason: 'refunded', detail: 'the order was refunded before it was charged' };

    const account = await this.lock(tx, cmd.customerId);
    const outcome: ChargeOutcome =
      !account ? { charged: false, reason: 'unknown_customer', detail: `no account for customer ${cmd.customerId}` }
      : account.currency !== cmd.currency ? { charged: false, reason: 'currency_mismatch', detail: `account is in ${account.currency}, order in ${cmd.currency}` }
      : Number(account.balance) < cmd.amount ? { charged: false, reason: 'insufficient_funds', detail: `balance ${account.balance} < ${cmd.amount}` }
      : { charged: true, amount: cmd.amount };

    if (outcome.charged) {
      await tx.query('update accounts set balance = balance - $2, updated_at = now() where customer_id = $1', [cmd.customerId, cmd.amount]);
      await this.record(tx, cmd.customerId, cmd.orderId, 'CHARGE', cmd.amount, cmd.currency);
    } else {
      await this.record(tx, cmd.customerId, cmd.orderId, 'DECLINE', 0, cmd.currency, outcome.reason);
    }
    return outcome;
  }

  /** Returns an order's charge to the balance. Idempotent; with no charge it records a zero refund that blocks a late charge. */
  async refund(tx: Tx, cmd: RefundPayment): Promise<number> {
    const previous = await this.entriesOf(tx, cmd.orderId);
    const refund = previous.find((e) => e.kind === 'REFUND');
    if (refund) return Number(refund.amount);
    const charge = previous.find((e) => e.kind === 'CHARGE');
    if (!charge) {
      await this.record(tx, cmd.customerId, cmd.orderId, 'REFUND', 0, previous[0]?.currency ?? 'XXX');
      return 0;
    }
    await tx.query('update accounts set balance = balance + $2, updated_at = now() where customer_id = $1', [charge.customer_id, charge.amount]);
    await this.record(tx, charge.customer_id, cmd.orderId, 'REFUND', Number(charge.amount), charge.currency);
    return Number(charge.amount);
  }

  /**
   * Adds funds, opening the account in `currency` on first deposit.
   * @throws PermanentError when the account exists in another currency (retrying cannot help).
   */
  async deposit(tx: Tx, cmd: DepositFunds): Promise<AccountBalance> {
    const [row] = await tx.query<AccountRow>(
      `insert into accounts (customer_id, currency, balance) values ($1, $2, $3)
         on conflict (customer_id) do update set balance = accounts.balance + excluded.balance, updated_at = now()
           where accounts.currency = excluded.currency
         returning customer_id, currency, balance`,
      [cmd.customerId, cmd.currency, cmd.amount],
    );
    if (!row) throw new PermanentError(`account ${cmd.customerId} is not in ${cmd.currency}; deposit refused`);
    await this.record(tx, cmd.customerId, null, 'DEPOSIT', cmd.amount, cmd.currency);
    return toBalance(row);
  }

  async balance(db: Pick<Tx, 'query'>, customerId: string): Promise<AccountBalance | undefined> {
    const [row] = await db.query<AccountRow>('select customer_id, currency, balance from accounts where customer_id = $1', [customerId]);
    return row && toBalance(row);
  }

  private async lock(tx: Tx, customerId: string): Promise<AccountRow | undefined> {
    const [row] = await tx.query<AccountRow>('select customer_id, currency, balance from accounts where customer_id = $1 for update', [customerId]);
    return row;
  }

  private entriesOf(tx: Tx, orderId: string) {
    return tx.query<{ kind: string; amount: string; reason: string | null; customer_id: string; currency: string }>(
      `select kind, amount, reason, customer_id, currency from ledger where order_id = $1 for update`,
      [orderId],
    );
  }

  private record(tx: Tx, customerId: string, orderId: string | null, kind: string, amount: number, currency: string, reason?: string) {
    return tx.query('insert into ledger (customer_id, order_id, kind, amount, currency, reason) values ($1, $2, $3, $4, $5, $6)', [
      customerId, orderId, kind, amount, currency, reason ?? null,
    ]);
  }
}

const toBalance = (r: AccountRow): AccountBalance => ({ customerId: r.customer_id, balance: Number(r.balance), currency: r.currency });
