import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { apply as mergePatch } from 'json-merge-patch';
import {
  CommandRefused,
  DeadLetterReplayed,
  Headers,
  MalformedMessageError,
  MAX_REPLAYS,
  messageTypeOf,
  parseMessage,
  SagaStatus,
  SagaView,
  Subjects,
} from '@orderflow/contracts';
import { CliFailure } from '../cli.errors';
import { PipelineClient } from '../client';
import { inOrder } from '../bulk';
import { pacer, shellQuote } from '../context';
import { progress } from '../progress';
import { adviceFor } from './advice';
import { DeadLetters, DlqMessage, StateRecord } from './dead-letters';

/**
 * Why an entry was skipped: `not_found` (no such SEQ), `not_replayable` (the plan's rules: gone, replayed before, its
 * saga moved on), `refused` (the order service refused, or did not answer), `concurrent` (another operator acted on it
 * first), `interrupted` (Ctrl-C, or a canary halted).
 */
export type SkippedBecause = 'not_found' | 'not_replayable' | 'refused' | 'concurrent' | 'interrupted';

/** One entry's line of `dlq replay --json` / `dlq purge --json` (docs/operations.md). */
export interface EntryResult {
  seq: number;
  action: 'replayed' | 'skipped' | 'invalid' | 'purged' | 'would_replay' | 'would_purge';
  reason: string | null;
  skippedBecause: SkippedBecause | null;
  newMsgId: string | null;
  /** With `--patch` or `--body`: a unified diff of the body (null when the change is too large to diff). */
  diff: string | null;
}

/**
 * A result that counts against the run's exit code (1): invalid, refused, raced or not found — and, for SEQs asked for
 * by name, one the plan would not replay. A skip that is a no-op by design (purging what is purged) does not.
 */
export const failed = (r: EntryResult, named: boolean): boolean =>
  r.action === 'invalid' ||
  (r.action === 'skipped' &&
    (['not_found', 'refused', 'concurrent'].includes(r.skippedBecause ?? '') || (named && r.skippedBecause === 'not_replayable')));

export interface Report {
  dryRun: boolean;
  /** The bodies were changed (`--patch`, `--body`): each entry has a diff. */
  changed: boolean;
  /** A canary halted, or Ctrl-C stopped the run. */
  halted: boolean;
  /** When it halted: the command that carries on from where it stopped. */
  resume: string | null;
  results: EntryResult[];
}

export interface ReplayOptions {
  why: string;
  dryRun?: boolean;
  force?: boolean;
  /** An RFC 7386 JSON merge patch (an object) applied to each body. */
  patch?: Record<string, unknown>;
  /** A whole new body for each entry (`--body FILE`), instead of the stored one. */
  body?: Record<string, unknown>;
  rate?: number;
  canary?: boolean;
  maxFailRate: number;
  /** How long a canary round waits for each replay's outcome. */
  timeoutMs: number;
  /** To print in the resume command: how the patch or body was given. */
  patchArg?: string;
  bodyArg?: string;
  /** For a `--all` run: the selection options that carry on after SEQ `after` (otherwise the rest is listed by SEQ). */
  selection?: (after: number) => string[];
}

/** Entries planned at once (each plan asks the order app for the saga's state). */
const PLANNING_IN_FLIGHT = 16;

const FINAL: SagaStatus[] = ['COMPLETED', 'CANCELLED', 'FAILED'];

interface Planned {
  entry: DlqMessage;
  result: EntryResult;
}

/**
 * `dlq replay`: plans each entry of the snapshot `entries` (skipping, with the reason, what was replayed
 * before, what its saga has moved past, what replaying cannot fix), then asks the order app — one signed
 * `order.cmd.replay-dead-letter` per entry — to republish the original, or patched, body to its original subject
 * with a new `Nats-Msg-Id` and lineage headers (the order app checks the rules again, and may refuse); records each
 * entry's state and one signed `ops.dlq.replayed` event. With `canary`, it replays 1, then 2, 4, … entries a
 * round, waits for their outcomes, and halts when more than `maxFailRate` of a round is dead-lettered again.
 */
