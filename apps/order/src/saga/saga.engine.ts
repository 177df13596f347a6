/**
 * A small orchestration-saga engine: a saga is a table of steps, each an action with (optionally) a
 * compensation; the engine is a pure state machine that turns "saga started / reply arrived / local step
 * finished / deadline passed" into a new state plus the effects to carry out (commands to send, a local
 * step to run, the outcome). Persistence and messaging belong to the caller, which keeps the engine easy
 * to test as a script: given a state, expect a command; given a reply, expect the next one.
 *
 * Steps before the **pivot** are compensatable, the pivot is the point of no return, the steps after it are
 * **retriable**: re-sent until they succeed, never compensated. A step that must not be given up on (a
 * compensation, a retriable step) and runs out of sends leaves the saga FAILED for an operator; the late
 * reply it waited for still moves the saga on, and an operator can `resume` it.
 *
 * Sources: Eventuate Tram sagas (FTGO `CreateOrderSaga`: step / invoke / onReply / withCompensation),
 * Garcia-Molina & Salem, "Sagas" (1987): compensations run in reverse order of the steps that succeeded;
 * C. Richardson, *Microservices Patterns*, ch. 4: compensatable, pivot and retriable transactions.
 */

export type { SagaStatus } from '@orderflow/contracts';
import type { SagaStatus } from '@orderflow/contracts';
export type StepStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** A failed step names why; the reason becomes the saga's (and the order's) cancellation reason. */
export type StepResult = { ok: true } | { ok: false; reason: string; detail?: string };

export interface Command {
  subject: string;
  body: object;
}

export interface SagaStep<D> {
  name: string;
  /** A remote step: the command to send to a participant. */
  invoke?: (data: D) => Command;
  /** For a remote step: reply subject → how that reply ends the step. */
  onReply?: Record<string, (body: any) => StepResult>;
  /** A local step, run by the orchestrator in the saga's own transaction (set `local: true`). */
  local?: true;
  /** The point of no return: once it succeeded the saga only goes forward (the steps after it are retriable). */
  pivot?: true;
  /** How long this step waits for its reply before its command is sent again; the orchestrator's default otherwise. */
  timeoutMs?: number;
  /** The undo of this step, sent when a later step fails; it must be idempotent and always succeed. */
  compensation?: { name: string; invoke: (data: D) => Command; replies: string[]; timeoutMs?: number };
}

export interface SagaDefinition<D> {
  name: string;
  steps: SagaStep<D>[];
}

/** One execution of an action or a compensation, as `orderflow orders show` prints it. */
export interface StepRecord {
  name: string;
  kind: 'action' | 'compensation';
  status: StepStatus;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
  /** Times its command was sent (re-sent on deadline). */
  attempts: number;
  /** How it came to run or end other than by its own reply ("resumed by operator", "late reply after FAILED"). */
  note?: string;
}

export interface SagaState {
  status: SagaStatus;
  /** Index of the step being run, or (while COMPENSATING) being compensated. */
  step: number;
  reason: string | null;
  detail: string | null;
  history: StepRecord[];
}

export type SagaEffect =
  | { type: 'send'; command: Command }
  | { type: 'runLocal'; step: string }
  | { type: 'completed' }
  | { type: 'cancelled'; reason: string; detail: string | null }
  | { type: 'failed'; error: string };

export interface Transition {
  state: SagaState;
  effects: SagaEffect[];
  /** True when the saga now waits for a participant's reply: the caller sets the step's deadline. */
  awaitingReply: boolean;
  /** True when the input did not concern the current step (stale or duplicate reply): nothing changed. */
  ignored?: boolean;
}

/** Timeout reason used when a step's deadline passes more than `maxAttempts` times. */
export const STEP_TIMEOUT = 'step_timeout';

export class SagaEngine<D> {
  constructor(readonly definition: SagaDefinition<D>, private readonly clock: () => Date = () => new Date()) {}

  /** Starts a saga at its first step. */
  begin(data: D): Transition {
    return this.enterStep({ status: 'RUNNING', step: 0, reason: null, detail: null, history: [] }, data, 0);
  }

