import {
  IsInt,
  IsISO4217CurrencyCode,
  IsNotEmpty,
  IsOptional,
  IsString,
  IsUUID,
  isUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidationArguments,
  ValidationOptions,
  registerDecorator,
} from 'class-validator';

/** Largest amount in minor units (or units of stock) we accept: keeps every sum exact in a JS number and a Postgres bigint. */
export const MAX_MINOR_UNITS = Number.MAX_SAFE_INTEGER;

/**
 * Whether `value` is a uuid as Postgres returns one (lower case), so it equals the key of the row it names: for the
 * keys a batch reads ahead and matches to rows in memory (a key in another form is read as it comes).
 */
export const isCanonicalUuid = (value: unknown): value is string =>
  typeof value === 'string' && isUUID(value) && value === value.toLowerCase();

/**
 * Bounds of every field: ids and names short enough for a btree index, free text bounded, at most
 * 100 order lines. The outer limit is the NATS server's max payload (1 MiB by default).
 */
export const Limits = {
  sku: 64,
  customerId: 128,
  detail: 1024,
  orderLines: 100,
  quantity: 1_000_000,
} as const;

/** A SKU: 1–64 characters. */
export const sku = (): PropertyDecorator => (target, key) => {
  IsString()(target, key);
  IsNotEmpty()(target, key);
  MaxLength(Limits.sku)(target, key);
};

/** A customer id: 1–128 characters. */
export const customerId = (): PropertyDecorator => (target, key) => {
  IsString()(target, key);
  IsNotEmpty()(target, key);
  MaxLength(Limits.customerId)(target, key);
};

/** Human-readable detail of a rejection, at most 1024 characters. */
export const detail = (): PropertyDecorator => (target, key) => {
  IsOptional()(target, key);
  IsString()(target, key);
  MaxLength(Limits.detail)(target, key);
};

export class OrderLine {
  @sku()
  sku!: string;

  /** Units ordered, 1 to 1,000,000. */
  @IsInt()
  @Min(1)
  @Max(Limits.quantity)
  quantity!: number;

  /** Price of one unit in minor units of the order's currency (cents for USD), ≥ 0. */
  @IsInt()
  @Min(0)
  @Max(MAX_MINOR_UNITS)
  unitPrice!: number;
}

export class StockLine {
  @sku()
  sku!: string;

  @IsInt()
  @Min(1)
  @Max(Limits.quantity)
  quantity!: number;
}

export class OrderScoped {
  @IsUUID()
  orderId!: string;
}

/**
 * A message about one saga attempt. Participants key their effects on `sagaId` (docs/architecture.md, "Guarantees": a redelivery of
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
/**
 * What a reservation holds, however its lines are split or ordered: units per SKU, sorted by SKU (`BOOK×2 PEN×1`).
 * The saga compares a reservation reply with its order, inventory a repeated reserve with its record.
 */
export const unitsBySku = (lines: Pick<StockLine, 'sku' | 'quantity'>[]): string => {
  const units = new Map<string, number>();
  for (const l of lines) units.set(l.sku, (units.get(l.sku) ?? 0) + l.quantity);
  return [...units]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sku, n]) => `${sku}×${n}`)
    .join(' ');
};

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
          !Array.isArray(lines) ||
          !lines.every((l) => Number.isInteger(l?.quantity) && Number.isInteger(l?.unitPrice)) ||
          orderTotal(lines) <= BigInt(MAX_MINOR_UNITS),
        defaultMessage: (args: ValidationArguments) =>
          `${args.property} total (Σ quantity × unitPrice) must not exceed ${MAX_MINOR_UNITS} minor units`,
      },
    });
}
