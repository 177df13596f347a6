/**
 * A small orchestration-saga engine: a saga is a table of steps, each an action with (optionally) a
 * compensation; the engine is a pure state machine that turns "saga started / reply arrived / local step
 * finished / deadline passed" into a new state plus the effects to carry out (commands to send, a local
 * step to run, the outcome). Persistence and messaging belong to the caller, which keeps the engine easy
 * to test as a script: given a state, expect a command; given a reply, expect the next one.
 *
 * Steps before the **pivot** are compensatable, the pivot is the point of no return, the steps after it are
 * **retriable**: re-sent until they succeed, never compensated. When a step before the pivot fails, the
 * compensations of the steps up to it run **concurrently**, each re-sent with exponential backoff until it
 * succeeds (a compensation may name others it must wait for with `after`); a refund that cannot be
 * delivered does not hold back the release of the stock. What must not be given up on (a compensation, a
 * retriable step) and runs out of sends leaves the saga FAILED for an operator; the late reply it waited
 * for still moves the saga on, and an operator can `resume` it.
 *
 * Sources: Eventuate Tram sagas (FTGO `CreateOrderSaga`: step / invoke / onReply / withCompensation),
 * Garcia-Molina & Salem, "Sagas" (1987): compensations undo the steps that succeeded (there in reverse
 * order; here concurrently unless ordered with `after`); C. Richardson, *Microservices Patterns*, ch. 4:
 * compensatable, pivot and retriable transactions; exponential backoff as in the AWS Architecture Blog,
 * "Exponential Backoff And Jitter".
 */

import type { MessageSubject, SagaStatus } from '@orderflow/contracts';
import type { Command, Compensation, SagaData, SagaDefinition, StepResult } from './saga.definition';
export type { SagaStatus };
export type StepStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** Deadlines and send limits. */
export interface SagaEngineOptions {
  /** First deadline of a step without a `timeoutMs` of its own, ms (doubled after every send up to `stepBackoffMaxMs`). */
  stepTimeoutMs: number;
  /** Ceiling of an action's doubling deadline, ms. */
  stepBackoffMaxMs: number;
  /**
   * The business deadline of an attempt, ms from its start: an action before the pivot without a reply by then counts
   * as failed (`deadline_exceeded`, compensated); a retriable step leaves the saga FAILED.
   */
  sagaDeadlineMs: number;
  /** Sends of a compensation before it is given up on (the saga FAILED once nothing else is in flight). */
  compensationMaxAttempts: number;
  /** Ceiling of a compensation's doubling deadline, ms. */
  compensationBackoffMaxMs: number;
}

export const DEFAULT_ENGINE_OPTIONS: SagaEngineOptions = {
  stepTimeoutMs: 30_000,
  stepBackoffMaxMs: 300_000,
  sagaDeadlineMs: 3_600_000,
  compensationMaxAttempts: 100,
  compensationBackoffMaxMs: 60_000,
};

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
  /** While a remote execution is RUNNING: when its command is sent again (ISO 8601). */
  dueAt?: string;
  /** How it came to run or end other than by its own reply ("resumed by operator", "late reply after FAILED"). */
  note?: string;
}

export interface SagaState {
  status: SagaStatus;
  /** Index of the step being run, or (while compensating) of the newest step being compensated. */
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
  /** True when the input did not concern what the saga waits on (stale or duplicate reply): nothing changed. */
  ignored?: boolean;
}

/** Cancel reason when the saga's business deadline passes before an action before the pivot was answered. */
export const DEADLINE_EXCEEDED = 'deadline_exceeded';

export class SagaEngine<D extends SagaData> {
  private readonly options: SagaEngineOptions;

