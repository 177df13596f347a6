import { Injectable } from '@nestjs/common';
import {
  AccountBalance,
  ChargePayment,
  ChargeView,
  DeclineReason,
  DepositFunds,
  MAX_MINOR_UNITS,
  RefundPayment,
} from '@orderflow/contracts';
import { ContradictsRecordsError, PermanentError } from '@orderflow/messaging';
import { Sql, Tx } from '@orderflow/persistence';
import { AccountLocks } from './account.locks';
import { AccountRow, AccountsRepository, EntryKind, EntryRow } from './accounts.repository';

export type ChargeOutcome = { charged: true; amount: number } | { charged: false; reason: DeclineReason; detail?: string };

/**
 * Customer balances and their ledger, in integer minor units. Money is never created or lost: for every
 * account, balance + charged − refunded = deposited. Charges and refunds are keyed on the saga attempt,
 * and at most one charge per order is not refunded at any time. Every method runs inside the caller's
 * transaction; charge and refund lock the account row first, which serialises everything about one order. The
 * statements are `AccountsRepository`'s.
 */
@Injectable()
export class AccountsService {
  /** Per transaction, the rows its commands read, locked (for a batch, ahead: `AccountLocks`). */
  private readonly locksFor = new WeakMap<Tx, Promise<AccountLocks>>();

  constructor(private readonly repo: AccountsRepository) {}

  /**
   * Charges a saga attempt once; a repeated charge returns the first outcome; a charge after a refund of the
   * attempt is declined (`refunded`), and so is one while another attempt of the order holds an un-refunded
   * charge (`already_charged`).
   * @throws ContradictsRecordsError when the attempt's entries are another order's or customer's, or it was charged
   *   another amount or currency.
   */
  async charge(tx: Tx, cmd: ChargePayment): Promise<ChargeOutcome> {
    // The account's lock, then the ledger's, then its entries: sent in that order, answered in one round trip.
    const locks = await this.locks(tx);
    const [account, { entries, mine }] = await Promise.all([locks.account(cmd.customerId), this.entriesOf(locks, cmd)]);
    const charge = mine.find((e) => e.kind === 'CHARGE');
    if (charge && (charge.amount !== cmd.amount || charge.currency !== cmd.currency))
      throw new ContradictsRecordsError(
        `saga ${cmd.sagaId} was charged ${charge.amount} ${charge.currency}; this charge asks for ${cmd.amount} ${cmd.currency}`,
      );
    if (charge) return { charged: true, amount: charge.amount };
    const decline = mine.find((e) => e.kind === 'DECLINE');
    if (decline) return { charged: false, reason: decline.reason as DeclineReason };
    if (mine.some((e) => e.kind === 'REFUND'))
      return { charged: false, reason: 'refunded', detail: 'the attempt was refunded before it was charged' };
    const held = entries.find((e) => e.kind === 'CHARGE' && !entries.some((r) => r.kind === 'REFUND' && r.saga_id === e.saga_id));

    const outcome: ChargeOutcome = held
      ? {
          charged: false,
          reason: 'already_charged',
          detail: `saga ${held.saga_id} of this order holds a charge of ${held.amount} that is not refunded`,
        }
      : !account
        ? { charged: false, reason: 'unknown_customer', detail: `no account for customer ${cmd.customerId}` }
        : account.currency !== cmd.currency
          ? { charged: false, reason: 'currency_mismatch', detail: `account is in ${account.currency}, order in ${cmd.currency}` }
          : account.balance < cmd.amount
            ? { charged: false, reason: 'insufficient_funds', detail: `balance ${account.balance} < ${cmd.amount}` }
            : { charged: true, amount: cmd.amount };

    if (outcome.charged) {
      this.repo.record(
        tx,
        { customerId: cmd.customerId, of: cmd, kind: 'CHARGE', amount: cmd.amount, currency: cmd.currency },
        -cmd.amount,
      );
      locks.balanceMoved(cmd.customerId, -cmd.amount);
    } else {
      this.record(tx, cmd.customerId, cmd, 'DECLINE', 0, cmd.currency, outcome.reason);
    }
    return outcome;
  }

