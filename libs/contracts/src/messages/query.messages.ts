import { IsUUID } from 'class-validator';

export class OrderQuery {
  @IsUUID()
  orderId!: string;
}

/** Answer of `query.order.get` (also what `orderflow orders show --json` prints). */
export interface OrderView {
  orderId: string;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  reason: string | null;
  saga: {
    id: string;
    status: 'RUNNING' | 'COMPENSATING' | 'COMPLETED' | 'CANCELLED' | 'FAILED';
    steps: { name: string; status: string; startedAt: string; finishedAt: string | null; error: string | null }[];
  };
}

/**
 * Envelope of every query reply: `{"ok": true, "data": …}` or `{"ok": false, "error": {"code", "message"}}`.
 * `code` is `not_found` or `bad_request`.
 */
export type QueryReply<T> = { ok: true; data: T } | { ok: false; error: { code: 'not_found' | 'bad_request' | 'internal'; message: string } };
