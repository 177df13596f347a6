import { IsIn, IsInt, Max, Min } from 'class-validator';
import { currency, customerId, detail, MAX_MINOR_UNITS, OrderScoped, SagaScoped } from './common';

/** `payment.cmd.charge`: take `amount` minor units of `currency` from the customer's balance, once per saga attempt. */
export class ChargePayment extends SagaScoped {
  @customerId()
  customerId!: string;

  @IsInt()
  @Min(0)
  @Max(MAX_MINOR_UNITS)
  amount!: number;

  @currency()
  currency!: string;
}

/** `payment.cmd.refund`: compensation of ChargePayment; idempotent, and a refund that arrives first blocks a late charge of the same attempt. */
export class RefundPayment extends SagaScoped {
  @customerId()
  customerId!: string;
}

/** `payment.cmd.deposit`: add funds to an account (created on first deposit). */
export class DepositFunds {
  @customerId()
  customerId!: string;

  @IsInt()
  @Min(1)
  @Max(MAX_MINOR_UNITS)
  amount!: number;

  @currency()
  currency!: string;
}

export class PaymentCharged extends OrderScoped {
  @IsInt()
  @Min(0)
  amount!: number;

  @currency()
  currency!: string;
}

/** `already_charged`: another attempt of the same order holds a charge that is not refunded (at most one per order). */
export const DeclineReasons = ['insufficient_funds', 'unknown_customer', 'currency_mismatch', 'refunded', 'already_charged'] as const;
export type DeclineReason = (typeof DeclineReasons)[number];

export class PaymentDeclined extends OrderScoped {
  @IsIn(DeclineReasons)
  reason!: DeclineReason;

  @detail()
  detail?: string;
}

export class PaymentRefunded extends OrderScoped {
  /** Minor units returned; 0 when there was no charge to refund. */
  @IsInt()
  @Min(0)
  amount!: number;
}

/** `payment.evt.deposited` and the answer of `query.payment.account`. */
export class AccountBalance {
  @customerId()
  customerId!: string;

  /** Minor units of `currency`. */
  @IsInt()
  balance!: number;

  @currency()
  currency!: string;
}

export class AccountQuery {
  @customerId()
  customerId!: string;
}

/** `query.payment.charges`: what payment recorded for each saga attempt of an order. */
export class ChargesQuery extends OrderScoped {}

/** One element of the answer of `query.payment.charges`; amounts in minor units of `currency`. */
export interface ChargeView {
  sagaId: string;
  orderId: string;
  customerId: string;
  currency: string;
  charged: number;
  refunded: number;
  /** Set when the charge was declined. */
  declined: string | null;
}