  /**
   * Returns an attempt's charge to the balance. Idempotent; with no charge it records a zero refund that blocks a late
   * charge. It touches only that attempt's charge.
   * @throws ContradictsRecordsError when the attempt's entries are another order's or customer's.
   */
  async refund(tx: Tx, cmd: RefundPayment): Promise<number> {
    const locks = await this.locks(tx);
    const [account, { mine }] = await Promise.all([locks.account(cmd.customerId), this.entriesOf(locks, cmd)]);
    const refund = mine.find((e) => e.kind === 'REFUND');
    if (refund) return refund.amount;
    const charge = mine.find((e) => e.kind === 'CHARGE');
    if (!charge) {
      this.record(tx, cmd.customerId, cmd, 'REFUND', 0, account?.currency ?? mine[0]?.currency ?? 'XXX');
      return 0;
    }
    const refunded = { customerId: charge.customer_id, of: cmd, kind: 'REFUND' as const, amount: charge.amount, currency: charge.currency };
    this.repo.record(tx, refunded, charge.amount);
    locks.balanceMoved(charge.customer_id, charge.amount);
    return charge.amount;
  }

  /**
   * Adds funds, opening the account in `currency` on first deposit.
   * @throws PermanentError when the account exists in another currency, or the balance would exceed
   *   2^53 − 1 minor units (retrying cannot help).
   */
  async deposit(tx: Tx, cmd: DepositFunds): Promise<AccountBalance> {
    const locks = await this.locks(tx); // first, if this is the batch's first command: locks go in one order
    const row = await this.repo.deposit(tx, cmd.customerId, cmd.currency, cmd.amount, MAX_MINOR_UNITS);
    if (!row) {
      const existing = await this.balance(tx, cmd.customerId);
      throw new PermanentError(
        existing?.currency !== cmd.currency
          ? `account ${cmd.customerId} is in ${existing?.currency}, not ${cmd.currency}; deposit refused`
          : `account ${cmd.customerId} would exceed ${MAX_MINOR_UNITS} minor units; deposit refused`,
      );
    }
    this.record(tx, cmd.customerId, null, 'DEPOSIT', cmd.amount, cmd.currency);
    locks.deposited(row);
    return toBalance(row);
  }

  async balance(db: Sql, customerId: string): Promise<AccountBalance | undefined> {
    const row = await this.repo.account(db, customerId);
    return row && toBalance(row);
  }

  /** What each saga attempt of an order was charged and refunded, oldest attempt first. */
  async charges(db: Sql, orderId: string): Promise<ChargeView[]> {
    const rows = await this.repo.entriesOf(db, orderId);
    const bySaga = new Map<string, ChargeView>();
    for (const r of rows) {
      const v = bySaga.get(r.saga_id) ?? {
        sagaId: r.saga_id,
        orderId: r.order_id,
        customerId: r.customer_id,
        currency: r.currency,
        charged: 0,
        refunded: 0,
        declined: null,
      };
      if (r.kind === 'CHARGE') v.charged += r.amount;
      if (r.kind === 'REFUND') v.refunded += r.amount;
      if (r.kind === 'DECLINE') v.declined = r.reason;
      bySaga.set(r.saga_id, v);
    }
    return [...bySaga.values()];
  }

  /**
   * The ledger entries of `cmd`'s order (all attempts) and of its attempt (whichever order they name), with both locked
   * for the rest of the transaction.
   * @throws ContradictsRecordsError when the attempt's entries belong to another order or customer than `cmd` names.
   */
  private async entriesOf(
    locks: AccountLocks,
    cmd: { sagaId: string; orderId: string; customerId: string },
  ): Promise<{ entries: EntryRow[]; mine: EntryRow[] }> {
    const rows = await locks.entries(cmd.orderId, cmd.sagaId);
    const mine = rows.filter((r) => r.saga_id === cmd.sagaId);
    const other = mine.find((r) => r.order_id !== cmd.orderId || r.customer_id !== cmd.customerId);
    if (other)
      throw new ContradictsRecordsError(
        `saga ${cmd.sagaId} is of order ${other.order_id} and customer ${other.customer_id}, not order ${cmd.orderId} and customer ${cmd.customerId}`,
      );
    return { entries: rows.filter((r) => r.order_id === cmd.orderId), mine };
  }

  /** `tx`'s locks: the first command of a transaction takes them (for a batch, what all its commands name). */
  private locks(tx: Tx): Promise<AccountLocks> {
    let locks = this.locksFor.get(tx);
    if (!locks) this.locksFor.set(tx, (locks = AccountLocks.lockAhead(this.repo, tx)));
    return locks;
  }

  private record(
    tx: Tx,
    customerId: string,
    of: { orderId: string; sagaId: string } | null,
    kind: EntryKind,
    amount: number,
    currency: string,
    reason?: string,
  ): void {
    this.repo.record(tx, { customerId, of, kind, amount, currency, reason });
  }
}

const toBalance = (r: AccountRow): AccountBalance => ({ customerId: r.customer_id, balance: r.balance, currency: r.currency });
