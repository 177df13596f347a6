import { Injectable } from '@nestjs/common';
import {
  CommitStock,
  MAX_MINOR_UNITS,
  ReleaseStock,
  ReservationView,
  ReserveStock,
  RestockSku,
  StockLevel,
  StockLine,
  StockRejectReason,
  Subjects,
  unitsBySku,
} from '@orderflow/contracts';
import { ContradictsRecordsError, PermanentError } from '@orderflow/messaging';
import { Sql, Tx } from '@orderflow/persistence';
import { StockLocks } from './stock.locks';
import { LevelRow, ReservationRow, StockRepository } from './stock.repository';

export type ReserveOutcome = { reserved: true; items: StockLine[] } | { reserved: false; reason: StockRejectReason; detail?: string };

/**
 * Stock per SKU and one reservation per saga attempt: the rules (all lines or none, once per attempt, never a sold
 * unit released, commands checked against the records). The statements are `StockRepository`'s. Every method runs
 * inside the caller's transaction.
 */
@Injectable()
export class StockService {
  /** Per transaction, the rows its commands read, locked (for a batch, ahead: `StockLocks`). */
  private readonly locksFor = new WeakMap<Tx, Promise<StockLocks>>();

  constructor(private readonly repo: StockRepository) {}

  /**
   * Reserves all lines of an order for a saga attempt, or none. A repeated reserve of the same attempt
   * returns the first outcome; a reserve after a release of the same attempt is rejected with `released`
   * (the release was a countermeasure against a late reserve).
   * @throws ContradictsRecordsError when the attempt holds a reservation of another order or of other lines.
   */
  async reserve(tx: Tx, cmd: ReserveStock): Promise<ReserveOutcome> {
    const wanted = sumBySku(cmd.items);
    const skus = [...wanted.keys()].sort();
    // The attempt's reservation, then the stock rows, locked in that order and answered in one round trip (a repeated
    // reserve holds the stock rows it does not need until commit: a short wait for another reservation, nothing more).
    const locks = await this.locks(tx);
    const [existing, available] = await Promise.all([locks.reservation(cmd.sagaId), locks.availableOf(skus)]);
    if (existing) {
      checkOrder(existing, cmd);
      // A release that came first recorded no lines; anything else must be the same reservation asked again.
      if (existing.status !== 'RELEASED' && unitsBySku(existing.items) !== unitsBySku(cmd.items))
        throw new ContradictsRecordsError(
          `saga ${cmd.sagaId} reserved ${unitsBySku(existing.items)}; this ${Subjects.InventoryReserve} asks for ${unitsBySku(cmd.items)}`,
        );
      return outcomeOf(existing);
    }

    const unknown = skus.filter((s) => !available.has(s));
    const short = skus.filter((s) => available.has(s) && available.get(s)! < wanted.get(s)!);
    const outcome: ReserveOutcome =
      unknown.length > 0
        ? { reserved: false, reason: 'unknown_sku', detail: `unknown SKU ${unknown.join(', ')}` }
        : short.length > 0
          ? {
              reserved: false,
              reason: 'out_of_stock',
              detail: short.map((s) => `${s}: wanted ${wanted.get(s)}, available ${available.get(s)}`).join('; '),
            }
          : { reserved: true, items: cmd.items };

    this.repo.insertReservation(
      tx,
      {
        sagaId: cmd.sagaId,
        orderId: cmd.orderId,
        status: outcome.reserved ? 'RESERVED' : 'REJECTED',
        items: cmd.items,
        reason: outcome.reserved ? null : outcome.reason,
      },
      wanted,
    );
    if (outcome.reserved) locks.moved(wanted, -1);
    return outcome;
  }

