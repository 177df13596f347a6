import { Injectable } from '@nestjs/common';
import { Sql, TxSql } from '@orderflow/persistence';

/** A row of `payments.accounts`: a customer's balance in integer minor units of `currency`. */
export interface AccountRow {
  customer_id: string;
  currency: string;
  balance: number;
}

/** What the ledger records. */
export type EntryKind = 'CHARGE' | 'REFUND' | 'DECLINE' | 'DEPOSIT';

/** A row of `payments.ledger` (append-only): one money movement, or a decline, of a saga attempt or a deposit. */
export interface EntryRow {
  saga_id: string;
  order_id: string;
  kind: EntryKind;
  amount: number;
  reason: string | null;
  customer_id: string;
  currency: string;
}

/** The columns of an `EntryRow`, as every read of the ledger selects them. */
const ENTRY = 'saga_id, order_id, kind, amount, reason, customer_id, currency';

/**
 * The payment app's tables, `accounts` and the append-only `ledger`: every statement it runs. Each method runs on what
 * it is given — the caller's transaction (`Tx`), or the data source for a read. Amounts in integer minor units.
 */
@Injectable()
export class AccountsRepository {
  /** The customer's account, locked (`FOR UPDATE`) until the transaction ends; undefined when there is none. */
  async lockAccount(tx: Sql, customerId: string): Promise<AccountRow | undefined> {
    const [row] = await tx.query<AccountRow>('select customer_id, currency, balance from accounts where customer_id = $1 for update', [
      customerId,
    ]);
    return row;
  }

  /** The accounts of `customerIds` that exist, locked in customer id order. */
  lockAccounts(tx: Sql, customerIds: string[]): Promise<AccountRow[]> {
    return tx.query<AccountRow>(
      'select customer_id, currency, balance from accounts where customer_id = any($1::text[]) order by customer_id for update',
      [[...customerIds].sort()],
    );
  }

  async account(db: Sql, customerId: string): Promise<AccountRow | undefined> {
    const [row] = await db.query<AccountRow>('select customer_id, currency, balance from accounts where customer_id = $1', [customerId]);
    return row;
  }

  /**
   * Adds a deposit, opening the account in `currency` if new, unless the account is in another currency or the balance
   * would pass `max`.
   * @returns the account after it, or undefined when refused.
   */
  async deposit(tx: Sql, customerId: string, currency: string, amount: number, max: number): Promise<AccountRow | undefined> {
    const [row] = await tx.query<AccountRow>(
      `insert into accounts (customer_id, currency, balance) values ($1, $2, $3)
         on conflict (customer_id) do update set balance = accounts.balance + excluded.balance, updated_at = now()
           where accounts.currency = excluded.currency and accounts.balance + excluded.balance <= $4
         returning customer_id, currency, balance`,
      [customerId, currency, amount, max],
    );
    return row;
  }

  /**
   * The ledger entries of an order (all its attempts) and of an attempt (whichever order they name), serialised for
   * the rest of the transaction: the ledger is append-only (the runtime role may not UPDATE it, so not lock its rows
   * either), so a transaction-scoped advisory lock on the order and one on the attempt stand for row locks. The locks
   * go pipelined ahead of the read, in one round trip: Postgres runs them first, and the read's snapshot, taken once
   * they are held, sees every entry committed under them. The read is planned each time (`planEach`), so it stays on
   * the indexes however the ledger has grown since it was last analysed.
   */
  async lockEntries(tx: TxSql, orderId: string, sagaId: string): Promise<EntryRow[]> {
    tx.execute('select pg_advisory_xact_lock(hashtext($1)), pg_advisory_xact_lock(hashtext($2))', [
      `ledger:order:${orderId}`,
      `ledger:saga:${sagaId}`,
    ]);
    return tx.query<EntryRow>(`select ${ENTRY} from ledger where order_id = $1 or saga_id = $2 order by id`, [orderId, sagaId], {
      planEach: true,
    });
  }

  /**
   * `lockEntries` for many orders and attempts at once: the advisory locks of each (in key order), then the entries of
   * any of the orders or of any of the attempts, oldest first; one round trip.
   */
  async lockLedgers(tx: TxSql, orderIds: string[], sagaIds: string[]): Promise<EntryRow[]> {
    const keys = [...orderIds.map((id) => `ledger:order:${id}`), ...sagaIds.map((id) => `ledger:saga:${id}`)].sort();
    tx.execute('select pg_advisory_xact_lock(hashtext(k)) from unnest($1::text[]) as k', [keys]); // a function scan: in array order
    return tx.query<EntryRow>(
      `select ${ENTRY} from ledger
        where order_id = any($1::uuid[]) or saga_id = any($2::uuid[]) order by id`,
      [orderIds, sagaIds],
      { planEach: true },
    );
  }

  /** Every ledger entry of an order, oldest first. */
  entriesOf(db: Sql, orderId: string): Promise<EntryRow[]> {
    return db.query<EntryRow>(`select ${ENTRY} from ledger where order_id = $1 order by id`, [orderId]);
  }

  /**
   * Appends a ledger entry (`of`: the order and attempt; null for a deposit) and adds `balanceDelta` to the customer's
   * balance (negative for a charge; 0 leaves the account as it is): one statement (a data-modifying `WITH`), pipelined
   * (`TxSql.execute`). Fails with 23514 (check_violation) when the balance would go below zero, and with 23505 for a
   * second entry of a kind for one attempt.
   */
  record(
    tx: TxSql,
    e: {
      customerId: string;
      of: { orderId: string; sagaId: string } | null;
      kind: EntryKind;
      amount: number;
      currency: string;
      reason?: string;
    },
    balanceDelta = 0,
  ): void {
    tx.execute(
      `with balance as (update accounts set balance = balance + $8, updated_at = now() where customer_id = $1 and $8 <> 0)
       insert into ledger (customer_id, order_id, saga_id, kind, amount, currency, reason) values ($1, $2, $3, $4, $5, $6, $7)`,
      [e.customerId, e.of?.orderId ?? null, e.of?.sagaId ?? null, e.kind, e.amount, e.currency, e.reason ?? null, balanceDelta],
    );
  }
}