export async function replay(client: PipelineClient, dlq: DeadLetters, entries: DlqMessage[], opts: ReplayOptions): Promise<Report> {
  const planned: Planned[] = new Array(entries.length);
  const changed = opts.patch !== undefined || opts.body !== undefined;
  // Ctrl-C while planning: nothing has been replayed, so the same command starts over.
  const planning = await inOrder(
    'plan',
    entries.map((entry, i) => ({ entry, i })),
    PLANNING_IN_FLIGHT,
    async ({ entry, i }) => void (planned[i] = await plan(client, dlq, entry, opts)),
  );
  if (planning.interrupted) {
    process.exitCode = 130;
    process.stderr.write(`interrupted while planning (${planning.taken} of ${entries.length}): nothing was replayed\n`);
    return { dryRun: true, changed, halted: true, resume: null, results: planned.slice(0, planning.taken).map((p) => p.result) };
  }
  const todo = planned.filter((p) => p.result.action === 'would_replay');
  const report: Report = { dryRun: !!opts.dryRun, changed, halted: false, resume: null, results: planned.map((p) => p.result) };
  if (opts.dryRun || todo.length === 0) return report;

  const pace = pacer(opts.rate);
  const bar = progress('replay', todo.length);
  const sent: { seq: number; newMsgId: string }[] = [];
  const send = async (p: Planned) => {
    await pace();
    bar.tick();
    const answer = await client
      .command<DeadLetterReplayed | CommandRefused>(
        Subjects.OrderReplayDeadLetter,
        {
          dlqSeq: p.entry.seq,
          originalId: p.entry.originalId,
          why: opts.why,
          force: opts.force || undefined,
          patch: opts.patch,
          body: opts.body,
        },
        [Subjects.OrderDeadLetterReplayed, Subjects.OrderCommandRefused],
        { signed: true, check: `orderflow dlq show ${p.entry.seq}` },
      )
      .catch((e: Error) => {
        if (!(e instanceof CliFailure)) throw e;
        return { subject: 'failed', body: { reason: e.message } as CommandRefused };
      });
    if (answer.subject !== Subjects.OrderDeadLetterReplayed) {
      const { reason, code } = answer.body as Partial<CommandRefused>;
      const refused = answer.subject === Subjects.OrderCommandRefused ? `refused by the order service: ${reason}` : reason;
      // The order service replays a dead letter once at a time: the loser of a race learns who replayed it, and when.
      const raced = code === 'already_replayed' && !p.entry.record?.newMsgId;
      Object.assign(p.result, { action: 'skipped', reason: refused, skippedBecause: raced ? 'concurrent' : 'refused' });
      return;
    }
    const { newMsgId, operator } = answer.body as DeadLetterReplayed;
    await recordReplay(dlq, p.entry.id, { state: 'replayed', newMsgId, at: new Date().toISOString(), operator, why: opts.why });
    Object.assign(p.result, { action: 'replayed', newMsgId });
    sent.push({ seq: p.entry.seq, newMsgId });
  };
  // Ctrl-C finishes the replay in flight, then stops: the report names the command that carries on.
  let interrupted = false;
  const onInterrupt = () => (interrupted = true);
  process.once('SIGINT', onInterrupt);
  try {
    if (!opts.canary) {
      for (const [i, p] of todo.entries()) {
        if (interrupted) {
          const rest = todo.slice(i);
          for (const r of rest)
            Object.assign(r.result, { action: 'skipped', reason: 'not replayed: interrupted', skippedBecause: 'interrupted' });
          Object.assign(report, { halted: true, resume: resumeCommand(rest, todo[i - 1], opts) });
          process.exitCode = 130;
          break;
        }
        await send(p);
      }
    } else {
      const watch = watchDeadLetters(client);
      try {
        for (let i = 0, size = 1; i < todo.length; i += size, size *= 2) {
          const round = todo.slice(i, i + size);
          const startedAt = new Date().toISOString();
          for (const p of round) await send(p);
          const failed = (
            await Promise.all(round.map((p) => p.result.action !== 'replayed' || outcome(client, p, startedAt, watch.seen, opts.timeoutMs)))
          ).filter((ok) => !ok).length;
          if (failed / round.length > opts.maxFailRate) {
            const rest = todo.slice(i + size);
            for (const p of rest)
              Object.assign(p.result, { action: 'skipped', reason: 'not replayed: the canary halted', skippedBecause: 'interrupted' });
            report.halted = true;
            report.resume = rest.length ? resumeCommand(rest, round[round.length - 1], opts) : null;
            break;
          }
        }
      } finally {
        watch.stop();
      }
    }
  } finally {
    bar.stop();
    process.removeListener('SIGINT', onInterrupt);
    if (sent.length)
      await opsEvent(client, 'dlq.replayed', {
        action: 'replay',
        entries: sent,
        why: opts.why,
        patch: opts.patch ?? null,
        // The body itself is kept by the order app with the action (operator_actions.body); the audit names it.
        body: opts.body ? digestOf(opts.body) : null,
        canary: !!opts.canary,
        halted: report.halted,
      });
  }
  return report;
}

