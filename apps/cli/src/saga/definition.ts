import { SagaView } from '@orderflow/contracts';
import { placeOrderSaga, PlaceOrderData } from '../../../order/src/place-order/place-order.saga';
import { money } from '../output';

/** A step or compensation of the saga definition, with the command it sends for a given attempt. */
export interface PlannedStep {
  name: string;
  kind: 'action' | 'compensation';
  subject: string | null;
  /** The reply subjects that end it. */
  replies: string[];
  line: string;
}

const dataOf = (view: SagaView, sagaId = view.sagaId): PlaceOrderData => ({ ...view.data, sagaId, orderId: view.orderId });

function describe(name: string, command: { subject: string; body: object } | undefined, pivot = false): PlannedStep['line'] {
  if (!command) return `${name}: local transaction${pivot ? ' (pivot)' : ''}`;
  const b = command.body as { items?: { sku: string; quantity: number }[]; amount?: number; currency?: string };
  const what = b.items ? ` (${b.items.map((i) => `${i.sku}×${i.quantity}`).join(', ')})` : b.amount !== undefined ? ` (${money(b.amount, b.currency ?? '')})` : '';
  return `${name}: send ${command.subject}${what}`;
}

/** Every step (and compensation) of the saga's definition, by name, with its command for this attempt. */
export function stepsOf(view: SagaView, sagaId?: string): Map<string, PlannedStep> {
  const data = dataOf(view, sagaId);
  const out = new Map<string, PlannedStep>();
  for (const st of placeOrderSaga.steps) {
    const command = st.invoke?.(data);
    out.set(st.name, { name: st.name, kind: 'action', subject: command?.subject ?? null, replies: Object.keys(st.onReply ?? {}), line: describe(st.name, command, st.pivot) });
    if (st.compensation) {
      const c = st.compensation.invoke(data);
      out.set(st.compensation.name, { name: st.compensation.name, kind: 'compensation', subject: c.subject, replies: st.compensation.replies, line: describe(st.compensation.name, c) });
    }
  }
  return out;
}

/** What a new attempt runs: every step from the first. */
export function retryPlan(view: SagaView): string[] {
  const steps = stepsOf(view, '<new attempt>');
  return placeOrderSaga.steps.map((st) => steps.get(st.name)!.line);
}

/** What a resumed FAILED attempt runs: the step it gave up on (sent again), then what the definition has after it. */
export function resumePlan(view: SagaView): string[] {
  const steps = stepsOf(view);
  return view.remaining.map((name, i) => `${steps.get(name)?.line ?? name}${i === 0 ? ' (again)' : ''}`);
}

/**
 * The subjects of the step the attempt waits on (its current step, or the one it gave up on): its command
 * and its replies. Empty when it waits on nothing.
 */
export function awaitedSubjects(view: SagaView): string[] {
  const last = view.steps[view.steps.length - 1];
  if (!last || !['RUNNING', 'COMPENSATING', 'FAILED'].includes(view.status)) return [];
  if (last.status !== 'RUNNING' && view.status !== 'FAILED') return [];
  const step = stepsOf(view).get(last.name);
  return step?.subject ? [step.subject, ...step.replies] : [];
}
