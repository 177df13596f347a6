import { Injectable } from '@nestjs/common';
import { ReleaseStock, ReserveStock, RestockSku, StockLevel, StockLine, StockRejectReason } from '@orderflow/contracts';
import { Tx } from '@orderflow/persistence';

export type ReserveOutcome = { reserved: true } | { reserved: false; reason: StockRejectReason; detail?: string };

type ReservationStatus = 'RESERVED' | 'REJECTED' | 'RELEASED';

/** Stock per SKU and reservations per order. Every method runs inside the caller's transaction. */
@Injectable()
export class StockService {
  /**
   * Reserves all lines of an order or none. A repeated reserve for the same order returns the first outcome;
   * a reserve after a release of the same order is rejected with `released` (the release was a countermeasure
   * against a late reserve).
   */
  async reserve(tx: Tx, cmd: ReserveStock): Promise<ReserveOutcome> {
    const [existing] = await tx.query<{ status: ReservationStatus; reason: StockRejectReason | null }>(
      'select status, reason from reservations where order_id = $1 for update',
      [cmd.orderId],
    );
    if (existing) return outcomeOf(existing.status, existing.reason);

    const wanted = sumBySku(cmd.items);
    const skus = [...wanted.keys()].sort();
    // Lock in SKU order so concurrent reservations cannot deadlock.
    const rows = await tx.query<{ sku: string; available: string }>(
      'select sku, available from stock where sku = any($1) order by sku for update',
      [skus],
    );
    const available = new Map(rows.map((r) => [r.sku, Number(r.available)]));
    const unknown = skus.filter((s) => !available.has(s));
    const short = skus.filter((s) => available.has(s) && available.get(s)! < wanted.get(s)!);
    const outcome: ReserveOutcome =
      unknown.length > 0 ? { reserved: false, reason: 'unknown_sku', detail: `unknown SKU ${unknown.join(', ')}` }
      : short.length > 0 ? { reserved: false, reason: 'out_of_stock', detail: short.map((s) => `${s}: wanted ${wanted.get(s)}, available ${available.get(s)}`).join('; ') }
      : { reserved: true };

    if (outcome.reserved) {
      await tx.query(
        `update stock s set available = s.available - w.qty, reserved = s.reserved + w.qty, updated_at = now()
           from unnest($1::text[], $2::bigint[]) as w(sku, qty) where s.sku = w.sku`,
        [skus, skus.map((s) => wanted.get(s))],
      );
    }
    await tx.query('insert into reservations (order_id, status, items, reason) values ($1, $2, $3, $4)', [
      cmd.orderId,
      outcome.reserved ? 'RESERVED' : 'REJECTED',
      JSON.stringify(cmd.items),
      outcome.reserved ? null : outcome.reason,
    ]);
    return outcome;
  }

  /** Returns a reservation's units to `available`. Idempotent; a release with no reservation records one as RELEASED. */
  async release(tx: Tx, cmd: ReleaseStock): Promise<void> {
    const [existing] = await tx.query<{ status: ReservationStatus; items: StockLine[] }>(
      'select status, items from reservations where order_id = $1 for update',
      [cmd.orderId],
    );
    if (!existing) {
      await tx.query(`insert into reservations (order_id, status, items) values ($1, 'RELEASED', '[]') on conflict do nothing`, [cmd.orderId]);
      return;
    }
    if (existing.status !== 'RESERVED') return;
    const wanted = sumBySku(existing.items);
    const skus = [...wanted.keys()].sort();
    await tx.query(
      `update stock s set available = s.available + w.qty, reserved = s.reserved - w.qty, updated_at = now()
         from unnest($1::text[], $2::bigint[]) as w(sku, qty) where s.sku = w.sku`,
      [skus, skus.map((s) => wanted.get(s))],
    );
    await tx.query(`update reservations set status = 'RELEASED', updated_at = now() where order_id = $1`, [cmd.orderId]);
  }

  /** Adds units to a SKU, creating it if new. */
  async restock(tx: Tx, cmd: RestockSku): Promise<StockLevel> {
    const [row] = await tx.query<{ sku: string; available: string; reserved: string }>(
      `insert into stock (sku, available, reserved) values ($1, $2, 0)
         on conflict (sku) do update set available = stock.available + excluded.available, updated_at = now()
         returning sku, available, reserved`,
      [cmd.sku, cmd.quantity],
    );
    return toLevel(row);
  }

  async level(tx: Pick<Tx, 'query'>, sku: string): Promise<StockLevel | undefined> {
    const [row] = await tx.query('select sku, available, reserved from stock where sku = $1', [sku]);
    return row && toLevel(row);
  }
}

function outcomeOf(status: ReservationStatus, reason: StockRejectReason | null): ReserveOutcome {
  if (status === 'RESERVED') return { reserved: true };
  if (status === 'RELEASED') return { reserved: false, reason: 'released', detail: 'the order was released before it was reserved' };
  return { reserved: false, reason: reason ?? 'out_of_stock' };
}

function sumBySku(lines: StockLine[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) m.set(l.sku, (m.get(l.sku) ?? 0) + l.quantity);
  return m;
}

const toLevel = (r: { sku: string; available: string; reserved: string }): StockLevel => ({
  sku: r.sku,
  available: Number(r.available),
  reserved: Number(r.reserved),
});
