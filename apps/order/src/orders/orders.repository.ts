import { Injectable } from '@nestjs/common';
import type { OrderLine, SagaStatus } from '@orderflow/contracts';
import type { Sql } from '@orderflow/persistence';

/** What `orders.orders` holds of an order (amounts in integer minor units of `currency`). */
export interface OrderRow {
  order_id: string;
  customer_id: string;
  currency: string;
  items: OrderLine[];
  total: number;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  reason: string | null;
}

/** An order with its newest saga attempt: what `query.order.get` answers from. */
export interface OrderWithSagaRow {
  order_id: string;
  status: OrderRow['status'];
  reason: string | null;
  saga_id: string;
  attempt: number;
  saga_status: SagaStatus;
  history: { name: string; status: string; startedAt: string; finishedAt: string | null; error: string | null }[];
  trace_parent: string | null;
}

/**
 * The order app's `orders` table: every statement about an order (the saga's rows are the saga store's). Stateless:
 * the PlaceOrder definition uses the module's instance, `orders`, as Nest's providers use theirs.
 */
@Injectable()
export class OrdersRepository {
  /** Records a PENDING order. @returns false when an order with that id exists already (nothing written). */
  async insertPending(
    tx: Sql,
    o: { orderId: string; customerId: string; currency: string; items: OrderLine[]; total: number },
  ): Promise<boolean> {
    const created = await tx.query<{ one: number }>(
      `insert into orders (order_id, customer_id, currency, items, total, status) values ($1, $2, $3, $4, $5, 'PENDING')
         on conflict (order_id) do nothing returning 1 as one`,
      [o.orderId, o.customerId, o.currency, JSON.stringify(o.items), o.total],
    );
    return created.length === 1;
  }

  async find(db: Sql, orderId: string): Promise<OrderRow | undefined> {
    const [row] = await db.query<OrderRow>(
      'select order_id, customer_id, currency, items, total, status, reason from orders where order_id = $1',
      [orderId],
    );
    return row;
  }

  /** PENDING → CONFIRMED (the saga's pivot). @returns false when the order was not PENDING. */
  async confirm(tx: Sql, orderId: string): Promise<boolean> {
    const rows = await tx.query<{ one: number }>(
      `update orders set status = 'CONFIRMED', updated_at = now() where order_id = $1 and status = 'PENDING' returning 1 as one`,
      [orderId],
    );
    return rows.length === 1;
  }

  async cancel(tx: Sql, orderId: string, reason: string): Promise<void> {
    await tx.query(`update orders set status = 'CANCELLED', reason = $2, updated_at = now() where order_id = $1`, [orderId, reason]);
  }

  /** Back to PENDING for a new saga attempt (an operator's retry). */
  async reopen(tx: Sql, orderId: string): Promise<void> {
    await tx.query(`update orders set status = 'PENDING', reason = null, updated_at = now() where order_id = $1`, [orderId]);
  }

  /** The order with its newest saga attempt, or undefined when there is no such order. */
  async withNewestSaga(db: Sql, orderId: string): Promise<OrderWithSagaRow | undefined> {
    const [row] = await db.query<OrderWithSagaRow>(
      `select o.order_id, o.status, o.reason, s.id as saga_id, s.attempt, s.status as saga_status, s.history, s.trace_parent
         from orders o join saga_instances s on s.business_key = o.order_id::text and s.type = 'PlaceOrder'
        where o.order_id = $1 order by s.attempt desc limit 1`,
      [orderId],
    );
    return row;
  }
}

/** The repository's instance for code outside Nest's DI (saga definitions are plain objects). */
export const orders = new OrdersRepository();