/** What replaying one entry would do: `would_replay` with the body to send, or why not. */
async function plan(client: PipelineClient, dlq: DeadLetters, entry: DlqMessage, opts: ReplayOptions): Promise<Planned> {
  const result: EntryResult = { seq: entry.seq, action: 'would_replay', reason: null, skippedBecause: null, newMsgId: null, diff: null };
  const out = (action: EntryResult['action'], reason: string): Planned => ({
    entry,
    result: Object.assign(result, { action, reason, skippedBecause: action === 'skipped' ? 'not_replayable' : null }),
  });
  const stored = (await dlq.message(entry)).data;
  if (!stored && opts.body === undefined) return out('skipped', 'its message is gone from the stream (purged, or past its max age)');
  const advice = await adviceFor(client, entry, stored);
  const changed = opts.patch !== undefined || opts.body !== undefined;
  if (advice.verdict === 'gone' && !opts.body) return out('skipped', advice.text);
  if (advice.verdict === 'replayed' && !opts.force) return out('skipped', advice.text);
  if (advice.verdict === 'resolved' && !opts.force) return out('skipped', `${advice.text} (--force replays it anyway)`);
  if (entry.replayCount >= MAX_REPLAYS && !opts.force) return out('skipped', `replayed ${entry.replayCount} times already: needs --force`);
  if (advice.verdict === 'moved_on' && !opts.force) return out('skipped', `${advice.text} (--force replays it anyway)`);
  if ((advice.verdict === 'patch' || advice.verdict === 'body') && !changed) return out('invalid', advice.text);

  const type = messageTypeOf(entry.subject);
  let original: unknown = stored && Buffer.from(stored).toString('utf8');
  try {
    original = JSON.parse(original as string);
  } catch {
    // not JSON: diffed as text
  }
  let next: unknown = original;
  if (opts.body !== undefined) next = opts.body;
  else if (entry.cutFrom !== null) return out('invalid', advice.text);
  else if (opts.patch !== undefined) {
    if (typeof original !== 'object' || original === null)
      return out('invalid', 'the body is not JSON: a merge patch cannot apply to it; replace it whole with --body FILE');
    next = mergePatch(structuredClone(original), opts.patch);
  }
  if (changed) result.diff = unifiedDiff(original, next);
  try {
    if (type) parseMessage(type, Buffer.from(typeof next === 'string' ? next : JSON.stringify(next)));
  } catch (e) {
    if (!(e instanceof MalformedMessageError)) throw e;
    const what = opts.body !== undefined ? 'the new body' : opts.patch !== undefined ? 'the patched body' : 'the body';
    return out('invalid', `${what} fails validation: ${e.message}${changed ? '' : ' (fix it with --patch or --body FILE)'}`);
  }
  return { entry, result };
}

/** The sha256 and size of `body` as sent (JSON). */
const digestOf = (body: object) => {
  const text = JSON.stringify(body);
  return { sha256: createHash('sha256').update(text).digest('hex'), bytes: Buffer.byteLength(text) };
};

/** Edits beyond this many lines are not worth a diff (and would take long to find): the result says so instead. */
const MAX_DIFF_EDITS = 2000;

/** A unified diff of two bodies (JSON pretty-printed, text as is); null when they differ too much to diff. */
function unifiedDiff(a: unknown, b: unknown): string | null {
  const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2)) + '\n';
  const patch = createTwoFilesPatch('original', 'new', text(a), text(b), '', '', { context: 2, maxEditLength: MAX_DIFF_EDITS });
  return patch === undefined ? null : patch.replace(/^=+\n/, '').trimEnd();
}

