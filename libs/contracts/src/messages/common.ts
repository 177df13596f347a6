import { IsInt, IsISO4217CurrencyCode, IsNotEmpty, IsString, IsUUID, Matches, Max, Min, ValidationArguments, ValidationOptions, registerDecorator } from 'class-validator';

/** Largest amount in minor units (or units of stock) we accept: keeps every sum exact in a JS number and a Postgres bigint. */
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

/**
 * A message about one saga attempt. Participants key their effects on `sagaId` (DESIGN.md: a redelivery of
 * the same attempt changes nothing, a new attempt is a new reservation or charge).
 */
export class SagaScoped extends OrderScoped {
  @IsUUID()
  sagaId!: string;
}

/** An ISO 4217 code, upper case as the standard writes it ("USD", not "usd"). */
export const currency = (): PropertyDecorator => (target, key) => {
  const message = `${String(key)} must be an upper-case ISO 4217 code such as USD`;
  Matches(/^[A-Z]{3}$/, { message })(target, key);
  IsISO4217CurrencyCode({ message })(target, key);
};

/** Σ quantity × unitPrice of `lines`, exact (bigint). */
export const orderTotal = (lines: Pick<OrderLine, 'quantity' | 'unitPrice'>[]): bigint =>
  lines.reduce((sum, l) => sum + BigInt(l.quantity) * BigInt(l.unitPrice), 0n);

/** The lines' total (Σ quantity × unitPrice) must not exceed MAX_MINOR_UNITS, so it stays exact everywhere. */
export function TotalFitsInMinorUnits(options?: ValidationOptions): PropertyDecorator {
  return (target, key) =>
    registerDecorator({
      name: 'totalFitsInMinorUnits',
      target: target.constructor,
      propertyName: String(key),
      options,
      validator: {
        validate: (lines: unknown) =>
          !Array.isArray(lines) || !lines.every((l) => Number.isInteger(l?.quantity) && Number.isInteger(l?.unitPrice)) || orderTotal(lines) <= BigInt(MAX_MINOR_UNITS),
        defaultMessage: (args: ValidationArguments) => `${args.property} total (Σ quantity × unitPrice) must not exceed ${MAX_MINOR_UNITS} minor units`,
      },
    });
}
