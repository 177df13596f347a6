import { Type } from 'class-transformer';
import { ArrayMinSize, IsArray, IsIn, IsInt, IsNotEmpty, IsOptional, IsString, Max, Min, ValidateNested } from 'class-validator';
import { OrderScoped, StockLine } from './common';

/** `inventory.cmd.reserve`: reserve every line of the order, all or nothing. */
export class ReserveStock extends OrderScoped {
  @IsArray() @ArrayMinSize(1) @ValidateNested({ each: true }) @Type(() => StockLine)
  items!: StockLine[];
}

/** `inventory.cmd.release`: compensation of ReserveStock; idempotent, and a release that arrives first blocks a late reserve. */
export class ReleaseStock extends OrderScoped {}

/** `inventory.cmd.restock`: add `quantity` units to `sku` (creating the SKU if new). */
export class RestockSku {
  @IsString() @IsNotEmpty()
  sku!: string;

  @IsInt() @Min(1) @Max(1_000_000_000)
  quantity!: number;
}

export class StockReserved extends OrderScoped {}

export const StockRejectReasons = ['out_of_stock', 'unknown_sku', 'released'] as const;
export type StockRejectReason = (typeof StockRejectReasons)[number];

export class StockRejected extends OrderScoped {
  @IsIn(StockRejectReasons)
  reason!: StockRejectReason;

  /** Human-readable detail, e.g. which SKU. */
  @IsOptional() @IsString()
  detail?: string;
}

export class StockReleased extends OrderScoped {}

/** `inventory.evt.restocked` and the answer of `query.inventory.stock`. */
export class StockLevel {
  @IsString() @IsNotEmpty()
  sku!: string;

  @IsInt() @Min(0)
  available!: number;

  @IsInt() @Min(0)
  reserved!: number;
}

export class StockQuery {
  @IsString() @IsNotEmpty()
  sku!: string;
}
