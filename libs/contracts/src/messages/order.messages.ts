import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsString,
  IsUUID,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { currency, customerId, detail, Limits, OrderLine, OrderScoped, SagaScoped, TotalFitsInMinorUnits } from './common';
import { StockRejectReasons } from './inventory.messages';
import { DeclineReasons } from './payment.messages';

/**
 * `order.created`: the public ingress contract (DESIGN.md). `orderId` is the idempotency key:
 * the same order published twice runs one saga; the same id with a different body is dead-lettered
 * (`idempotency_key_reused`).
 * Shape: `{"orderId": uuid, "customerId": string, "currency": "USD", "items": [{"sku", "quantity" ≥1, "unitPrice" ≥0 minor units}]}`;
 * the total (Σ quantity × unitPrice) must not exceed 2^53 − 1 minor units.
 */
export class OrderCreated extends OrderScoped {
  @customerId()
  customerId!: string;

  @currency()
  currency!: string;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(Limits.orderLines)
  @ValidateNested({ each: true })
  @Type(() => OrderLine)
  @TotalFitsInMinorUnits()
  items!: OrderLine[];
}

/** `order.confirmed`: the saga attempt `sagaId` completed; `total` is in minor units of `currency`. */
export class OrderConfirmed extends SagaScoped {
  @customerId()
  customerId!: string;

  @IsInt()
  @Min(0)
  total!: number;

  @currency()
  currency!: string;
}

/** Why an order was cancelled: a participant's rejection reason, or a saga-level one. */
export const CancelReasons = [...StockRejectReasons, ...DeclineReasons, 'order_not_pending', 'step_timeout', 'rejected'] as const;
export type CancelReason = (typeof CancelReasons)[number];

/** `order.cancelled`: compensations of attempt `sagaId` ran (in reverse) before this was published. */
export class OrderCancelled extends SagaScoped {
  @customerId()
  customerId!: string;

  @IsString()
  @IsIn(CancelReasons)
  reason!: CancelReason;

  @detail()
  detail?: string;
}

/** What every operator command carries: who asks and why (recorded in `orders.operator_actions`). */
export class OperatorCommand {
  /** The saga attempt to act on. */
  @IsUUID()
  sagaId!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  operator!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(2000)
  why!: string;
}

/** `order.cmd.retry-saga`: start a new attempt, from the first step, of a CANCELLED saga (the order goes back to PENDING). */
export class RetrySaga extends OperatorCommand {}

/** `order.cmd.resume-saga`: send again the step a FAILED saga gave up on, and carry on from there. */
export class ResumeSaga extends OperatorCommand {}

/** `order.evt.saga-retried`: the answer to RetrySaga. */
export class SagaRetried extends SagaScoped {
  @IsUUID()
  newSagaId!: string;

  @IsInt()
  @Min(1)
  attempt!: number;
}

/** `order.evt.saga-resumed`: the answer to ResumeSaga; `step` is what was sent again. */
export class SagaResumed extends SagaScoped {
  @IsString()
  @IsNotEmpty()
  step!: string;
}

/** `order.evt.command-refused`: an operator command that the order app would not carry out, and why. */
export class CommandRefused {
  @IsUUID()
  sagaId!: string;

  @IsString()
  @IsNotEmpty()
  @MaxLength(Limits.detail)
  reason!: string;
}
