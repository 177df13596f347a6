import { BaseRpcContext } from '@nestjs/microservices';
import { InboundMessage } from '@orderflow/messaging';
import { Tx } from '@orderflow/persistence';

/**
 * What a JetStream handler gets with `@Ctx()`: the message as received (headers, attempt, stream position) and the
 * transaction its consumer's batch runs in — write state with `tx.query`; messages it causes are returned (see
 * `reply`), not sent by hand. Source: Nest docs, "Custom transporters" / "Context" (`BaseRpcContext`).
 */
export class JetStreamContext extends BaseRpcContext<[InboundMessage, Tx]> {
  constructor(message: InboundMessage, tx: Tx) {
    super([message, tx]);
  }

  /** The message: logical subject, body, ids, headers, attempt (1 on first delivery). */
  get message(): InboundMessage {
    return this.args[0];
  }

  /** The Postgres transaction of this message's batch (inbox claim, state changes and outbox commit together). */
  get tx(): Tx {
    return this.args[1];
  }

  /** 1 on first delivery. */
  get attempt(): number {
    return this.message.attempt;
  }

  /** The saga attempt the message belongs to (`Saga-Id` header), if any. */
  get sagaId(): string | undefined {
    return this.message.sagaId;
  }

  /** The order it concerns (`Correlation-Id` header), if any. */
  get orderId(): string | undefined {
    return this.message.correlationId;
  }
}
