import { createInterface } from 'node:readline/promises';
import {
  ChargeView,
  cursorOf,
  CommandRefused,
  formatMoney,
  ReservationView,
  SagaListQuery,
  SagaResumed,
  SagaRetried,
  SagaSummary,
  SagaView,
  Subjects,
} from '@orderflow/contracts';
import { CliFailure, UsageError } from '../cli.errors';
import { PipelineClient } from '../client';
import { inOrder } from '../bulk';
import { pacer, shellQuote } from '../context';
import { resumePlan, retryPlan } from './definition';
import { newestAttempts } from './newest';

export type SagaAction = 'retry' | 'resume';

/** One saga's line of `saga retry|resume --json` (docs/operations.md). */
export interface OperateResult {
  sagaId: string | null;
  orderId: string | null;
  action: 'retried' | 'resumed' | 'skipped' | 'would_retry' | 'would_resume';
  newSagaId: string | null;
  reason: string | null;
  /** Steps or compensations that will run. */
  plan: string[];
  /** What the participants already recorded for the order, per attempt. */
  recorded: string[];
  /**
   * Why it was skipped: `not_found`, `not_actionable` (its status, or not the newest attempt), `concurrent` (another
   * operator acted on the order while this command ran), `refused` (by the order service, or it did not answer),
   * `interrupted`.
   */
  skippedBecause?: 'not_found' | 'not_actionable' | 'concurrent' | 'refused' | 'interrupted';
  /** With `--wait`: where the order's newest attempt stands once it ended, or when waiting gave up. */
  outcome?: { sagaId: string; attempt: number; status: string; reason: string | null; step: string | null; since: string } | null;
}

export interface OperateOptions {
  why: string;
  /** With `status`: only sagas whose id sorts after this one (where an interrupted run stopped). */
  after?: string;
  /** With `status`: at most this many sagas of the snapshot. */
  limit?: number;
  dryRun?: boolean;
  rate?: number;
  yes?: boolean;
  /** Wait up to this many ms for each acted-on order's attempt to end (COMPLETED, CANCELLED, or FAILED again). */
  wait?: number;
  status?: string;
  reason?: string;
  since?: string;
}

const SPEC = {
  retry: { wanted: 'CANCELLED', subject: Subjects.OrderRetrySaga, done: Subjects.OrderSagaRetried, did: 'retried', would: 'would_retry' },
  resume: { wanted: 'FAILED', subject: Subjects.OrderResumeSaga, done: Subjects.OrderSagaResumed, did: 'resumed', would: 'would_resume' },
} as const;

/** More sagas than this need `--yes` (or an answer at the prompt). */
const CONFIRM_ABOVE = 10;

/**
 * Sagas planned, and commands awaiting the order app's answer, at once: it handles commands that arrive together in one
 * batch transaction, so a bulk run goes many times faster than one at a time. `--rate` still caps commands per second.
 */
const IN_FLIGHT = 16;

/**
 * `saga retry|resume`: picks the attempts (ids, or every attempt with the wanted status), plans each one
 * (refusing COMPLETED, RUNNING and superseded attempts with a reason), and — unless `dryRun` — sends one
 * operator command per saga at `rate` and reports what the order app answered.
 * @throws UsageError on a bad combination of arguments, or more than 10 sagas without `yes` off a terminal.
 */
