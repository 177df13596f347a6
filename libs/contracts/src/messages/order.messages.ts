import { Type } from 'class-transformer';
import { ArrayMinSize, IsArray, IsIn, IsInt, IsNotEmpty, IsOptional, IsString, Min, ValidateNested } from 'class-validator';
import { currency, OrderLine, OrderScoped } from './common';
import { StockRejectReasons } from './inventory.messages';
import { DeclineReasons } from './payment.messages';

/**
 * `order.created`: the public ingress contract (DESIGN.md). `orderId` is the idempotency key:
 * the same order published twice runs one saga.
 * Shape: `{"orderId": uuid, "customerId": string, "currency": "USD", "items": [{"sku", "quantity" ≥1, "unitPrice" ≥0 minor units}]}`.
 */
export class OrderCreated extends OrderScoped {
  @IsString() @IsNotEmpty()
  customerId!: string;

  @currency()
  currency!: string;

  @IsArray() @ArrayMinSize(1) @ValidateNested({ each: true }) @Type(() => OrderLine)
  items!: OrderLine[];
}

/** `order.confirmed`: the saga completed; `total` is in minor units of `currency`. */
export class OrderConfirmed extends OrderScoped {
  @IsString() @IsNotEmpty()
  customerId!: string;

  @IsInt() @Min(0)
  total!: number;

  @currency()
  currency!: string;
}

/** Why an order was cancelled: a participant's rejection reason, or a saga-level one. */
export const CancelReasons = [...StockRejectReasons, ...DeclineReasons, 'order_not_pending', 'step_timeout', 'rejected'] as const;
export type CancelReason = (typeof CancelReasons)[number];

/** `order.cancelled`: compensations ran (in reverse) before this was published. */
export class OrderCancelled extends OrderScoped {
  @IsString() @IsNotEmpty()
  customerId!: string;

  @IsString() @IsIn(CancelReasons)
  reason!: CancelReason;

  @IsOptional() @IsString()
  detail?: string;
}
