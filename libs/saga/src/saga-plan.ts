import { formatMoney, SagaPlanStep, SagaTypeView } from '@orderflow/contracts';
import type { SagaData, SagaDefinition } from './saga.definition';

/** "send inventory.cmd.reserve (CAM×2)", "send payment.cmd.charge (80.00 USD)", "local transaction (pivot)". */
function describe(name: string, command: { subject: string; body: object } | undefined, pivot = false): string {
  if (!command) return `${name}: local transaction${pivot ? ' (pivot)' : ''}`;
  const b = command.body as { items?: { sku: string; quantity: number }[]; amount?: number; currency?: string };
  const what = b.items
    ? ` (${b.items.map((i) => `${i.sku}×${i.quantity}`).join(', ')})`
    : b.amount !== undefined
      ? ` (${formatMoney(b.amount, b.currency ?? '')})`
      : '';
  return `${name}: send ${command.subject}${what}`;
}

/**
 * Every step and compensation of `definition`, in order, with the command each sends for an attempt with `data`:
 * what `query.order.saga` answers as `plan`, so the CLI plans retries and resumes without the definition's code.
 */
export function planOf<D extends SagaData>(definition: SagaDefinition<D>, data: D): SagaPlanStep[] {
  return definition.steps.flatMap((st) => {
    const command = st.invoke?.(data);
    const step: SagaPlanStep = {
      name: st.name,
      kind: 'action',
      subject: command?.subject ?? null,
      replies: Object.keys(st.onReply ?? {}),
      line: describe(st.name, command, st.pivot),
    };
    if (!st.compensation) return [step];
    const c = st.compensation.invoke(data);
    return [
      step,
      {
        name: st.compensation.name,
        kind: 'compensation',
        subject: c.subject,
        replies: [...st.compensation.replies],
        line: describe(st.compensation.name, c),
      },
    ];
  });
}

/** A definition's steps and compensations by name, in order (`query.order.saga-types`). */
export const typeOf = (definition: SagaDefinition<SagaData>): SagaTypeView => ({
  type: definition.name,
  steps: definition.steps.flatMap((st) => [
    { name: st.name, kind: 'action' as const, pivot: !!st.pivot },
    ...(st.compensation ? [{ name: st.compensation.name, kind: 'compensation' as const, pivot: false }] : []),
  ]),
});