  /**
   * Returns an attempt's reserved units to `available`. Idempotent; a release with no reservation records
   * one as RELEASED (which blocks a late reserve of that attempt).
   * @throws PermanentError when the reservation was committed (sold units are never released).
   * @throws ContradictsRecordsError when the attempt's reservation is another order's.
   */
  async release(tx: Tx, cmd: ReleaseStock): Promise<void> {
    const locks = await this.locks(tx);
    const existing = await locks.reservation(cmd.sagaId);
    if (existing) checkOrder(existing, cmd);
    if (!existing) return this.repo.insertReleased(tx, cmd.sagaId, cmd.orderId);
    if (existing.status === 'COMMITTED')
      throw new PermanentError(`reservation of saga ${cmd.sagaId} is COMMITTED: sold units cannot be released`);
    if (existing.status !== 'RESERVED') return;
    const units = sumBySku(existing.items);
    this.repo.settle(tx, cmd.sagaId, 'RELEASED', units);
    locks.moved(units, 1);
  }

  /**
   * The attempt's reserved units become sold (after the saga's pivot). Idempotent.
   * @throws PermanentError when the attempt has no reservation to commit (never reserved, rejected or released).
   * @throws ContradictsRecordsError when the attempt's reservation is another order's.
   */
  async commit(tx: Tx, cmd: CommitStock): Promise<void> {
    const existing = await (await this.locks(tx)).reservation(cmd.sagaId);
    if (existing) checkOrder(existing, cmd);
    if (existing?.status === 'COMMITTED') return;
    if (existing?.status !== 'RESERVED') {
      throw new PermanentError(`saga ${cmd.sagaId} has no reservation to commit (${existing ? existing.status : 'none'})`);
    }
    this.repo.settle(tx, cmd.sagaId, 'COMMITTED', sumBySku(existing.items));
  }

  /**
   * Adds units to a SKU, creating it if new.
   * @throws PermanentError when the SKU's restocked total would exceed 2^53 − 1 units.
   */
  async restock(tx: Tx, cmd: RestockSku): Promise<StockLevel> {
    const locks = await this.locks(tx); // first, if this is the batch's first command: locks go in one order
    const row = await this.repo.restock(tx, cmd.sku, cmd.quantity, MAX_MINOR_UNITS);
    if (!row) throw new PermanentError(`restocking ${cmd.quantity} units of ${cmd.sku} would take it past ${MAX_MINOR_UNITS} units`);
    locks.restocked(row.sku, row.available);
    return toLevel(row);
  }

  /** `tx`'s locks: the first command of a transaction takes them (for a batch, what all its commands name). */
  private locks(tx: Tx): Promise<StockLocks> {
    let locks = this.locksFor.get(tx);
    if (!locks) this.locksFor.set(tx, (locks = StockLocks.lockAhead(this.repo, tx)));
    return locks;
  }

  async level(db: Sql, sku: string): Promise<StockLevel | undefined> {
    const row = await this.repo.level(db, sku);
    return row && toLevel(row);
  }

  /** Every attempt's reservation for an order, oldest first. */
  async reservations(db: Sql, orderId: string): Promise<ReservationView[]> {
    return (await this.repo.reservationsOf(db, orderId)).map((r) => ({
      sagaId: r.saga_id,
      orderId: r.order_id,
      status: r.status,
      units: r.items.reduce((n, l) => n + l.quantity, 0),
      items: r.items,
      reason: r.reason,
      updatedAt: new Date(r.updated_at).toISOString(),
    }));
  }
}

/** @throws ContradictsRecordsError when the command names another order than the attempt's reservation. */
function checkOrder(existing: ReservationRow, cmd: { orderId: string; sagaId: string }): void {
  if (existing.order_id !== cmd.orderId)
    throw new ContradictsRecordsError(`saga ${cmd.sagaId} holds the reservation of order ${existing.order_id}, not of ${cmd.orderId}`);
}

function outcomeOf({ status, reason, items }: ReservationRow): ReserveOutcome {
  if (status === 'RESERVED' || status === 'COMMITTED') return { reserved: true, items };
  if (status === 'RELEASED') return { reserved: false, reason: 'released', detail: 'the attempt was released before it was reserved' };
  return { reserved: false, reason: reason ?? 'out_of_stock' };
}

function sumBySku(lines: StockLine[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) m.set(l.sku, (m.get(l.sku) ?? 0) + l.quantity);
  return m;
}

const toLevel = (r: LevelRow): StockLevel => ({
  sku: r.sku,
  available: r.available,
  reserved: r.reserved,
  sold: r.sold,
});
