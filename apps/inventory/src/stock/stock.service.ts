import { Injectable } from '@nestjs/common';
import {
  CommitStock,
  MAX_MINOR_UNITS,
  ReleaseStock,
  ReservationStatus,
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
import { Tx } from '@orderflow/persistence';

export type ReserveOutcome = { reserved: true; items: StockLine[] } | { reserved: false; reason: StockRejectReason; detail?: string };

interface ReservationRow {
  saga_id: string;
  order_id: string;
  status: ReservationStatus;
  items: StockLine[];
  reason: StockRejectReason | null;
  updated_at: Date;
}

type LevelRow = { sku: string; available: number; reserved: number; sold: number };

/**
 * Stock per SKU and one reservation per saga attempt. Per SKU, `available + reserved + sold` is everything
 * ever restocked (a check constraint holds it). Every method runs inside the caller's transaction.
 */
@Injectable()
export class StockService {
  /**
   * Reserves all lines of an order for a saga attempt, or none. A repeated reserve of the same attempt
   * returns the first outcome; a reserve after a release of the same attempt is rejected with `released`
   * (the release was a countermeasure against a late reserve).
   * @throws ContradictsRecordsError when the attempt holds a reservation of another order or of other lines.
   */
  async reserve(tx: Tx, cmd: ReserveStock): Promise<ReserveOutcome> {
    const existing = await this.lockReservation(tx, cmd.sagaId);
    if (existing) {
      checkOrder(existing, cmd);
      // A release that came first recorded no lines; anything else must be the same reservation asked again.
      if (existing.status !== 'RELEASED' && unitsBySku(existing.items) !== unitsBySku(cmd.items))
        throw new ContradictsRecordsError(
          `saga ${cmd.sagaId} reserved ${unitsBySku(existing.items)}; this ${Subjects.InventoryReserve} asks for ${unitsBySku(cmd.items)}`,
        );
      return outcomeOf(existing);
    }

    const wanted = sumBySku(cmd.items);
    const skus = [...wanted.keys()].sort();
    // Lock in SKU order so concurrent reservations cannot deadlock.
    const rows = await tx.query<{ sku: string; available: number }>(
      'select sku, available from stock where sku = any($1) order by sku for update',
      [skus],
    );
    const available = new Map(rows.map((r) => [r.sku, r.available]));
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

    if (outcome.reserved) await this.move(tx, wanted, 'available', 'reserved');
    await tx.query('insert into reservations (saga_id, order_id, status, items, reason) values ($1, $2, $3, $4, $5)', [
      cmd.sagaId,
      cmd.orderId,
      outcome.reserved ? 'RESERVED' : 'REJECTED',
      JSON.stringify(cmd.items),
      outcome.reserved ? null : outcome.reason,
    ]);
    return outcome;
  }

  /**
   * Returns an attempt's reserved units to `available`. Idempotent; a release with no reservation records
   * one as RELEASED (which blocks a late reserve of that attempt).
   * @throws PermanentError when the reservation was committed (sold units are never released).
   * @throws ContradictsRecordsError when the attempt's reservation is another order's.
   */
  async release(tx: Tx, cmd: ReleaseStock): Promise<void> {
    const existing = await this.lockReservation(tx, cmd.sagaId);
    if (existing) checkOrder(existing, cmd);
    if (!existing) {
      await tx.query(
        `insert into reservations (saga_id, order_id, status, items) values ($1, $2, 'RELEASED', '[]') on conflict do nothing`,
        [cmd.sagaId, cmd.orderId],
      );
      return;
    }
    if (existing.status === 'COMMITTED')
      throw new PermanentError(`reservation of saga ${cmd.sagaId} is COMMITTED: sold units cannot be released`);
    if (existing.status !== 'RESERVED') return;
    await this.move(tx, sumBySku(existing.items), 'reserved', 'available');
    await this.setStatus(tx, cmd.sagaId, 'RELEASED');
  }

  /**
   * The attempt's reserved units become sold (after the saga's pivot). Idempotent.
   * @throws PermanentError when the attempt has no reservation to commit (never reserved, rejected or released).
   * @throws ContradictsRecordsError when the attempt's reservation is another order's.
   */
  async commit(tx: Tx, cmd: CommitStock): Promise<void> {
    const existing = await this.lockReservation(tx, cmd.sagaId);
    if (existing) checkOrder(existing, cmd);
    if (existing?.status === 'COMMITTED') return;
    if (existing?.status !== 'RESERVED') {
      throw new PermanentError(`saga ${cmd.sagaId} has no reservation to commit (${existing ? existing.status : 'none'})`);
    }
    await this.move(tx, sumBySku(existing.items), 'reserved', 'sold');
    await this.setStatus(tx, cmd.sagaId, 'COMMITTED');
  }

  /**
   * Adds units to a SKU, creating it if new.
   * @throws PermanentError when the SKU's restocked total would exceed 2^53 − 1 units.
   */
  async restock(tx: Tx, cmd: RestockSku): Promise<StockLevel> {
    const [row] = await tx.query<LevelRow>(
      `insert into stock (sku, available, reserved, sold, restocked) values ($1, $2, 0, 0, $2)
         on conflict (sku) do update set available = stock.available + excluded.available, restocked = stock.restocked + excluded.restocked, updated_at = now()
           where stock.restocked + excluded.restocked <= $3
         returning sku, available, reserved, sold`,
      [cmd.sku, cmd.quantity, MAX_MINOR_UNITS],
    );
    if (!row) throw new PermanentError(`restocking ${cmd.quantity} units of ${cmd.sku} would take it past ${MAX_MINOR_UNITS} units`);
    return toLevel(row);
  }

  async level(db: Pick<Tx, 'query'>, sku: string): Promise<StockLevel | undefined> {
    const [row] = await db.query<LevelRow>('select sku, available, reserved, sold from stock where sku = $1', [sku]);
    return row && toLevel(row);
  }

  /** Every attempt's reservation for an order, oldest first. */
  async reservations(db: Pick<Tx, 'query'>, orderId: string): Promise<ReservationView[]> {
    const rows = await db.query<ReservationRow>('select * from reservations where order_id = $1 order by created_at', [orderId]);
    return rows.map((r) => ({
      sagaId: r.saga_id,
      orderId: r.order_id,
      status: r.status,
      units: r.items.reduce((n, l) => n + l.quantity, 0),
      items: r.items,
      reason: r.reason,
      updatedAt: new Date(r.updated_at).toISOString(),
    }));
  }

  private async lockReservation(tx: Tx, sagaId: string): Promise<ReservationRow | undefined> {
    const [row] = await tx.query<ReservationRow>('select * from reservations where saga_id = $1 for update', [sagaId]);
    return row;
  }

  private setStatus(tx: Tx, sagaId: string, status: ReservationStatus) {
    return tx.query('update reservations set status = $2, updated_at = now() where saga_id = $1', [sagaId, status]);
  }

  /** Moves units per SKU from one column to another (`available`, `reserved`, `sold`). */
  private move(tx: Tx, units: Map<string, number>, from: 'available' | 'reserved', to: 'available' | 'reserved' | 'sold') {
    const skus = [...units.keys()].sort();
    return tx.query(
      `update stock s set ${from} = s.${from} - w.qty, ${to} = s.${to} + w.qty, updated_at = now()
         from unnest($1::text[], $2::bigint[]) as w(sku, qty) where s.sku = w.sku`,
      [skus, skus.map((s) => units.get(s))],
    );
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
