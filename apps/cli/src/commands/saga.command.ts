import { Command } from 'commander';
import { CancelReasons, cursorOf, SagaStatuses, SagaSummary, SagaTypeView, SagaView, Subjects } from '@orderflow/contracts';
import { standing } from '../saga/newest';
import { CliFailure, UsageError } from '../cli.errors';
import { PipelineClient } from '../client';
import { collect, once, rate, since, uuid, wholeNumber, withClient } from '../context';
import { DeadLetters } from '../dlq/dead-letters';
import { countsLine, print, printable, when } from '../output';
import { operate, OperateResult, SagaAction } from '../saga/operate';

/** An option value that must be one of `allowed`. @throws UsageError naming them. */
const oneOf =
  (flag: string, allowed: () => readonly string[]) =>
  (value: string): string => {
    if (!allowed().includes(value)) throw new UsageError(`${flag} must be one of ${allowed().join(', ')}, got "${value}"`);
    return value;
  };
const status = (value: string, all: string[]) => collect(oneOf('--status', () => SagaStatuses)(value), all);
const reason = once(
  '--reason',
  oneOf('--reason', () => CancelReasons),
);
const step = once('--step', (value: string) => value);
const sinceOnce = once('--since', since);

/** @throws UsageError (exit 2) when no saga type the order app runs has a step or compensation named `name`. */
async function checkStep(client: PipelineClient, name: string): Promise<void> {
  const types = (await client.query<SagaTypeView[]>(Subjects.QuerySagaTypes, {})) ?? [];
  const names = [...new Set(types.flatMap((t) => t.steps.map((st) => st.name)))];
  if (!names.includes(name)) throw new UsageError(`--step must be one of ${names.join(', ')}, got "${name}"`);
}

/** `saga show --json`: the order service's view plus the order's dead letters (docs/operations.md). */
async function showSaga(client: PipelineClient, id: string) {
  const view = await client.query<SagaView>(Subjects.QuerySaga, { id });
  if (!view) throw new CliFailure(`no saga or order ${id}`);
  const letters = await (await DeadLetters.open(client)).ofOrder(view.orderId);
  return { ...view, deadLetters: letters.map((e) => ({ seq: e.seq, subject: e.subject, error: e.error, state: e.state })) };
}

function printShow(v: Awaited<ReturnType<typeof showSaga>>): void {
  const out = process.stdout;
  out.write(
    `saga ${v.sagaId} (${v.type}, attempt ${v.attempt} of order ${v.orderId}): ${v.status}${v.reason ? ` (${v.reason}${v.detail ? `: ${v.detail}` : ''})` : ''}${v.traceId ? `\ntrace ${v.traceId}` : ''}\n`,
  );
  print(
    false,
    v,
    ['step', 'kind', 'status', 'started', 'finished', 'ms', 'sends', 'error / note'],
    v.steps.map((s) => [
      s.name,
      s.kind,
      s.status,
      s.startedAt,
      s.finishedAt,
      s.durationMs,
      s.sends,
      [s.error, s.note].filter(Boolean).join('; ') || null,
    ]),
  );
  for (const st of v.steps) if (st.waiting) out.write(printable(`${st.name}: ${st.waiting}`) + '\n');
  out.write(`still to run: ${v.remaining.length ? v.remaining.join(', ') : '-'}\n`);
  out.write(`next deadline: ${v.deadlineAt ? `${v.deadlineAt} (${inSeconds(v.deadlineAt)})` : 'none (it waits on nothing)'}\n`);
  print(
    false,
    v,
    ['attempt', 'saga id', 'status', 'reason'],
    v.attempts.map((a) => [a.attempt, a.sagaId, a.status, a.reason]),
  );
  out.write(v.deadLetters.length ? 'dead letters:\n' : 'dead letters: none\n');
  if (v.deadLetters.length)
    print(
      false,
      v,
      ['seq', 'subject', 'state', 'error'],
      v.deadLetters.map((d) => [d.seq, d.subject, d.state, d.error]),
    );
  out.write(v.actions.length ? 'operator actions:\n' : 'operator actions: none\n');
  if (v.actions.length)
    print(
      false,
      v,
      ['at', 'action', 'saga id', 'operator (verified signer)', 'why'],
      v.actions.map((a) => [
        a.at,
        a.action,
        a.sagaId,
        a.publicKey ? `${a.operator} (${a.publicKey.slice(0, 12)}…)` : `${a.operator} (unsigned, before signing)`,
        a.why,
      ]),
    );
}

/** "in 12 s", "3 s ago": how far `at` is from now. */
function inSeconds(at: string): string {
  const s = Math.round((Date.parse(at) - Date.now()) / 1000);
  return s >= 0 ? `in ${s} s` : `${-s} s ago`;
}

/**
 * The report, and the exit code: 1 when a saga asked for by id was skipped, or any was refused, raced or not found, or
 * (with `--wait`) did not settle in time or settled FAILED.
 */
