import { MessagePattern, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import { readSql, Sql } from '@orderflow/persistence';
import { OrderQuery, OrderView, Subjects } from '@orderflow/contracts';
import { NotFoundError } from '@orderflow/messaging';
import { traceIdOf } from '@orderflow/telemetry';
import { MessageController } from '@orderflow/transport';
import { OrdersRepository } from './orders.repository';

/** Answers `query.order.get` with the order, its status and reason, and its newest saga attempt's step history. */
@MessageController()
export class OrdersController {
  private readonly read: Sql;

  constructor(
    ds: DataSource,
    private readonly orders: OrdersRepository,
  ) {
    this.read = readSql(ds);
  }

  /** @throws NotFoundError when no order has this id. */
  @MessagePattern(Subjects.QueryOrder)
  async find(@Payload() { orderId }: OrderQuery): Promise<OrderView> {
    const row = await this.orders.withNewestSaga(this.read, orderId);
    if (!row) throw new NotFoundError(`no order ${orderId}`);
    return {
      orderId: row.order_id,
      status: row.status,
      reason: row.reason,
      saga: {
        id: row.saga_id,
        attempt: row.attempt,
        status: row.saga_status,
        traceId: traceIdOf(row.trace_parent ?? undefined) ?? null,
        steps: row.history.map((h) => ({
          name: h.name,
          status: h.status,
          startedAt: h.startedAt,
          finishedAt: h.finishedAt,
          error: h.error,
        })),
      },
    };
  }
}