export async function operate(
  client: PipelineClient,
  action: SagaAction,
  ids: string[],
  opts: OperateOptions,
): Promise<{ dryRun: boolean; results: OperateResult[] }> {
  const spec = SPEC[action];
  if (ids.length && opts.status) throw new UsageError(`give saga or order ids, or --status ${spec.wanted}, not both`);
  if (!ids.length && !opts.status) throw new UsageError(`give saga or order ids, or --status ${spec.wanted}`);
  if (opts.status && opts.status !== spec.wanted)
    throw new UsageError(`saga ${action} takes --status ${spec.wanted}, got "${opts.status}"`);
  if (!opts.status && (opts.reason || opts.since))
    throw new UsageError('--reason and --since select sagas with --status; they cannot be combined with ids');

  if (!opts.status && (opts.after || opts.limit)) throw new UsageError('--after and --limit page through --status; give ids or --status');

  const ask = opts.status
    ? await snapshot(client, { status: [spec.wanted], reason: opts.reason, since: opts.since }, opts.after, opts.limit)
    : ids;
  if (opts.status) process.stderr.write(`snapshot: ${ask.length} ${spec.wanted} saga(s)${opts.after ? ` after ${opts.after}` : ''}\n`);
  const results: OperateResult[] = new Array(ask.length);
  // Ctrl-C while planning: nothing has been sent, so the same command starts over.
  const planning = await inOrder(
    'plan',
    ask.map((id, i) => ({ id, i })),
    IN_FLIGHT,
    async ({ id, i }) => void (results[i] = await plan(client, action, id)),
  );
  if (planning.interrupted) {
    process.exitCode = 130;
    process.stderr.write(`interrupted while planning (${planning.taken} of ${ask.length}): nothing was sent\n`);
    return { dryRun: true, results: results.slice(0, planning.taken) };
  }
  const todo = results.filter((r) => r.action === spec.would);
  if (opts.dryRun || todo.length === 0) return { dryRun: !!opts.dryRun, results };
  if (todo.length > CONFIRM_ABOVE && !opts.yes) await confirm(`${action} ${todo.length} sagas`);

  const pace = pacer(opts.rate);
  // Ctrl-C lets the commands in flight finish, then stops: the report says what was done and how to carry on.
  const run = await inOrder(action, todo, IN_FLIGHT, async (r) => {
    await pace();
    try {
      const answer = await client.command<SagaRetried | SagaResumed | CommandRefused>(
        spec.subject,
        { sagaId: r.sagaId, why: opts.why },
        [spec.done, Subjects.OrderCommandRefused],
        { check: `orderflow saga show ${r.orderId}`, signed: true },
      );
      if (answer.subject === spec.done) Object.assign(r, { action: spec.did, newSagaId: (answer.body as SagaRetried).newSagaId ?? null });
      else
        Object.assign(r, {
          action: 'skipped',
          reason: `refused by the order service: ${(answer.body as CommandRefused).reason}`,
          skippedBecause: 'refused',
        });
    } catch (e) {
      if (!(e instanceof CliFailure)) throw e;
      Object.assign(r, { action: 'skipped', reason: e.message, skippedBecause: 'refused' });
    }
  });
  if (run.interrupted) {
    for (const r of todo)
      if (r.action === spec.would) Object.assign(r, { action: 'skipped', reason: 'not sent: interrupted', skippedBecause: 'interrupted' });
    process.exitCode = 130;
    // Every saga up to the last one taken was sent (they are taken in order): carry on after it.
    const last = todo[run.taken - 1]?.sagaId;
    if (opts.status && last) process.stderr.write(`interrupted; carry on with: ${continueCommand(action, opts, last)}\n`);
  }
  if (opts.wait && !run.interrupted)
    await waitForOutcomes(
      client,
      results.filter((r) => r.action === spec.did),
      opts.wait,
    );
  return { dryRun: false, results };
}

/** Attempt states an operator's action waits for: ended, or FAILED (given up again: an operator's turn). */
const SETTLED = ['COMPLETED', 'CANCELLED', 'FAILED'];

/**
 * Polls the acted-on orders' newest attempts (one query for all, every 500 ms) until each has settled or `timeoutMs`
 * passed; sets each result's `outcome` (for one still running: the step it waits on, since when). A FAILED resume
 * counts as settled only once it left FAILED.
 */
