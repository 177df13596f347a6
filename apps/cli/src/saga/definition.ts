import { formatMoney, SagaView } from '@orderflow/contracts';
import { placeOrderSaga, PlaceOrderData } from '../../../order/src/place-order/place-order.saga';

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
  const what = b.items
    ? ` (${b.items.map((i) => `${i.sku}×${i.quantity}`).join(', ')})`
    : b.amount !== undefined
      ? ` (${formatMoney(b.amount, b.currency ?? '')})`
      : '';
  return `${name}: send ${command.subject}${what}`;
}

/** Every step (and compensation) of the saga's definition, by name, with its command for this attempt. */
export function stepsOf(view: SagaView, sagaId?: string): Map<string, PlannedStep> {
  const data = dataOf(view, sagaId);
  const out = new Map<string, PlannedStep>();
  for (const st of placeOrderSaga.steps) {
    const command = st.invoke?.(data);
    out.set(st.name, {
      name: st.name,
      kind: 'action',
      subject: command?.subject ?? null,
      replies: Object.keys(st.onReply ?? {}),
      line: describe(st.name, command, st.pivot),
    });
    if (st.compensation) {
      const c = st.compensation.invoke(data);
      out.set(st.compensation.name, {
        name: st.compensation.name,
        kind: 'compensation',
        subject: c.subject,
        replies: st.compensation.replies,
        line: describe(st.compensation.name, c),
      });
    }
  }
  return out;
}

/** The names of the saga definition's steps and compensations, in order: what `saga list --step` takes. */
export const stepNames = (): string[] =>
  placeOrderSaga.steps.flatMap((st) => [st.name, ...(st.compensation ? [st.compensation.name] : [])]);

/** What a new attempt runs: every step from the first. */
export function retryPlan(view: SagaView): string[] {
  const steps = stepsOf(view, '<new attempt>');
  return placeOrderSaga.steps.map((st) => steps.get(st.name)!.line);
}

/** The newest execution of each step and compensation the attempt ran, by name. */
function newestByName(view: SagaView): Map<string, SagaView['steps'][number]> {
  return new Map(view.steps.map((st) => [st.name, st]));
}

/** What a resumed FAILED attempt runs: what it gave up on (sent again), then what the definition has still to run. */
export function resumePlan(view: SagaView): string[] {
  const steps = stepsOf(view);
  const newest = newestByName(view);
  return view.remaining.map((name) => `${steps.get(name)?.line ?? name}${newest.get(name)?.status === 'FAILED' ? ' (again)' : ''}`);
}

/**
 * The subjects of what the attempt waits on (every step or compensation in flight) or gave up on (when
 * FAILED): their commands and their replies. Empty when it waits on nothing.
 */
export function awaitedSubjects(view: SagaView): string[] {
  if (!['RUNNING', 'COMPENSATING', 'FAILED'].includes(view.status)) return [];
  const planned = stepsOf(view);
  const open = [...newestByName(view).values()].filter(
    (st) => st.status === 'RUNNING' || (view.status === 'FAILED' && st.status === 'FAILED' && view.remaining.includes(st.name)),
  );
  return open.flatMap((st) => {
    const step = planned.get(st.name);
    return step?.subject ? [step.subject, ...step.replies] : [];
  });
}