  /**
   * A participant replied. Replies that do not belong to the current step are ignored (stale, duplicate).
   * A FAILED saga that receives the reply of the step it gave up on resumes from there (noted in its history).
   */
  onReply(state: SagaState, data: D, subject: string, body: unknown): Transition {
    const step = this.definition.steps[state.step];
    const last = state.history[state.history.length - 1];
    let s = state;
    if (state.status === 'FAILED' && last?.status === 'FAILED') {
      const awaited = last.kind === 'compensation' ? step?.compensation?.replies.includes(subject) : !!step?.onReply?.[subject];
      if (!awaited) return { state, effects: [], awaitingReply: false, ignored: true };
      s = this.reopen(state, last.kind === 'compensation' ? 'COMPENSATING' : 'RUNNING', `late reply ${subject} after the saga had FAILED: resumed`);
    }
    if (s.status === 'RUNNING' && step?.onReply?.[subject]) {
      return this.finishStep(s, data, step.onReply[subject](body));
    }
    if (s.status === 'COMPENSATING' && step?.compensation?.replies.includes(subject)) {
      return this.compensateFrom(this.record(s, 'SUCCEEDED', null), data, state.step - 1);
    }
    return { state, effects: [], awaitingReply: false, ignored: true };
  }

  /**
   * An operator resumes a FAILED saga: the step (compensation or retriable action) it gave up on is sent
   * again as a new execution, and the saga carries on from there when its reply arrives.
   * @throws Error when the saga is not FAILED on a remote step (the caller checks `status` first).
   */
  resume(state: SagaState, data: D, note = 'resumed by operator'): Transition {
    const step = this.definition.steps[state.step];
    const last = state.history[state.history.length - 1];
    if (state.status !== 'FAILED' || !step || !last) throw new Error(`only a FAILED saga can be resumed (status ${state.status})`);
    const command = last.kind === 'compensation' ? step.compensation?.invoke(data) : step.invoke?.(data);
    if (!command) throw new Error(`step ${last.name} has no command to send again`);
    const status = last.kind === 'compensation' ? 'COMPENSATING' : 'RUNNING';
    const s = this.start({ ...state, status }, state.step, last.name, last.kind);
    const history = [...s.history.slice(0, -1), { ...s.history[s.history.length - 1], note }];
    return { state: { ...s, history }, effects: [{ type: 'send', command }], awaitingReply: true };
  }

  /**
   * What is still to run, by the definition: the steps after the current one (while RUNNING), the
   * compensations still to run (while COMPENSATING), the step given up on and what follows it (FAILED).
   */
  remaining(state: SagaState): string[] {
    const steps = this.definition.steps;
    const last = state.history[state.history.length - 1];
    const compensationsBelow = (i: number) => steps.slice(0, i + 1).reverse().flatMap((st) => (st.compensation ? [st.compensation.name] : []));
    switch (state.status) {
      case 'RUNNING':
        return steps.slice(state.step + 1).map((st) => st.name);
      case 'COMPENSATING':
        return compensationsBelow(state.step - 1);
      case 'FAILED':
        return last?.kind === 'compensation' ? compensationsBelow(state.step) : steps.slice(state.step).map((st) => st.name);
      default:
        return [];
    }
  }

  /** The deadline, in milliseconds, of what the saga now waits on: its step's (or compensation's) own, or `fallbackMs`. */
  timeoutOf(state: SagaState, fallbackMs: number): number {
    const step = this.definition.steps[state.step];
    const own = state.status === 'COMPENSATING' ? step?.compensation?.timeoutMs : step?.timeoutMs;
    return own ?? fallbackMs;
  }

  /**
   * A local step finished.
   * @throws Error when the current step is not a running local step (a bug in the caller).
   */
  onLocalResult(state: SagaState, data: D, result: StepResult): Transition {
    const step = this.definition.steps[state.step];
    if (state.status !== 'RUNNING' || !step?.local) throw new Error(`saga is not running a local step (status ${state.status}, step ${step?.name})`);
    return this.finishStep(state, data, result);
  }

