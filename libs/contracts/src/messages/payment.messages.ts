import { IsIn, IsInt, IsNotEmpty, IsOptional, IsString, Max, Min } from 'class-validator';
import { currency, MAX_MINOR_UNITS, OrderScoped } from './common';

/** `payment.cmd.charge`: take `amount` minor units of `currency` from the customer's balance. */
export class ChargePayment extends OrderScoped {
  @IsString() @IsNotEmpty()
  customerId!: string;

  @IsInt() @Min(0) @Max(MAX_MINOR_UNITS)
  amount!: number;

  @currency()
  currency!: string;
}

/** `payment.cmd.refund`: compensation of ChargePayment; idempotent, and a refund that arrives first blocks a late charge. */
export class RefundPayment extends OrderScoped {
  @IsString() @IsNotEmpty()
  customerId!: string;
}

/** `payment.cmd.deposit`: add funds to an account (created on first deposit). */
export class DepositFunds {
  @IsString() @IsNotEmpty()
  customerId!: string;

  @IsInt() @Min(1) @Max(MAX_MINOR_UNITS)
  amount!: number;

  @currency()
  currency!: string;
}

export class PaymentCharged extends OrderScoped {
  @IsInt() @Min(0)
  amount!: number;

  @currency()
  currency!: string;
}

export const DeclineReasons = ['insufficient_funds', 'unknown_customer', 'currency_mismatch', 'refunded'] as const;
export type DeclineReason = (typeof DeclineReasons)[number];

export class PaymentDeclined extends OrderScoped {
  @IsIn(DeclineReasons)
  reason!: DeclineReason;

  @IsOptional() @IsString()
  detail?: string;
}

export class PaymentRefunded extends OrderScoped {
  /** Minor units returned; 0 when there was no charge to refund. */
  @IsInt() @Min(0)
  amount!: number;
}

/** `payment.evt.deposited` and the answer of `query.payment.account`. */
export class AccountBalance {
  @IsString() @IsNotEmpty()
  customerId!: string;

  /** Minor units of `currency`. */
  @IsInt()
  balance!: number;

  @currency()
  currency!: string;
}

export class AccountQuery {
  @IsString() @IsNotEmpty()
  customerId!: string;
}