  constructor(
    readonly definition: SagaDefinition<D>,
    options: Partial<SagaEngineOptions> = {},
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...options };
  }

  /** Starts a saga at its first step. */
  begin(data: D): Transition {
    return this.enterStep({ status: 'RUNNING', step: 0, reason: null, detail: null, history: [] }, data, 0);
  }

  /**
   * A participant replied. Replies that concern nothing the saga waits on are ignored (stale, duplicate); a reply
   * for the step it waits on is checked by the step's handler against what the step asked for.
   * @throws UnexpectedReplyError (from the step's handler) when the reply contradicts the command: nothing changes.
   * The late reply of what the saga gave up on (a FAILED action after the pivot, a compensation out of
   * sends) still counts: the saga carries on from there (noted in its history).
   */
  onReply(state: SagaState, data: D, subject: string, body: unknown): Transition {
    if (this.compensating(state)) return this.onCompensationReply(state, data, subject);
    const step = this.definition.steps[state.step];
    const last = state.history[state.history.length - 1];
    const handle = step?.onReply?.[subject as MessageSubject] as ((body: unknown, data: D) => StepResult) | undefined;
    if (!handle || last?.name !== step.name) return this.ignore(state);
    if (state.status === 'FAILED' && last.status === 'FAILED') {
      const reopened = this.update(state, state.history.length - 1, {
        status: 'RUNNING',
        note: `late reply ${subject} after the saga had FAILED: resumed`,
      });
      return this.finishStep({ ...reopened, status: 'RUNNING' }, data, handle(body, data));
    }
    if (state.status !== 'RUNNING' || last.status !== 'RUNNING') return this.ignore(state);
    return this.finishStep(state, data, handle(body, data));
  }

  /**
   * An operator resumes a FAILED saga: what it gave up on (a retriable action, or every compensation out of
   * sends) is sent again as a new execution, and the saga carries on from there.
   * @throws Error when the saga is not FAILED on something it can send again (the caller checks `status` first).
   */
  resume(state: SagaState, data: D, note = 'resumed by operator'): Transition {
    if (state.status !== 'FAILED') throw new Error(`only a FAILED saga can be resumed (status ${state.status})`);
    if (this.compensating(state)) {
      let s: SagaState = { ...state, status: 'COMPENSATING' };
      const effects: SagaEffect[] = [];
      for (const { comp } of this.compensations(state.step)) {
        if (this.latest(state, comp.name)?.record.status !== 'FAILED') continue;
        s = this.startCompensation(s, comp, note);
        effects.push({ type: 'send', command: comp.invoke(data) });
      }
      if (effects.length === 0) throw new Error('the saga has no given-up compensation to send again');
      return { state: s, effects };
    }
    const step = this.definition.steps[state.step];
    const command = step?.invoke?.(data);
    if (!step || !command) throw new Error(`step ${step?.name} has no command to send again`);
    const s = this.start({ ...state, status: 'RUNNING' }, state.step, step.name, 'action', note);
    return { state: s, effects: [{ type: 'send', command }] };
  }

  /**
   * What is still to run, by the definition: the steps after the current one (while RUNNING), the
   * compensations not yet succeeded (while compensating, or FAILED in compensation), the step given up on
   * and what follows it (FAILED after the pivot).
   */
  remaining(state: SagaState): string[] {
    if (this.compensating(state)) {
      return this.compensations(state.step)
        .map(({ comp }) => comp.name)
        .filter((name) => this.latest(state, name)?.record.status !== 'SUCCEEDED');
    }
    switch (state.status) {
      case 'RUNNING':
        return this.definition.steps.slice(state.step + 1).map((st) => st.name);
      case 'FAILED':
        return this.definition.steps.slice(state.step).map((st) => st.name);
      default:
        return [];
    }
  }

  /** The steps and compensations the saga waits on or gave up on (their newest execution is RUNNING or FAILED). */
  current(state: SagaState): string[] {
    if (state.status === 'COMPLETED' || state.status === 'CANCELLED') return [];
    if (this.compensating(state)) {
      return this.compensations(state.step)
        .map(({ comp }) => comp.name)
        .filter((name) => ['RUNNING', 'FAILED'].includes(this.latest(state, name)?.record.status ?? ''));
    }
    const step = this.definition.steps[state.step];
    return step ? [step.name] : [];
  }

  /** The command the step or compensation `name` sends for `data`, or undefined for a local step (or no such name). */
  commandOf(name: string, data: D): Command | undefined {
    const step = this.definition.steps.find((st) => st.name === name);
    if (step) return step.invoke?.(data);
    return this.compensationNamed(name)?.invoke(data);
  }

  /** When the saga's next deadline passes (the earliest of its remote executions in flight), or null when it waits on nothing. */
  deadlineOf(state: SagaState): Date | null {
    if (state.status !== 'RUNNING' && state.status !== 'COMPENSATING') return null;
    const due = this.inFlight(state).map(({ due }) => due.getTime());
    return due.length ? new Date(Math.min(...due)) : null;
  }

  /**
   * A local step finished.
   * @throws Error when the current step is not a running local step (a bug in the caller).
   */
  onLocalResult(state: SagaState, data: D, result: StepResult): Transition {
    const step = this.definition.steps[state.step];
    if (state.status !== 'RUNNING' || !step?.local)
      throw new Error(`saga is not running a local step (status ${state.status}, step ${step?.name})`);
    return this.finishStep(state, data, result);
  }

  /**
   * A deadline passed: every execution in flight that is due (at least the earliest) is sent again (participants are
   * idempotent), with a doubled deadline — an action's capped at the saga's business deadline. Once that has passed,
   * an action before the pivot counts as failed (`deadline_exceeded`) and, since the participant may have applied
   * it, is compensated too, while a retriable action leaves the saga FAILED. A compensation out of sends is given up
   * on, and the saga is FAILED once nothing else is in flight.
   */
  onTimeout(state: SagaState, data: D): Transition {
    const flying = this.inFlight(state);
    if (flying.length === 0) return this.ignore(state);
    const now = this.clock().getTime();
    const earliest = Math.min(...flying.map((f) => f.due.getTime()));
    const due = flying.filter((f) => f.due.getTime() <= Math.max(now, earliest));

    if (!this.compensating(state)) {
      const { index, record } = due[0];
      const step = this.definition.steps[state.step];
      const deadline = this.deadlineAt(state);
      if (now < deadline) {
        const error = `no reply after ${record.attempts} send(s); sent again`;
        const wait = Math.min(this.stepTimeout(state.step) * 2 ** Math.min(record.attempts, 30), this.options.stepBackoffMaxMs);
        const dueAt = new Date(Math.min(now + Math.max(wait, this.stepTimeout(state.step)), deadline)).toISOString();
        const s = this.update(state, index, { attempts: record.attempts + 1, error, dueAt });
        return { state: s, effects: [{ type: 'send', command: step.invoke!(data) }] };
      }
      const error = `no reply within the saga's deadline (${record.attempts} send(s))`;
      const s = this.close(state, index, 'FAILED', error);
      if (this.isRetriable(state.step)) {
        return { state: { ...s, status: 'FAILED' }, effects: [{ type: 'failed', error: `retriable step ${step.name} failed: ${error}` }] };
      }
      return this.compensateFrom({ ...s, reason: DEADLINE_EXCEEDED, detail: `${step.name}: ${error}` }, data, state.step);
    }

    let s = state;
    const effects: SagaEffect[] = [];
    for (const { index, record } of due) {
      const comp = this.compensationNamed(record.name)!;
      if (record.attempts < this.options.compensationMaxAttempts) {
        const error = `no reply after ${record.attempts} attempt(s); sent again`;
        s = this.update(s, index, { attempts: record.attempts + 1, error, dueAt: this.dueAt(this.backoff(comp, record.attempts + 1)) });
        effects.push({ type: 'send', command: comp.invoke(data) });
      } else {
        s = this.close(s, index, 'FAILED', `no reply after ${record.attempts} attempt(s)`);
      }
    }
    const next = this.advanceCompensation(s, data);
    return { state: next.state, effects: [...effects, ...next.effects] };
  }

  /** True for the steps after the pivot: they are re-sent until they succeed, never compensated. */
  isRetriable(index: number): boolean {
    const pivot = this.definition.steps.findIndex((st) => st.pivot);
    return pivot >= 0 && index > pivot;
  }

  /** True while the saga compensates, or FAILED during compensation. */
  private compensating(state: SagaState): boolean {
    return state.status === 'COMPENSATING' || (state.status === 'FAILED' && state.history.some((h) => h.kind === 'compensation'));
  }

  private onCompensationReply(state: SagaState, data: D, subject: string): Transition {
    const comp = this.compensations(state.step)
      .map((c) => c.comp)
      .find((c) => (c.replies as string[]).includes(subject));
    const latest = comp && this.latest(state, comp.name);
    if (!comp || !latest || latest.record.status === 'SUCCEEDED') return this.ignore(state);
    let s = state;
    if (latest.record.status === 'FAILED') {
      const after = state.status === 'FAILED' ? 'the saga had FAILED' : 'it was given up on';
      s = this.update(s, latest.index, { note: `late reply ${subject} after ${after}: resumed` });
    }
    s = this.close({ ...s, status: 'COMPENSATING' }, latest.index, 'SUCCEEDED', null);
    return this.advanceCompensation(s, data);
  }

  private finishStep(state: SagaState, data: D, result: StepResult): Transition {
    const last = state.history.length - 1;
    if (result.ok) return this.enterStep(this.close(state, last, 'SUCCEEDED', null), data, state.step + 1);
    const s = this.close(state, last, 'FAILED', result.detail ? `${result.reason}: ${result.detail}` : result.reason);
    // The failed step had no effect; undo the ones before it.
    return this.compensateFrom({ ...s, reason: result.reason, detail: result.detail ?? null }, data, state.step - 1);
  }

  private enterStep(state: SagaState, data: D, index: number): Transition {
    const step = this.definition.steps[index];
    if (!step) return { state: { ...state, status: 'COMPLETED', step: index }, effects: [{ type: 'completed' }] };
    const s = this.start(state, index, step.name, 'action');
    if (step.local) return { state: s, effects: [{ type: 'runLocal', step: step.name }] };
    return { state: s, effects: [{ type: 'send', command: step.invoke!(data) }] };
  }

  /** Starts compensating the steps at or below `index`; with nothing to compensate the saga is CANCELLED at once. */
  private compensateFrom(state: SagaState, data: D, index: number): Transition {
    if (this.compensations(index).length === 0) return this.cancelled({ ...state, step: -1 });
    return this.advanceCompensation({ ...state, status: 'COMPENSATING', step: index }, data);
  }

  /**
   * Sends every compensation not yet started whose `after` ones have succeeded; then the saga is COMPENSATING
   * while anything is in flight, CANCELLED when every compensation succeeded, else FAILED.
   */
  private advanceCompensation(state: SagaState, data: D): Transition {
    const all = this.compensations(state.step);
    const names = new Set(all.map(({ comp }) => comp.name));
    let s = state;
    const effects: SagaEffect[] = [];
    for (const { comp } of all) {
      if (this.latest(s, comp.name)) continue;
      const waitsFor = (comp.after ?? []).filter((n) => names.has(n));
      if (!waitsFor.every((n) => this.latest(s, n)?.record.status === 'SUCCEEDED')) continue;
      s = this.startCompensation(s, comp);
      effects.push({ type: 'send', command: comp.invoke(data) });
    }
    const statuses = all.map(({ comp }) => this.latest(s, comp.name)?.record.status);
    if (statuses.includes('RUNNING')) return { state: { ...s, status: 'COMPENSATING' }, effects };
    if (statuses.every((st) => st === 'SUCCEEDED')) {
      const done = this.cancelled(s);
      return { state: done.state, effects: [...effects, ...done.effects] };
    }
    const given = all
      .filter(({ comp }) => this.latest(s, comp.name)?.record.status === 'FAILED')
      .map(({ comp }) => `${comp.name} (${this.latest(s, comp.name)!.record.error})`);
    return {
      state: { ...s, status: 'FAILED' },
      effects: [...effects, { type: 'failed', error: `compensation ${given.join(', ')} failed` }],
    };
  }

  private cancelled(state: SagaState): Transition {
    const reason = state.reason ?? 'rejected';
    return { state: { ...state, status: 'CANCELLED' }, effects: [{ type: 'cancelled', reason, detail: state.detail }] };
  }

  /** The compensations of the steps at or below `index`, newest step first. */
  private compensations(index: number): { index: number; comp: Compensation<D> }[] {
    return this.definition.steps
      .slice(0, index + 1)
      .map((st, i) => ({ index: i, comp: st.compensation }))
      .reverse()
      .filter((c): c is { index: number; comp: Compensation<D> } => !!c.comp);
  }

  private compensationNamed(name: string): Compensation<D> | undefined {
    return this.definition.steps.find((st) => st.compensation?.name === name)?.compensation;
  }

  /** The newest execution of the compensation `name`, with its index in the history. */
  private latest(state: SagaState, name: string): { index: number; record: StepRecord } | undefined {
    for (let i = state.history.length - 1; i >= 0; i--) {
      const record = state.history[i];
      if (record.kind === 'compensation' && record.name === name) return { index: i, record };
    }
    return undefined;
  }

  /** The remote executions the saga waits on, with when each is due. */
  private inFlight(state: SagaState): { index: number; record: StepRecord; due: Date }[] {
    const out: { index: number; record: StepRecord; due: Date }[] = [];
    const waiting = (i: number, r: StepRecord) =>
      r.status === 'RUNNING' &&
      !(r.kind === 'action' && this.definition.steps[state.step]?.local) &&
      out.push({ index: i, record: r, due: new Date(r.dueAt ?? Date.parse(r.startedAt) + this.options.stepTimeoutMs) });
    if (this.compensating(state)) {
      for (const { comp } of this.compensations(state.step)) {
        const l = this.latest(state, comp.name);
        if (l) waiting(l.index, l.record);
      }
    } else if (state.status === 'RUNNING' && state.history.length > 0) {
      waiting(state.history.length - 1, state.history[state.history.length - 1]);
    }
    return out;
  }

  /**
   * When the attempt's business deadline passes (ms since the epoch): the deadline after its first step's start — or
   * after an operator's resume, which gives what it sends again a deadline of its own.
   */
  private deadlineAt(state: SagaState): number {
    const from = [...state.history].reverse().find((h) => h.note?.startsWith('resumed')) ?? state.history[0];
    const started = from ? Date.parse(from.startedAt) : this.clock().getTime();
    return started + (this.definition.deadlineMs ?? this.options.sagaDeadlineMs);
  }

  private stepTimeout(index: number): number {
    return this.definition.steps[index]?.timeoutMs ?? this.options.stepTimeoutMs;
  }

  /** A compensation's deadline before its `attempt`-th send is answered: its first deadline doubled per send, capped. */
  private backoff(comp: Compensation<D>, attempt: number): number {
    const first = comp.timeoutMs ?? this.options.stepTimeoutMs;
    return Math.min(first * 2 ** Math.min(attempt - 1, 30), Math.max(first, this.options.compensationBackoffMaxMs));
  }

  private dueAt(afterMs: number): string {
    return new Date(this.clock().getTime() + afterMs).toISOString();
  }

  private start(state: SagaState, index: number, name: string, kind: 'action', note?: string): SagaState {
    const local = !!this.definition.steps[index].local;
    const record: StepRecord = {
      name,
      kind,
      status: 'RUNNING',
      startedAt: this.clock().toISOString(),
      finishedAt: null,
      error: null,
      attempts: local ? 0 : 1,
      ...(local ? {} : { dueAt: this.dueAt(this.stepTimeout(index)) }),
      ...(note ? { note } : {}),
    };
    return { ...state, step: index, history: [...state.history, record] };
  }

  private startCompensation(state: SagaState, comp: Compensation<D>, note?: string): SagaState {
    const record: StepRecord = {
      name: comp.name,
      kind: 'compensation',
      status: 'RUNNING',
      startedAt: this.clock().toISOString(),
      finishedAt: null,
      error: null,
      attempts: 1,
      dueAt: this.dueAt(this.backoff(comp, 1)),
      ...(note ? { note } : {}),
    };
    return { ...state, history: [...state.history, record] };
  }

  /** Closes the history record at `index`. */
  private close(state: SagaState, index: number, status: StepStatus, error: string | null): SagaState {
    const r = state.history[index];
    const { dueAt: _, ...rest } = r;
    const history = [...state.history];
    history[index] = { ...rest, status, finishedAt: this.clock().toISOString(), error: error ?? r.error };
    return { ...state, history };
  }

  private update(state: SagaState, index: number, patch: Partial<StepRecord>): SagaState {
    const history = [...state.history];
    history[index] = { ...history[index], ...patch };
    return { ...state, history };
  }

  private ignore(state: SagaState): Transition {
    return { state, effects: [], ignored: true };
  }
}
