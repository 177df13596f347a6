import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MalformedMessageError, OrderCreated, OrderLine, parseMessage } from '@orderflow/contracts';
import { UsageError } from '../cli.errors';

/**
 * Parses `SKU:QTY:UNIT_PRICE` (unit price in minor units, e.g. `BOOK:2:1250` = 2 × 12.50).
 * @throws UsageError on any other shape.
 */
export function parseItem(spec: string): OrderLine {
  const m = /^([^:\s]+):(\d+):(\d+)$/.exec(spec);
  if (!m)
    throw new UsageError(`--item "${spec}" must be SKU:QTY:UNIT_PRICE with whole numbers, unit price in minor units (e.g. BOOK:2:1250)`);
  return { sku: m[1], quantity: Number(m[2]), unitPrice: Number(m[3]) };
}

/**
 * Reads orders from a file or stdin (`-`): one JSON object, a JSON array, or NDJSON (one object per line).
 * A missing `orderId` is generated.
 * @throws UsageError naming the file and the first bad record.
 */
export function readOrders(path: string): OrderCreated[] {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  const trimmed = text.trim();
  if (!trimmed) throw new UsageError(`${path} holds no orders`);
  let records: unknown[];
  try {
    const parsed = JSON.parse(trimmed);
    records = Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    records = trimmed
      .split(/\r?\n/)
      .filter((l) => l.trim())
      .map((line, i) => {
        try {
          return JSON.parse(line);
        } catch (e) {
          throw new UsageError(`${path} line ${i + 1} is not JSON: ${(e as Error).message}`, { cause: e });
        }
      });
  }
  return records.map((r, i) => toOrder(r, `${path} record ${i + 1}`));
}

/** @throws UsageError when `record` is not a valid `order.created` body. */
export function toOrder(record: unknown, where: string): OrderCreated {
  const withId =
    record && typeof record === 'object' && !Array.isArray(record) && !('orderId' in record)
      ? { orderId: randomUUID(), ...record }
      : record;
  try {
    return parseMessage(OrderCreated, withId);
  } catch (e) {
    if (e instanceof MalformedMessageError) throw new UsageError(`${where}: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * `n` generated orders, each with a new id, for `customer`: every order has `items` when given, otherwise one
 * line of `DEMO-SKU` with 1–3 units at 1.00–50.00.
 */
export function generateOrders(n: number, customer: string, currency: string, items?: OrderLine[]): OrderCreated[] {
  return Array.from({ length: n }, (_, i) =>
    toOrder(
      {
        orderId: randomUUID(),
        customerId: customer,
        currency,
        items: items ?? [{ sku: 'DEMO-SKU', quantity: 1 + (i % 3), unitPrice: 100 * (1 + (i % 50)) }],
      },
      `generated order ${i + 1}`,
    ),
  );
}