  /**
   * The current step's deadline passed. Its command is sent again (participants are idempotent) up to
   * `maxAttempts` sends; then an action before the pivot counts as failed — and, since the participant may
   * have applied it, is compensated too — while a compensation or a retriable step leaves the saga FAILED
   * for an operator.
   */
  onTimeout(state: SagaState, data: D, maxAttempts: number): Transition {
    const step = this.definition.steps[state.step];
    const current = state.history[state.history.length - 1];
    const waiting = current?.status === 'RUNNING' && (state.status === 'RUNNING' || state.status === 'COMPENSATING');
    if (!step || !waiting) return { state, effects: [], awaitingReply: false, ignored: true };
    const command = state.status === 'RUNNING' ? step.invoke?.(data) : step.compensation?.invoke(data);
    if (!command) return { state, effects: [], awaitingReply: false, ignored: true };
    if (current.attempts < maxAttempts) {
      const history = [...state.history.slice(0, -1), { ...current, attempts: current.attempts + 1, error: `no reply after ${current.attempts} attempt(s); sent again` }];
      return { state: { ...state, history }, effects: [{ type: 'send', command }], awaitingReply: true };
    }
    const error = `no reply after ${current.attempts} attempt(s)`;
    const s = this.record(state, 'FAILED', error);
    if (state.status === 'COMPENSATING' || this.isRetriable(state.step)) {
      const what = state.status === 'COMPENSATING' ? 'compensation' : 'retriable step';
      return { state: { ...s, status: 'FAILED' }, effects: [{ type: 'failed', error: `${what} ${current.name} failed: ${error}` }], awaitingReply: false };
    }
    return this.compensateFrom({ ...s, status: 'COMPENSATING', reason: STEP_TIMEOUT, detail: `${step.name}: ${error}` }, data, state.step);
  }

  /** True for the steps after the pivot: they are re-sent until they succeed, never compensated. */
  isRetriable(index: number): boolean {
    const pivot = this.definition.steps.findIndex((st) => st.pivot);
    return pivot >= 0 && index > pivot;
  }

  private finishStep(state: SagaState, data: D, result: StepResult): Transition {
    if (result.ok) return this.enterStep(this.record(state, 'SUCCEEDED', null), data, state.step + 1);
    const s = this.record(state, 'FAILED', result.detail ? `${result.reason}: ${result.detail}` : result.reason);
    // The failed step had no effect; undo the ones before it, newest first.
    return this.compensateFrom({ ...s, status: 'COMPENSATING', reason: result.reason, detail: result.detail ?? null }, data, state.step - 1);
  }

  private enterStep(state: SagaState, data: D, index: number): Transition {
    const step = this.definition.steps[index];
    if (!step) return { state: { ...state, status: 'COMPLETED', step: index }, effects: [{ type: 'completed' }], awaitingReply: false };
    const s = this.start(state, index, step.name, 'action');
    if (step.local) return { state: s, effects: [{ type: 'runLocal', step: step.name }], awaitingReply: false };
    return { state: s, effects: [{ type: 'send', command: step.invoke!(data) }], awaitingReply: true };
  }

  /** Compensates the newest step at or below `index` that has a compensation; none left → CANCELLED. */
  private compensateFrom(state: SagaState, data: D, index: number): Transition {
    for (let i = index; i >= 0; i--) {
      const comp = this.definition.steps[i].compensation;
      if (!comp) continue;
      const s = this.start({ ...state, status: 'COMPENSATING' }, i, comp.name, 'compensation');
      return { state: s, effects: [{ type: 'send', command: comp.invoke(data) }], awaitingReply: true };
    }
    const reason = state.reason ?? 'rejected';
    return { state: { ...state, status: 'CANCELLED', step: -1 }, effects: [{ type: 'cancelled', reason, detail: state.detail }], awaitingReply: false };
  }

  private start(state: SagaState, index: number, name: string, kind: StepRecord['kind']): SagaState {
    const record: StepRecord = { name, kind, status: 'RUNNING', startedAt: this.clock().toISOString(), finishedAt: null, error: null, attempts: kind === 'action' && this.definition.steps[index].local ? 0 : 1 };
    return { ...state, step: index, history: [...state.history, record] };
  }

  /** Opens the newest (FAILED) history record again, noting why. */
  private reopen(state: SagaState, status: SagaStatus, note: string): SagaState {
    const last = state.history[state.history.length - 1];
    return { ...state, status, history: [...state.history.slice(0, -1), { ...last, status: 'RUNNING', note }] };
  }

  /** Closes the newest history record. */
  private record(state: SagaState, status: StepStatus, error: string | null): SagaState {
    const last = state.history[state.history.length - 1];
    const history = [...state.history.slice(0, -1), { ...last, status, finishedAt: this.clock().toISOString(), error: error ?? last.error }];
    return { ...state, history };
  }
}
