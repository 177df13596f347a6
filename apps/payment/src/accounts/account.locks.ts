import { ChargePayment, isCanonicalUuid, isValidated, RefundPayment, Subjects } from '@orderflow/contracts';
import { Tx } from '@orderflow/persistence';
import { AccountRow, AccountsRepository, EntryRow } from './accounts.repository';

/** The payment commands that read an account and a ledger. */
const NAMING_AN_ATTEMPT = new Set<string>([Subjects.PaymentCharge, Subjects.PaymentRefund]);

/**
 * The rows a transaction's payment commands read, locked. In a consumer batch (`Tx.messages`) the first command locks
 * every account and every ledger (order and attempt) the batch's charges and refunds name, and reads them, in one
 * round trip instead of one per command; a batch of one reads as it goes.
 * - An account locked ahead stays exact: no other transaction can change a locked row, and this one's balance
 *   changes are applied here as they are queued (`balanceMoved`, `deposited`).
 * - The ledger of an order or attempt read ahead is taken once: the command that takes it may add to it, so a second
 *   command of the same order or attempt in the batch reads it again.
 * Locks are taken in one order, accounts then ledgers, as a single command takes them.
 */
export class AccountLocks {
  private constructor(
    private readonly repo: AccountsRepository,
    private readonly tx: Tx,
    /** Accounts locked ahead, by customer id (undefined: no account). */
    private readonly accounts: Map<string, AccountRow | undefined>,
    /** Orders and attempts whose ledger entries were read ahead (and not taken yet), and those entries. */
    private readonly orders: Set<string>,
    private readonly sagas: Set<string>,
    private readonly ledger: EntryRow[],
  ) {}

  /**
   * For a batch of more than one message, locks what its charges and refunds name. Only validated bodies (the
   * consumer validates each before its batch) are read ahead, and only ids as Postgres writes them (lower case).
   */
  static async lockAhead(repo: AccountsRepository, tx: Tx): Promise<AccountLocks> {
    const customers = new Set<string>();
    const orders = new Set<string>();
    const sagas = new Set<string>();
    if (tx.messages.length > 1) {
      for (const { subject, body } of tx.messages) {
        if (!NAMING_AN_ATTEMPT.has(subject) || !isValidated(body)) continue;
        const cmd = body as ChargePayment | RefundPayment;
        if (!isCanonicalUuid(cmd.orderId) || !isCanonicalUuid(cmd.sagaId)) continue;
        customers.add(cmd.customerId);
        orders.add(cmd.orderId);
        sagas.add(cmd.sagaId);
      }
    }
    const [accounts, entries] = await Promise.all([
      customers.size > 0 ? repo.lockAccounts(tx, [...customers]) : [],
      orders.size > 0 ? repo.lockLedgers(tx, [...orders], [...sagas]) : [],
    ]);
    const byCustomer = new Map(accounts.map((a) => [a.customer_id, a]));
    return new AccountLocks(repo, tx, new Map([...customers].map((c) => [c, byCustomer.get(c)])), orders, sagas, entries);
  }

  /** The customer's account, locked; undefined when there is none. */
  async account(customerId: string): Promise<AccountRow | undefined> {
    if (!this.accounts.has(customerId)) return this.repo.lockAccount(this.tx, customerId);
    return this.accounts.get(customerId);
  }

  /** The ledger entries of an order (all attempts) and of an attempt, oldest first, locked (`AccountsRepository.lockEntries`). */
  async entries(orderId: string, sagaId: string): Promise<EntryRow[]> {
    if (!this.orders.has(orderId) || !this.sagas.has(sagaId)) return this.repo.lockEntries(this.tx, orderId, sagaId);
    this.orders.delete(orderId);
    this.sagas.delete(sagaId);
    return this.ledger.filter((e) => e.order_id === orderId || e.saga_id === sagaId);
  }

  /** This transaction added `delta` (minor units; negative for a charge) to the customer's balance. */
  balanceMoved(customerId: string, delta: number): void {
    const row = this.accounts.get(customerId);
    if (row) this.accounts.set(customerId, { ...row, balance: row.balance + delta });
  }

  /** This transaction deposited into the account: it is now `row` (and exists, if it was new). */
  deposited(row: AccountRow): void {
    if (this.accounts.has(row.customer_id)) this.accounts.set(row.customer_id, row);
  }
}
