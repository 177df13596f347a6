import type { SagaPlanStep, SagaView } from '@orderflow/contracts';

/**
 * Plans from the order app's view of an attempt (`query.order.saga`: its `plan` and `remaining`), never from the saga
 * definition's code, which lives in the order app.
 */

/** Every step (and compensation) of the attempt's definition, by name, with its command for this attempt. */
export const stepsOf = (view: SagaView): Map<string, SagaPlanStep> => new Map(view.plan.map((st) => [st.name, st]));

/** What a new attempt runs: every step from the first (its commands differ from this attempt's only by saga id). */
export const retryPlan = (view: SagaView): string[] => view.plan.filter((st) => st.kind === 'action').map((st) => st.line);

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
