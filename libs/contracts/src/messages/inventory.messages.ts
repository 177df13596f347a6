import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsInt, Max, Min, ValidateNested } from 'class-validator';
import { detail, Limits, OrderScoped, SagaScoped, sku, StockLine } from './common';

/** The lines of a reservation: 1–100 `StockLine`s, each validated. */
const stockLines = (): PropertyDecorator => (target, key) => {
  IsArray()(target, key);
  ArrayMinSize(1)(target, key);
  ArrayMaxSize(Limits.orderLines)(target, key);
  ValidateNested({ each: true })(target, key);
  Type(() => StockLine)(target, key);
};

/** `inventory.cmd.reserve`: reserve every line of the order for this saga attempt, all or nothing. */
export class ReserveStock extends SagaScoped {
  @stockLines()
  items!: StockLine[];
}

/** `inventory.cmd.release`: compensation of ReserveStock; idempotent, and a release that arrives first blocks a late reserve of the same attempt. */
export class ReleaseStock extends SagaScoped {}

/** `inventory.cmd.commit`: the attempt's reserved units become sold (after the pivot: retriable, never compensated). */
export class CommitStock extends SagaScoped {}

/** `inventory.cmd.restock`: add `quantity` units to `sku` (creating the SKU if new). */
export class RestockSku {
  @sku()
  sku!: string;

  @IsInt()
  @Min(1)
  @Max(1_000_000_000)
  quantity!: number;
}

/** `inventory.evt.reserved`: the attempt's reservation holds these lines (the saga checks them against its own). */
export class StockReserved extends OrderScoped {
  @stockLines()
  items!: StockLine[];
}

export const StockRejectReasons = ['out_of_stock', 'unknown_sku', 'released'] as const;
export type StockRejectReason = (typeof StockRejectReasons)[number];

export class StockRejected extends OrderScoped {
  @IsIn(StockRejectReasons)
  reason!: StockRejectReason;

  /** Human-readable detail, e.g. which SKU. */
  @detail()
  detail?: string;
}

export class StockReleased extends OrderScoped {}

export class StockCommitted extends OrderScoped {}

/**
 * `inventory.evt.restocked` and the answer of `query.inventory.stock`. Units; per SKU
 * `available + reserved + sold` is everything ever restocked.
 */
export class StockLevel {
  @sku()
  sku!: string;

  @IsInt()
  @Min(0)
  available!: number;

  @IsInt()
  @Min(0)
  reserved!: number;

  @IsInt()
  @Min(0)
  sold!: number;
}

export class StockQuery {
  @sku()
  sku!: string;
}

/** `query.inventory.reservations`: every saga attempt's reservation for an order. */
export class ReservationsQuery extends OrderScoped {}

export type ReservationStatus = 'RESERVED' | 'REJECTED' | 'RELEASED' | 'COMMITTED';

/** One element of the answer of `query.inventory.reservations`. `units` is the sum of the lines' quantities. */
export interface ReservationView {
  sagaId: string;
  orderId: string;
  status: ReservationStatus;
  units: number;
  items: StockLine[];
  reason: string | null;
  updatedAt: string;
}
