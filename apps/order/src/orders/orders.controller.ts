import { MessagePattern, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import { OrderQuery, OrderView, Subjects } from '@orderflow/contracts';
import { NotFoundError } from '@orderflow/messaging';
import { traceIdOf } from '@orderflow/telemetry';
import { MessageController } from '@orderflow/transport';

/** Answers `query.order.get` with the order, its status and reason, and its newest saga attempt's step history. */
@MessageController()
export class OrdersController {
  constructor(private readonly ds: DataSource) {}

  /** @throws NotFoundError when no order has this id. */
  @MessagePattern(Subjects.QueryOrder)
  async find(@Payload() { orderId }: OrderQuery): Promise<OrderView> {
    const [row] = await this.ds.query(
      `select o.order_id, o.status, o.reason, s.id as saga_id, s.attempt, s.status as saga_status, s.history, s.trace_parent
         from orders o join sagas s on s.order_id = o.order_id where o.order_id = $1 order by s.attempt desc limit 1`,
      [orderId],
    );
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
        steps: row.history.map((h: any) => ({
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