/**
 * Records a replay on entry `id`: a compare-and-set on its state record, read again and retried when another operator
 * wrote it meanwhile (both replays happened: `replays` counts them).
 */
async function recordReplay(dlq: DeadLetters, id: string, record: StateRecord): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const { record: before, revision } = await dlq.recordOf(id);
    const replays = (before?.replays ?? (before?.newMsgId ? 1 : 0)) + 1;
    if (await dlq.setState(id, { ...record, replays }, revision)) return;
  }
  throw new CliFailure(`could not record the replay of ${id}: its state record keeps changing`);
}

/** The `Dlq-Msg-Id`s of dead letters arriving while a canary runs: a replay seen here failed again. */
function watchDeadLetters(client: PipelineClient): { seen: Set<string>; stop: () => void } {
  const seen = new Set<string>();
  const sub = client.nc.subscribe(client.ns.subject('dlq.>'));
  (async () => {
    for await (const m of sub) {
      const id = m.headers?.get(Headers.Dlq.MsgId);
      if (id) seen.add(id);
    }
  })();
  return { seen, stop: () => sub.unsubscribe() };
}

/**
 * Waits for a replayed entry's outcome: false when it is dead-lettered again (or nothing happens within
 * `timeoutMs`), true once its saga reaches a final state after the replay — or, for a message outside any
 * saga, once a second passed without a dead letter.
 */
async function outcome(client: PipelineClient, p: Planned, since: string, seen: Set<string>, timeoutMs: number): Promise<boolean> {
  const id = p.entry.sagaId ?? p.entry.orderId;
  const deadline = Date.now() + timeoutMs;
  const quietUntil = Date.now() + 1000;
  while (Date.now() < deadline) {
    if (seen.has(p.result.newMsgId!)) return false;
    if (!id && Date.now() >= quietUntil) return true;
    if (id) {
      const saga = await client.query<SagaView>(Subjects.QuerySaga, { id }, 2000).catch(() => undefined);
      if (saga && FINAL.includes(saga.status) && saga.updatedAt >= since) return true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * The command that replays `rest`: for a `--all` run its selection after the last entry handled (`last`), otherwise
 * the SEQs of `rest`.
 */
function resumeCommand(rest: Planned[], last: Planned | undefined, opts: ReplayOptions): string {
  const after = last?.entry.seq ?? rest[0].entry.seq - 1;
  return [
    'orderflow dlq replay',
    ...(opts.selection ? opts.selection(after) : rest.map((p) => p.entry.seq)),
    ...(opts.canary ? ['--canary', `--max-fail-rate ${opts.maxFailRate}`] : []),
    ...(opts.patchArg ? [`--patch ${shellQuote(opts.patchArg)}`] : []),
    ...(opts.bodyArg ? [`--body ${shellQuote(opts.bodyArg)}`] : []),
    ...(opts.force ? ['--force'] : []),
    `--why ${shellQuote(opts.why)}`,
  ].join(' ');
}

/**
 * Records an operator action on the OPS stream (`ops.<action>`), the audit log of `dlq replay|purge`: signed by the
 * operator (`Orderflow-Signer` / `Orderflow-Signature` headers), whose name is the key's (`operator-<name>`).
 */
export async function opsEvent<T>(client: PipelineClient, action: string, body: { entries: T[]; [field: string]: unknown }): Promise<void> {
  // One event per AUDIT_CHUNK entries (`part` of `parts`): a bulk run over thousands would not fit NATS's max_payload.
  const at = new Date().toISOString();
  const parts = Math.max(1, Math.ceil(body.entries.length / AUDIT_CHUNK));
  for (let part = 1; part <= parts; part++) {
    const entries = body.entries.slice((part - 1) * AUDIT_CHUNK, part * AUDIT_CHUNK);
    await client.publishSigned(Subjects.operatorEvent(action), { ...body, entries, part, parts, operator: client.operator, at });
  }
}

/** Entries per audit event: about 200 bytes each, so an event stays far below NATS's 1 MiB max_payload. */
const AUDIT_CHUNK = 1000;