async function waitForOutcomes(client: PipelineClient, done: OperateResult[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const startedAt = new Date().toISOString();
  for (;;) {
    const newest = await newestAttempts(
      client,
      done.map((r) => r.orderId!),
    );
    let open = 0;
    for (const r of done) {
      const s = newest.get(r.orderId!);
      r.outcome = s ? { sagaId: s.sagaId, attempt: s.attempt, status: s.status, reason: s.reason, step: s.step, since: s.updatedAt } : null;
      if (!s || !SETTLED.includes(s.status) || (r.action === 'resumed' && s.status === 'FAILED' && s.updatedAt < startedAt)) open++;
    }
    if (!open || Date.now() > deadline) return;
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** Plans `action` for saga or order `id`: skipped (with why) unless it is the order's newest attempt in the wanted status. */
async function plan(client: PipelineClient, action: SagaAction, id: string): Promise<OperateResult> {
  const spec = SPEC[action];
  const view = await client.query<SagaView>(Subjects.QuerySaga, { id });
  const skip = (reason: string, because: OperateResult['skippedBecause'] = 'not_actionable'): OperateResult => ({
    sagaId: view?.sagaId ?? null,
    orderId: view?.orderId ?? null,
    action: 'skipped',
    newSagaId: null,
    reason,
    plan: [],
    recorded: [],
    skippedBecause: because,
  });
  if (!view) return skip(`no saga or order ${id}`, 'not_found');
  // By order id, the attempt acted on is the newest when this command ran: one another operator started since (two
  // shells retrying the same order at once) is not what this operator saw, and is left to them to look at.
  const byOrder = view.sagaId !== id;
  const lastRetry = view.actions.filter((a) => a.action === 'retry').pop();
  if (byOrder && view.attempt > 1 && lastRetry && Date.parse(lastRetry.at) >= performance.timeOrigin)
    return skip(
      `attempt ${view.attempt} was started by ${lastRetry.operator}'s retry at ${lastRetry.at}, after this command was given: look at it (orderflow saga show ${view.orderId}) and ${action} again if you still mean to`,
      'concurrent',
    );
  const newest = view.attempts[view.attempts.length - 1];
  if (view.status !== spec.wanted) return skip(`saga is ${view.status}: only a ${spec.wanted} saga can be ${spec.did}`);
  if (newest.sagaId !== view.sagaId)
    return skip(`attempt ${view.attempt} is not the order's newest (attempt ${newest.attempt} is ${newest.status})`);
  return {
    sagaId: view.sagaId,
    orderId: view.orderId,
    action: spec.would,
    newSagaId: null,
    reason: null,
    plan: action === 'retry' ? retryPlan(view) : resumePlan(view),
    recorded: await recorded(client, view),
  };
}

/** Page size of the snapshot: 1000 summaries are a few hundred KB, far below NATS's 1 MiB payload. */
const PAGE = 1000;

/**
 * The ids of every saga matching `filter`, after `after`, in saga-id order (at most `limit`): taken in full before
 * anything is sent, so sagas that match later are not swept in, and paged (keyset on the id) so that no reply is big.
 */
async function snapshot(
  client: PipelineClient,
  filter: Omit<SagaListQuery, 'order' | 'after' | 'limit'>,
  after?: string,
  limit = Infinity,
) {
  const ids: string[] = [];
  for (let cursor = after; ids.length < limit;) {
    const page =
      (await client.query<SagaSummary[]>(Subjects.QuerySagas, {
        ...filter,
        order: 'id',
        after: cursor,
        limit: Math.min(PAGE, limit - ids.length),
      } satisfies SagaListQuery)) ?? [];
    ids.push(...page.map((s) => s.sagaId));
    if (page.length < PAGE) break;
    cursor = cursorOf(page[page.length - 1], 'id');
  }
  return ids;
}

/** The command that carries on an interrupted bulk run: the same selection, after the last saga it handled. */
function continueCommand(action: SagaAction, opts: OperateOptions, last: string): string {
  return [
    `orderflow saga ${action} --status ${opts.status}`,
    ...(opts.reason ? [`--reason ${shellQuote(opts.reason)}`] : []),
    ...(opts.since ? [`--since ${opts.since}`] : []),
    `--after ${last}`,
    ...(opts.rate ? [`--rate ${opts.rate}`] : []),
    `--why ${shellQuote(opts.why)}`,
    '--yes',
  ].join(' ');
}

/** What inventory and payment recorded for the order, per attempt, asked over their query endpoints. */
async function recorded(client: PipelineClient, view: SagaView): Promise<string[]> {
  const attempt = (sagaId: string) => `attempt ${view.attempts.find((a) => a.sagaId === sagaId)?.attempt ?? sagaId}`;
  const noAnswer = (who: string) => (e: Error) => [`${who}: no answer (${e.message})`];
  const inventory = client
    .query<ReservationView[]>(Subjects.QueryReservations, { orderId: view.orderId })
    .then(
      (rs = []) =>
        rs.length
          ? rs.map(
              (r) =>
                `inventory: ${attempt(r.sagaId)} ${r.status}, ${r.units} unit(s)${r.items.length ? ` (${r.items.map((i) => `${i.sku}×${i.quantity}`).join(', ')})` : ''}`,
            )
          : ['inventory: nothing recorded'],
      noAnswer('inventory'),
    );
  const payment = client
    .query<ChargeView[]>(Subjects.QueryCharges, { orderId: view.orderId })
    .then(
      (cs = []) =>
        cs.length
          ? cs.map(
              (c) =>
                `payment: ${attempt(c.sagaId)} ${c.declined ? `declined (${c.declined})` : `charged ${formatMoney(c.charged, c.currency)}, refunded ${formatMoney(c.refunded, c.currency)}`}`,
            )
          : ['payment: nothing recorded'],
      noAnswer('payment'),
    );
  return (await Promise.all([inventory, payment])).flat();
}

/** Asks on the terminal; off a terminal, `--yes` is required. @throws UsageError when not confirmed. */
export async function confirm(what: string): Promise<void> {
  if (!process.stdin.isTTY) throw new UsageError(`about to ${what}: pass --yes to confirm`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${what}? [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError(`did not ${what}: not confirmed`);
}
