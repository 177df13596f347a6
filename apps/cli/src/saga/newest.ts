import { SagaSummary, Subjects } from '@orderflow/contracts';
import { PipelineClient } from '../client';

/** Orders per `query.order.sagas` (the query takes at most 500). */
const ORDERS_PER_QUERY = 500;

/**
 * The newest saga attempt of each of `orderIds` that has one, from `query.order.sagas` (500 orders a query, 4 queries
 * at once, each paged by saga id).
 * @throws CliFailure when the order service does not answer.
 */
export async function newestAttempts(client: PipelineClient, orderIds: string[]): Promise<Map<string, SagaSummary>> {
  const out = new Map<string, SagaSummary>();
  const chunks: string[][] = [];
  for (let i = 0; i < orderIds.length; i += ORDERS_PER_QUERY) chunks.push(orderIds.slice(i, i + ORDERS_PER_QUERY));
  const ask = async (ids: string[]) => {
    for (let after: string | undefined; ;) {
      const page = (await client.query<SagaSummary[]>(Subjects.QuerySagas, { orderIds: ids, order: 'id', after, limit: 1000 })) ?? [];
      for (const s of page) if ((out.get(s.orderId)?.attempt ?? 0) < s.attempt) out.set(s.orderId, s);
      if (page.length < 1000) return;
      after = page[page.length - 1].sagaId;
    }
  };
  for (let i = 0; i < chunks.length; i += 4) await Promise.all(chunks.slice(i, i + 4).map(ask));
  return out;
}

/** "at chargePayment since 18:20:01 (RUNNING)": where an attempt that has not ended stands. */
export const standing = (s: Pick<SagaSummary, 'step' | 'status' | 'updatedAt'>): string =>
  `at ${s.step ?? '(no step)'} since ${s.updatedAt.slice(11, 19)} (${s.status})`;

/** The saga states an attempt does not leave by itself. */
export const ENDED = ['COMPLETED', 'CANCELLED'];
