import { CommitStock, isCanonicalUuid, isValidated, ReleaseStock, ReserveStock, RestockSku, Subjects } from '@orderflow/contracts';
import { Tx } from '@orderflow/persistence';
import { ReservationRow, StockRepository } from './stock.repository';

/** The inventory commands that read a reservation (and `InventoryReserve` also stock). */
const NAMING_A_RESERVATION = new Set<string>([Subjects.InventoryReserve, Subjects.InventoryRelease, Subjects.InventoryCommit]);

/**
 * The rows a transaction's stock commands read, locked (`FOR UPDATE`). In a consumer batch (`Tx.messages`) the first
 * command locks every reservation and every stock row the batch's commands name, in one round trip, instead of one
 * round trip per command; a batch of one reads as it goes.
 * - A reservation locked ahead is taken once: the command that takes it changes it, so a second command of the same
 *   attempt in the batch reads it again (and sees what the first did).
 * - A SKU's available units locked ahead stay exact: no other transaction can change a locked row, and this one's
 *   moves are applied here as they are queued (`moved`, `restocked`). A command naming a SKU not locked ahead reads
 *   its SKUs as it goes.
 * Locks are taken in one order, reservations then stock, each by key, as a single command takes them; the stock of
 * the batch's reservations (which its releases and commits move) is locked ahead with the rest.
 */
export class StockLocks {
  private constructor(
    private readonly repo: StockRepository,
    private readonly tx: Tx,
    /** Reservations locked ahead, by saga id (undefined: the attempt had none). */
    private readonly reservations: Map<string, ReservationRow | undefined>,
    /** Available units of the SKUs locked ahead (undefined: no such SKU). */
    private readonly available: Map<string, number | undefined>,
  ) {}

  /**
   * For a batch of more than one message, locks what its inventory commands name: the reservations of their attempts,
   * and the stock of the SKUs they reserve or restock and of those reservations. Only validated bodies (the consumer
   * validates each before its batch) are read ahead, and only saga ids as Postgres writes them (lower case), so a key
   * read ahead equals its row's.
   */
  static async lockAhead(repo: StockRepository, tx: Tx): Promise<StockLocks> {
    const sagaIds = new Set<string>();
    const skus = new Set<string>();
    if (tx.messages.length > 1) {
      for (const { subject, body } of tx.messages) {
        if (!isValidated(body)) continue;
        if (subject === Subjects.InventoryRestock) skus.add((body as RestockSku).sku);
        if (!NAMING_A_RESERVATION.has(subject)) continue;
        const { sagaId } = body as ReleaseStock | CommitStock;
        if (isCanonicalUuid(sagaId)) sagaIds.add(sagaId);
        if (subject === Subjects.InventoryReserve) for (const line of (body as ReserveStock).items) skus.add(line.sku);
      }
    }
    // The stock of the reservations too (their releases and commits move it): every stock row the batch changes is
    // locked here, in SKU order, so batches of two instances cannot deadlock.
    const [reserved, available] = await Promise.all([
      sagaIds.size > 0 ? repo.lockReservations(tx, [...sagaIds]) : [],
      skus.size + sagaIds.size > 0 ? repo.lockStockOf(tx, [...skus], [...sagaIds]) : new Map<string, number>(),
    ]);
    const bySaga = new Map(reserved.map((r) => [r.saga_id, r]));
    const levels = new Map<string, number | undefined>([...skus].map((sku) => [sku, undefined])); // undefined: no such SKU
    for (const [sku, n] of available) levels.set(sku, n);
    return new StockLocks(repo, tx, new Map([...sagaIds].map((id) => [id, bySaga.get(id)])), levels);
  }

  /** The attempt's reservation, locked; undefined when it has none. */
  async reservation(sagaId: string): Promise<ReservationRow | undefined> {
    if (!this.reservations.has(sagaId)) return this.repo.lockReservation(this.tx, sagaId);
    const row = this.reservations.get(sagaId);
    this.reservations.delete(sagaId);
    return row;
  }

  /** The available units of each of `skus` (sorted) that exists, locked. */
  async availableOf(skus: string[]): Promise<Map<string, number>> {
    if (!skus.every((s) => this.available.has(s))) return this.repo.lockAvailable(this.tx, skus);
    const out = new Map<string, number>();
    for (const sku of skus) {
      const n = this.available.get(sku);
      if (n !== undefined) out.set(sku, n);
    }
    return out;
  }

  /** This transaction moved `units` (by SKU) into available (`sign` 1) or out of it (−1). */
  moved(units: Map<string, number>, sign: 1 | -1): void {
    for (const [sku, quantity] of units) {
      const n = this.available.get(sku);
      if (n !== undefined) this.available.set(sku, n + sign * quantity);
    }
  }

  /** This transaction restocked `sku`: it now has `available` units (and exists, if it was new). */
  restocked(sku: string, available: number): void {
    if (this.available.has(sku)) this.available.set(sku, available);
  }
}
