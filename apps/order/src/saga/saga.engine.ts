/**
 * A small orchestration-saga engine: a saga is a table of steps, each an action with (optionally) a
 * compensation; the engine is a pure state machine that turns "saga started / reply arrived / local step
 * finished / deadline passed" into a new state plus the effects to carry out (commands to send, a local
 * step to run, the outcome). Persistence and messaging belong to the caller, which keeps the engine easy
 * to test as a script: given a state, expect a command; given a reply, expect the next one.
 *
 * Sources: Eventuate Tram sagas (FTGO `CreateOrderSaga`: step / invoke / onReply / withCompensation),
 * Garcia-Molina & Salem, "Sagas" (1987): compensations run in reverse order of the steps that succeeded.
 */

export type SagaStatus = 'RUNNING' | 'COMPENSATING' | 'COMPLETED' | 'CANCELLED' | 'FAILED';
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
  /** The undo of this step, sent when a later step fails; it must be idempotent and always succeed. */
  compensation?: { name: string; invoke: (data: D) => Command; replies: string[] };
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

  /** A participant replied. Replies that do not belong to the current step are ignored (stale, duplicate). */
  onReply(state: SagaState, data: D, subject: string, body: unknown): Transition {
    const step = this.definition.steps[state.step];
    if (state.status === 'RUNNING' && step?.onReply?.[subject]) {
      return this.finishStep(state, data, step.onReply[subject](body));
    }
    if (state.status === 'COMPENSATING' && step?.compensation?.replies.includes(subject)) {
      const s = this.record(state, 'SUCCEEDED', null);
      return this.compensateFrom(s, data, state.step - 1);
    }
    return { state, effects: [], awaitingReply: false, ignored: true };
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
   * `maxAttempts` sends; then an action counts as failed — and, since the participant may have applied it,
   * is compensated too — while a compensation leaves the saga FAILED for an operator.
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
    if (state.status === 'COMPENSATING') {
      return { state: { ...s, status: 'FAILED' }, effects: [{ type: 'failed', error: `compensation ${current.name} failed: ${error}` }], awaitingReply: false };
    }
    return this.compensateFrom({ ...s, status: 'COMPENSATING', reason: STEP_TIMEOUT, detail: `${step.name}: ${error}` }, data, state.step);
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

  /** Closes the newest history record. */
  private record(state: SagaState, status: StepStatus, error: string | null): SagaState {
    const last = state.history[state.history.length - 1];
    const history = [...state.history.slice(0, -1), { ...last, status, finishedAt: this.clock().toISOString(), error: error ?? last.error }];
    return { ...state, history };
  }
}