function printResults(json: boolean, report: { dryRun: boolean; results: OperateResult[] }, named: boolean, waited: boolean): void {
  const outcome = (r: OperateResult) =>
    !r.outcome
      ? null
      : ['COMPLETED', 'CANCELLED'].includes(r.outcome.status)
        ? `attempt ${r.outcome.attempt} ${r.outcome.status}${r.outcome.reason ? ` (${r.outcome.reason})` : ''}`
        : `attempt ${r.outcome.attempt} ${standing({ step: r.outcome.step, status: r.outcome.status as SagaSummary['status'], updatedAt: r.outcome.since })}`;
  print(
    json,
    report,
    ['saga id', 'order id', 'action', 'new saga / reason', waited ? 'outcome' : 'plan'],
    report.results.map((r) => [
      r.sagaId,
      r.orderId,
      r.action,
      r.newSagaId ?? r.reason,
      waited ? outcome(r) : [...r.plan, ...r.recorded].join('\n') || null,
    ]),
    'wrap',
  );
  const count = (a: string) => report.results.filter((r) => r.action === a).length;
  const done = report.results.length - count('skipped');
  process.stderr.write(
    `${report.dryRun ? 'dry run: nothing sent; ' : ''}${done} of ${report.results.length} saga(s) ${report.dryRun ? 'would be acted on' : 'acted on'}, ${count('skipped')} skipped\n`,
  );
  const unsettled = report.results.filter((r) => r.outcome !== undefined && !['COMPLETED', 'CANCELLED'].includes(r.outcome?.status ?? ''));
  if (waited && unsettled.length)
    process.stderr.write(`${unsettled.length} not ended: ${countsLine(unsettled.map((r) => outcome(r) ?? 'unknown'))}\n`);
  const failed = report.results.some(
    (r) => r.action === 'skipped' && r.skippedBecause !== 'interrupted' && (named || r.skippedBecause !== 'not_actionable'),
  );
  if (process.exitCode !== 130 && (failed || unsettled.length)) process.exitCode = 1;
}

function operateCommand(action: SagaAction): Command {
  const wanted = action === 'retry' ? 'CANCELLED' : 'FAILED';
  const about =
    action === 'retry'
      ? 'start a new attempt, from the first step, of CANCELLED sagas (the order goes back to PENDING)'
      : 'send again the step FAILED sagas gave up on, and carry on compensating';
  return new Command(action)
    .description(about)
    .argument('[ids...]', 'saga ids, or order ids (their newest attempt)')
    .option('--status <status>', `every saga with this status (${wanted})`)
    .option('--reason <reason>', 'with --status: only this cancel reason', reason)
    .option('--since <when>', 'with --status: updated since (30m, 1h, 7d, or ISO 8601)', sinceOnce)
    .option(
      '--after <saga-id>',
      'with --status: only sagas whose id sorts after this one (to carry on an interrupted run)',
      uuid('--after'),
    )
    .option('--limit <n>', 'with --status: at most N sagas', wholeNumber('--limit', 1))
    .requiredOption('--why <text>', 'why (recorded with the action)')
    .option('--dry-run', 'print the plan, change nothing')
    .option('--rate <n/s>', 'most commands per second', rate)
    .option('--yes', 'do not ask for confirmation above 10 sagas')
    .option('--wait [ms]', 'wait for each attempt to end (default 30000 ms), showing where the others stand', wholeNumber('--wait', 1))
    .option('--json', 'print JSON')
    .action(
      async (
        ids: string[],
        opts: {
          status?: string;
          reason?: string;
          since?: string;
          after?: string;
          limit?: number;
          why: string;
          dryRun?: boolean;
          rate?: number;
          yes?: boolean;
          wait?: number | true;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        if (!opts.why.trim()) throw new UsageError('--why must say why');
        const wait = opts.wait === true ? 30_000 : opts.wait;
        const report = await withClient(cmd, (c) => operate(c, action, ids, { ...opts, wait }));
        printResults(!!opts.json, report, ids.length > 0, !!wait && !report.dryRun);
      },
    );
}

export function sagaCommand(): Command {
  const saga = new Command('saga').description('look at saga attempts, retry CANCELLED ones, resume FAILED ones (asks the order service)');
  saga
    .command('list')
    .description('saga attempts, most recently updated first')
    .option('--status <status>', `${SagaStatuses.join(' | ')} (repeatable)`, status, [] as string[])
    .option('--reason <reason>', 'cancel reason, e.g. out_of_stock or deadline_exceeded', reason)
    .option('--since <when>', 'updated since (30m, 1h, 7d, or ISO 8601)', sinceOnce)
    .option('--step <name>', 'the step (or compensation) it is at, or failed or timed out on, e.g. chargePayment', step)
    .option('--limit <n>', 'at most N', wholeNumber('--limit', 1), 100)
    .option('--json', 'print JSON')
    .action(
      async (opts: { status: string[]; reason?: string; since?: string; step?: string; limit: number; json?: boolean }, cmd: Command) => {
        const query = {
          status: opts.status.length ? opts.status : undefined,
          reason: opts.reason,
          since: opts.since,
          step: opts.step,
          limit: opts.limit,
        };
        const rows = await withClient(cmd, async (c) => {
          if (opts.step) await checkStep(c, opts.step);
          const out: SagaSummary[] = [];
          // Pages of at most 1000 (keyset on the last row), so that no reply comes near NATS's 1 MiB payload.
          for (let after: string | undefined; ;) {
            const want = Math.min(1000, opts.limit - out.length);
            const page = (await c.query<SagaSummary[]>(Subjects.QuerySagas, { ...query, after, limit: want })) ?? [];
            out.push(...page);
            if (page.length < want || out.length >= opts.limit) break;
            after = cursorOf(page[page.length - 1]);
          }
          return out;
        });
        print(
          !!opts.json,
          rows,
          ['order id', 'attempt', 'status', 'updated', 'step', 'reason', 'saga id'],
          rows.map((r) => [r.orderId, r.attempt, r.status, when(r.updatedAt), r.step, r.reason, r.sagaId]),
          { below: 3 },
        );
      },
    );
  saga
    .command('show')
    .description('an attempt step by step, what is still to run, every attempt of its order, its dead letters and operator actions')
    .argument('<id>', 'a saga id, or an order id (its newest attempt)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const v = await withClient(cmd, (c) => showSaga(c, id));
      if (opts.json) print(true, v);
      else printShow(v);
    });
  saga.addCommand(operateCommand('retry'));
  saga.addCommand(operateCommand('resume'));
  return saga;
}
