import type { Pool } from 'pg';

/**
 * The money and stock invariants, as SQL over every schema (run as the admin role); each query lists what
 * breaks one: per SKU `available + reserved + sold` = restocked and none negative; per account balance +
 * charged − refunded = deposited; at most one un-refunded charge per order.
 */
export async function conservationViolations(db: Pool): Promise<unknown[]> {
  const q = async (sql: string) => (await db.query(sql)).rows;
  return [
    ...(await q(
      `select 'stock' as broken, sku from inventory.stock where available + reserved + sold <> restocked or least(available, reserved, sold) < 0`,
    )),
    ...(await q(`select 'money' as broken, a.customer_id from payments.accounts a left join payments.ledger l on l.customer_id = a.customer_id
                 group by a.customer_id, a.balance
                 having a.balance + coalesce(sum(l.amount) filter (where l.kind = 'CHARGE'), 0) - coalesce(sum(l.amount) filter (where l.kind = 'REFUND'), 0)
                        <> coalesce(sum(l.amount) filter (where l.kind = 'DEPOSIT'), 0)`)),
    ...(await q(`select 'charges' as broken, c.order_id from payments.ledger c
                 where c.kind = 'CHARGE' and not exists (select 1 from payments.ledger r where r.kind = 'REFUND' and r.saga_id = c.saga_id and r.amount > 0)
                 group by c.order_id having count(*) > 1`)),
  ];
}

/**
 * The pipeline's end-state invariants for a set of accepted orders, beyond conservation: every order has one
 * saga that ended (COMPLETED or CANCELLED, its order CONFIRMED or CANCELLED); one notification per outcome of
 * each attempt and none for an attempt without one; a confirmed order holds exactly one un-refunded charge
 * and sold units, a cancelled one none; every outbox drained. Returns one line per broken invariant.
 */
export async function pipelineViolations(db: Pool, orderIds: string[]): Promise<string[]> {
  const out: string[] = [];
  const count = async (sql: string, params: unknown[] = []) => Number((await db.query(sql, params)).rows[0].n);
  const missing = await count(
    `select count(*) as n from unnest($1::uuid[]) o(id) where not exists (select 1 from orders.orders where order_id = o.id)`,
    [orderIds],
  );
  if (missing) out.push(`${missing} accepted order(s) have no order row`);
  const open = await db.query(
    `select status, count(*)::int as n from orders.orders where order_id = any($1::uuid[]) and status not in ('CONFIRMED', 'CANCELLED') group by status`,
    [orderIds],
  );
  for (const r of open.rows) out.push(`${r.n} order(s) ${r.status}`);
  const sagas = await db.query(
    `select status, count(*)::int as n from orders.saga_instances where status not in ('COMPLETED', 'CANCELLED') group by status`,
  );
  for (const r of sagas.rows) out.push(`${r.n} saga(s) ${r.status}`);
  const mismatched =
    await count(`select count(*) as n from orders.orders o join lateral (select status from orders.saga_instances s where s.business_key = o.order_id::text order by attempt desc limit 1) s on true
    where (o.status = 'CONFIRMED') <> (s.status = 'COMPLETED')`);
  if (mismatched) out.push(`${mismatched} order(s) whose status disagrees with their saga's`);
  const notes = await count(
    `select count(*) as n from orders.saga_instances s where (select count(*) from notifications.notifications n where n.saga_id = s.id) <> (case when s.status in ('COMPLETED', 'CANCELLED') then 1 else 0 end)`,
  );
  if (notes) out.push(`${notes} saga attempt(s) without exactly one notification per outcome`);
  const charges = await count(`select count(*) as n from orders.orders o
    where (select count(*) from payments.ledger c where c.order_id = o.order_id and c.kind = 'CHARGE'
             and not exists (select 1 from payments.ledger r where r.kind = 'REFUND' and r.saga_id = c.saga_id and r.amount > 0))
          <> (case when o.status = 'CONFIRMED' then 1 else 0 end)`);
  if (charges) out.push(`${charges} order(s) whose un-refunded charges do not match their status (1 if CONFIRMED, else 0)`);
  const held = await count(`select count(*) as n from inventory.reservations where status = 'RESERVED'
    and order_id in (select order_id from orders.orders where status in ('CONFIRMED', 'CANCELLED'))`);
  if (held) out.push(`${held} reservation(s) still held for orders that ended`);
  for (const schema of ['orders', 'inventory', 'payments', 'notifications']) {
    const n = await count(`select count(*) as n from ${schema}.outbox`);
    if (n) out.push(`${n} row(s) left in ${schema}.outbox`);
  }
  return out;
}
