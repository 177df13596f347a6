import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsObject,
  IsOptional,
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
 * `order.created`: the public ingress contract (docs/architecture.md, "The flow"). `orderId` is the idempotency key:
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
/** `step_timeout`: cancelled by a step's deadline, before SAGA_DEADLINE replaced it (attempts made before then). */
export const CancelReasons = [
  ...StockRejectReasons,
  ...DeclineReasons,
  'order_not_pending',
  'deadline_exceeded',
  'step_timeout',
  'rejected',
] as const;
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

/**
 * What every operator command carries: why (recorded in `orders.operator_actions`). Who asks is not in the body: the
 * command is signed with the operator's nkey (`Orderflow-Signer` / `Orderflow-Signature` headers), and the order app
 * records the name `orderflow setup` registered for that key.
 */
export class OperatorCommand {
  @IsString()
  @IsNotEmpty()
  @MaxLength(2000)
  why!: string;
}

/** An operator command on one saga attempt. */
export class SagaCommand extends OperatorCommand {
  /** The saga attempt to act on. */
  @IsUUID()
  sagaId!: string;
}

/** `order.cmd.retry-saga`: start a new attempt, from the first step, of a CANCELLED saga (the order goes back to PENDING). */
export class RetrySaga extends SagaCommand {}

/** `order.cmd.resume-saga`: send again the step a FAILED saga gave up on, and carry on from there. */
export class ResumeSaga extends SagaCommand {}

/** Replays of one original message before a replay needs `force` (`Replay-Count`). */
export const MAX_REPLAYS = 3;

/**
 * `order.cmd.replay-dead-letter`: republish dead letter `dlqSeq` (whose original message must be `originalId`:
 * the id its consumer's inbox knows it by, which the replay names in `Replay-Of`; so a recreated DLQ stream cannot make
 * it another entry) to its original subject, its body changed by `patch` (an RFC 7386
 * JSON merge patch) when given. The order app refuses it when the entry was replayed before, has been replayed 3 times,
 * or its saga has ended — unless `force`.
 */
export class ReplayDeadLetter extends OperatorCommand {
  @IsInt()
  @Min(1)
  dlqSeq!: number;

  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  originalId!: string;

  @IsOptional()
  @IsBoolean()
  force?: boolean;

  /** An RFC 7386 JSON merge patch, an object: its fields replace the body's, a null field removes one. */
  @IsOptional()
  @IsObject()
  patch?: Record<string, unknown>;

  /** A whole new body, instead of the stored one (for a body no patch can fix); not with `patch`. */
  @IsOptional()
  @IsObject()
  body?: Record<string, unknown>;
}

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

/** `order.evt.dead-letter-replayed`: the answer to ReplayDeadLetter; `newMsgId` is the replay's `Nats-Msg-Id`. */
export class DeadLetterReplayed {
  @IsInt()
  @Min(1)
  dlqSeq!: number;

  @IsString()
  @IsNotEmpty()
  subject!: string;

  @IsUUID()
  newMsgId!: string;

  /** The name `orderflow setup` registered for the key that signed the command. */
  @IsString()
  @IsNotEmpty()
  operator!: string;
}

/**
 * Why the order app refused an operator command, for tools (`CommandRefused.code`): `unverified` (its signature or
 * key), `not_found` (no such saga or dead letter), `invalid` (a patch or body that cannot apply or fails validation, a
 * subject nothing consumes), `gone` (the original message is gone or was cut), `changed` (the dead letter is not the
 * one planned), `already_replayed` (an operator replayed it before, maybe at the same instant), `not_allowed` (the
 * state forbids it: the saga's status, an order that exists, too many replays; replays waive it with `force`),
 * `superseded` (the attempt has a newer one).
 */
export const RefusalCodes = [
  'unverified',
  'not_found',
  'invalid',
  'gone',
  'changed',
  'already_replayed',
  'not_allowed',
  'superseded',
] as const;
export type RefusalCode = (typeof RefusalCodes)[number];

/** `order.evt.command-refused`: an operator command that the order app would not carry out, and why. */
export class CommandRefused {
  /** The saga the command named (saga commands). */
  @IsOptional()
  @IsUUID()
  sagaId?: string;

  /** The dead letter the command named (replays). */
  @IsOptional()
  @IsInt()
  @Min(1)
  dlqSeq?: number;

  /** What tools switch on (`RefusalCodes`). */
  @IsIn(RefusalCodes)
  code!: RefusalCode;

  /** What people read. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(Limits.detail)
  reason!: string;
}
