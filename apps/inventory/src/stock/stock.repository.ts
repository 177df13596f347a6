import { Injectable } from '@nestjs/common';
import { ReservationStatus, StockLine, StockRejectReason } from '@orderflow/contracts';
import { Sql, TxSql } from '@orderflow/persistence';

/** A row of `inventory.reservations`: one per saga attempt. */
export interface ReservationRow {
  saga_id: string;
  order_id: string;
  status: ReservationStatus;
  items: StockLine[];
  reason: StockRejectReason | null;
  updated_at: Date;
}

/** A SKU's units: `available + reserved + sold` is everything ever restocked. */
export interface LevelRow {
  sku: string;
  available: number;
  reserved: number;
  sold: number;
}

/**
 * The moves of units between a SKU's columns, by from and to: the SKUs and their units as two array parameters ($1,
 * $2), for a data-modifying `WITH` (it runs whether or not the statement reads it).
 */
const move = (from: string, to: string) =>
  `update stock s set ${from} = s.${from} - w.qty, ${to} = s.${to} + w.qty, updated_at = now()
     from unnest($1::text[], $2::bigint[]) as w(sku, qty) where s.sku = w.sku`;
const MOVE = {
  available: { reserved: move('available', 'reserved') },
  reserved: { available: move('reserved', 'available'), sold: move('reserved', 'sold') },
};

/** `units` as the two array parameters of a move: the SKUs (sorted) and their units. */
function columnsOf(units: Map<string, number>): [string[], number[]] {
  const skus = [...units.keys()].sort();
  return [skus, skus.map((s) => units.get(s)!)];
}

/**
 * The inventory's tables, `stock` and `reservations`, and nothing else: every statement the inventory app runs. Each
 * method runs on what it is given — the caller's transaction (`Tx`), or the data source for a read.
 */
@Injectable()
export class StockRepository {
  /** The attempt's reservation, locked (`FOR UPDATE`) until the transaction ends; undefined when it has none. */
  async lockReservation(tx: Sql, sagaId: string): Promise<ReservationRow | undefined> {
    const [row] = await tx.query<ReservationRow>('select * from reservations where saga_id = $1 for update', [sagaId]);
    return row;
  }

  /**
   * The reservations of `sagaIds` (uuids) that exist, locked in saga id order. Planned each time (`planEach`): a
   * generic plan made while the table was small would scan it whole however it grows.
   */
  lockReservations(tx: Sql, sagaIds: string[]): Promise<ReservationRow[]> {
    return tx.query<ReservationRow>('select * from reservations where saga_id = any($1::uuid[]) order by saga_id for update', [sagaIds], {
      planEach: true,
    });
  }

  /** The available units of each of `skus` that exists, locked in SKU order (so concurrent reservations cannot deadlock). */
  async lockAvailable(tx: Sql, skus: string[]): Promise<Map<string, number>> {
    const sorted = [...skus].sort();
    const rows = await tx.query<{ sku: string; available: number }>(
      'select sku, available from stock where sku = any($1) order by sku for update',
      [sorted],
    );
    return new Map(rows.map((r) => [r.sku, r.available]));
  }

  /**
   * `lockAvailable` for a batch: the stock of `skus` and of every SKU the reservations of `sagaIds` (uuids) hold, in
   * one statement and in SKU order. A release or commit moves the units of its reservation's SKUs; locked here, with
   * the batch's reservations, they are not locked later in another order, so two instances' batches cannot deadlock
   * (each would wait `deadlock_timeout`, 1 s by default, before Postgres broke the cycle). Planned each time
   * (`planEach`), as `lockReservations`.
   */
  async lockStockOf(tx: Sql, skus: string[], sagaIds: string[]): Promise<Map<string, number>> {
    const rows = await tx.query<{ sku: string; available: number }>(
      `select sku, available from stock
        where sku = any($1::text[])
           or sku in (select jsonb_array_elements(items) ->> 'sku' from reservations where saga_id = any($2::uuid[]))
        order by sku for update`,
      [skus, sagaIds],
      { planEach: true },
    );
    return new Map(rows.map((r) => [r.sku, r.available]));
  }

  /**
   * Records the attempt's reservation (RESERVED or REJECTED with its reason) and, for a RESERVED one, moves its
   * `units` (by SKU) from available to reserved: one statement (a data-modifying `WITH`), pipelined (`TxSql.execute`). Fails with
   * 23514 (check_violation) when a SKU has fewer units available.
   */
  insertReservation(
    tx: TxSql,
    r: { sagaId: string; orderId: string; status: 'RESERVED' | 'REJECTED'; items: StockLine[]; reason: StockRejectReason | null },
    units: Map<string, number>,
  ): void {
    const [skus, quantities] = columnsOf(r.status === 'RESERVED' ? units : new Map());
    tx.execute(
      `with moved as (${MOVE.available.reserved})
       insert into reservations (saga_id, order_id, status, items, reason) values ($3, $4, $5, $6, $7)`,
      [skus, quantities, r.sagaId, r.orderId, r.status, JSON.stringify(r.items), r.reason],
    );
  }

  /**
   * Records a release that came before any reservation of the attempt (it blocks a late reserve); no-op if one exists.
   * Pipelined, as every write here whose result is not needed (`TxSql.execute`).
   */
  insertReleased(tx: TxSql, sagaId: string, orderId: string): void {
    tx.execute(`insert into reservations (saga_id, order_id, status, items) values ($1, $2, 'RELEASED', '[]') on conflict do nothing`, [
      sagaId,
      orderId,
    ]);
  }

  /**
   * Ends the attempt's reservation: RELEASED moves its `units` from reserved back to available, COMMITTED from
   * reserved to sold; the move and the status change are one statement, pipelined (`TxSql.execute`).
   */
  settle(tx: TxSql, sagaId: string, status: 'RELEASED' | 'COMMITTED', units: Map<string, number>): void {
    const [skus, quantities] = columnsOf(units);
    tx.execute(
      `with moved as (${status === 'RELEASED' ? MOVE.reserved.available : MOVE.reserved.sold})
       update reservations set status = $4, updated_at = now() where saga_id = $3`,
      [skus, quantities, sagaId, status],
    );
  }

  /**
   * Adds `quantity` units to `sku`, creating it if new, unless its restocked total would pass `max`.
   * @returns the new level, or undefined when refused for `max`.
   */
  async restock(tx: Sql, sku: string, quantity: number, max: number): Promise<LevelRow | undefined> {
    const [row] = await tx.query<LevelRow>(
      `insert into stock (sku, available, reserved, sold, restocked) values ($1, $2, 0, 0, $2)
         on conflict (sku) do update set available = stock.available + excluded.available, restocked = stock.restocked + excluded.restocked, updated_at = now()
           where stock.restocked + excluded.restocked <= $3
         returning sku, available, reserved, sold`,
      [sku, quantity, max],
    );
    return row;
  }

  async level(db: Sql, sku: string): Promise<LevelRow | undefined> {
    const [row] = await db.query<LevelRow>('select sku, available, reserved, sold from stock where sku = $1', [sku]);
    return row;
  }

  /** Every attempt's reservation of an order, oldest first. */
  reservationsOf(db: Sql, orderId: string): Promise<ReservationRow[]> {
    return db.query<ReservationRow>('select * from reservations where order_id = $1 order by created_at', [orderId]);
  }
}
