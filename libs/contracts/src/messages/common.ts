import { IsInt, IsISO4217CurrencyCode, IsNotEmpty, IsString, IsUUID, Matches, Max, Min } from 'class-validator';

/** Largest amount in minor units we accept: keeps every sum exact in a JS number and a Postgres bigint. */
export const MAX_MINOR_UNITS = Number.MAX_SAFE_INTEGER;

export class OrderLine {
  @IsString() @IsNotEmpty()
  sku!: string;

  /** Units ordered, ≥ 1. */
  @IsInt() @Min(1) @Max(1_000_000)
  quantity!: number;

  /** Price of one unit in minor units of the order's currency (cents for USD), ≥ 0. */
  @IsInt() @Min(0) @Max(MAX_MINOR_UNITS)
  unitPrice!: number;
}

export class StockLine {
  @IsString() @IsNotEmpty()
  sku!: string;

  @IsInt() @Min(1)
  quantity!: number;
}

export class OrderScoped {
  @IsUUID()
  orderId!: string;
}

/** An ISO 4217 code, upper case as the standard writes it ("USD", not "usd"). */
export const currency = (): PropertyDecorator => (target, key) => {
  const message = `${String(key)} must be an upper-case ISO 4217 code such as USD`;
  Matches(/^[A-Z]{3}$/, { message })(target, key);
  IsISO4217CurrencyCode({ message })(target, key);
};
