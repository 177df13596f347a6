import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { CliFailure, UsageError } from '../cli.errors';
import { PipelineClient } from '../client';
import { BulkRun, inOrder } from '../bulk';
import { rate, shellQuote, since, wholeNumber, withClient } from '../context';
import { adviceFor } from '../dlq/advice';
import { fingerprintOf } from '@orderflow/messaging';
import { DeadLetters, DlqFilter, DlqMessage, DlqState, DlqStates, listed, matches } from '../dlq/dead-letters';
import { EntryResult, opsEvent, replay, Report } from '../dlq/replay';
import { confirm } from '../saga/operate';
import { countsLine, print, printable, shownBody } from '../output';

type FilterOptions = DlqFilter & { limit?: number };

const state = (value: string): DlqState => {
  if (!(DlqStates as string[]).includes(value)) throw new UsageError(`--state must be one of ${DlqStates.join(', ')}, got "${value}"`);
  return value as DlqState;
};
const seqNumber = wholeNumber('SEQ', 1);

/** The filter options shared by list, replay and purge. */
function withFilters(cmd: Command): Command {
  return cmd
    .option('--subject <subject>', 'original subject (NATS wildcards: payment.cmd.*, inventory.>)')
    .option('--error <text>', 'error contains TEXT (any case)')
    .option('--fingerprint <f>', 'error fingerprint (see dlq stats)')
    .option('--order <orderId>', 'entries of one order')
    .option('--state <state>', DlqStates.join(' | '), state)
    .option('--since <when>', 'dead-lettered since (30m, 1h, 7d, or ISO 8601)', since);
}

/** Purges carried out at once (each writes a state record and deletes a message). */
const PURGE_IN_FLIGHT = 16;

/** `--all` with filters, paged: entries after SEQ `after`, at most `limit` of them. */
type BulkOptions = FilterOptions & { all?: boolean; after?: number };

/**
 * How a bulk command picks entries: the given SEQs, or `--all` with filters (and `--after`, `--limit`). Checked before
 * connecting. @throws UsageError when neither or both are given.
 */
function selection(seqs: string[], opts: BulkOptions): number[] | 'all' {
  const filtered = ['subject', 'error', 'fingerprint', 'order', 'state', 'since', 'after', 'limit'].some(
    (k) => opts[k as keyof BulkOptions] !== undefined,
  );
  if (seqs.length && (opts.all || filtered)) throw new UsageError('give SEQs, or --all with filters, not both');
  if (!seqs.length && !opts.all) throw new UsageError('give the SEQs of the entries, or --all (with filters)');
  return opts.all ? 'all' : seqs.map(seqNumber);
}

/**
 * The entries a bulk command works on, taken once when it starts (a snapshot: later dead letters are not swept in),
 * in SEQ order, and the SEQs that do not exist. With `--all`, states the snapshot's size on stderr.
 */
async function select(
  dlq: DeadLetters,
  wanted: number[] | 'all',
  opts: BulkOptions,
): Promise<{ entries: DlqMessage[]; missing: number[] }> {
  const all = await dlq.all();
  if (wanted !== 'all')
    return { entries: all.filter((e) => wanted.includes(e.seq)), missing: wanted.filter((s) => !all.some((e) => e.seq === s)) };
  const matching = all.filter((e) => matches(e, opts) && e.seq > (opts.after ?? 0));
  const entries = matching.slice(0, opts.limit ?? Infinity);
  process.stderr.write(
    `snapshot: ${matching.length} matching dead letter(s)${opts.after ? ` after SEQ ${opts.after}` : ''}${entries.length < matching.length ? `, the first ${entries.length} (--limit)` : ''}\n`,
  );
  return { entries, missing: [] };
}

/** The options that repeat a `--all` selection, for the command that carries on after an interruption. */
function selectionArgs(opts: BulkOptions, after: number): string[] {
  const given: [string, string | undefined][] = [
    ['--subject', opts.subject],
    ['--error', opts.error],
    ['--fingerprint', opts.fingerprint],
    ['--order', opts.order],
    ['--state', opts.state],
    ['--since', opts.since],
  ];
  return ['--all', ...given.filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${shellQuote(v!)}`), `--after ${after}`];
}

/** `--after` and `--limit` of the bulk commands. */
function withPaging(cmd: Command): Command {
  return cmd
    .option('--after <seq>', 'with --all: only entries after this SEQ (where an interrupted run stopped)', seqNumber)
    .option('--limit <n>', 'with --all: at most N entries of the snapshot', wholeNumber('--limit', 1));
}

function printReport(json: boolean, report: Report): void {
  print(
    json,
    report,
    ['seq', 'action', 'reason / new message id', 'diff'],
    report.results.map((r) => [r.seq, r.action, r.reason ?? r.newMsgId, r.diff]),
  );
  process.stderr.write(
    `${report.dryRun ? 'dry run, nothing changed: ' : ''}${countsLine(report.results.map((r) => r.action)) || 'no entries'}\n`,
  );
  if (report.halted) {
    const why =
      process.exitCode === 130 ? 'interrupted' : 'the canary halted: more than the allowed share of a round was dead-lettered again';
    process.stderr.write(`${why}${report.resume ? `; carry on with:\n  ${report.resume}` : ''}\n`);
  }
}

const missingResults = (missing: number[]): EntryResult[] =>
  missing.map((seq) => ({ seq, action: 'skipped', reason: `no dead letter ${seq}`, newMsgId: null, diff: null }));

/** `--patch FILE|-`: an RFC 7386 merge patch, which must be a JSON object. @throws UsageError otherwise. */
function readPatch(path: string): Record<string, unknown> {
  let patch: unknown;
  try {
    patch = JSON.parse(readFileSync(path === '-' ? 0 : path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--patch ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
    throw new UsageError(`--patch ${path}: a merge patch is a JSON object (its fields replace the body's; null removes one)`);
  return patch as Record<string, unknown>;
}

async function openDlq<T>(cmd: Command, work: (client: PipelineClient, dlq: DeadLetters) => Promise<T>): Promise<T> {
  return withClient(cmd, async (client) => work(client, await DeadLetters.open(client)));
}

export function dlqCommand(): Command {
  const dlq = new Command('dlq').description('the dead-letter stream: inspect, replay, purge (OPERATIONS.md)');

  withFilters(dlq.command('list').description('dead letters, oldest first'))
    .option('--limit <n>', 'the newest N (default on a terminal: 50)', wholeNumber('--limit', 1, 1_000_000))
    .option('--all', 'every match (the default with --json or off a terminal)')
    .option('--json', 'print JSON')
    .action(async (opts: FilterOptions & { limit?: number; all?: boolean; json?: boolean }, cmd: Command) => {
      const matching = (await openDlq(cmd, (_, d) => d.all())).filter((e) => matches(e, opts));
      // A terminal gets a screenful; scripts (JSON, a pipe) get everything unless they ask for less.
      const limit = opts.limit ?? (opts.all || opts.json || !process.stdout.isTTY ? Infinity : 50);
      const rows = matching.slice(-limit).map(listed);
      if (rows.length < matching.length)
        process.stderr.write(`the newest ${rows.length} of ${matching.length} dead letters (--all for every one, or --limit N)\n`);
      print(
        !!opts.json,
        rows,
        ['seq', 'time', 'subject', 'order', 'state', 'replays', 'fingerprint', 'error'],
        rows.map((e) => [e.seq, e.time, e.subject, e.orderId, e.state, e.replayCount, e.fingerprint, e.error]),
      );
    });

  dlq
    .command('show')
    .description('one dead letter: every header, the body, the saga of its order, and advice')
    .argument('<seq>', 'DLQ sequence', seqNumber)
    .option('--json', 'print JSON')
    .action(async (seq: number, opts: { json?: boolean }, cmd: Command) => {
      const shown = await openDlq(cmd, async (client, d) => {
        const e = await d.get(seq);
        if (!e) throw new CliFailure(`no dead letter ${seq} (see orderflow dlq list)`);
        const advice = await adviceFor(client, e);
        const message = await d.message(e);
        const { body, bytes, sha256, truncated } = shownBody(message.data);
        const record = e.record && { ...e.record, verified: await d.verifyRecord(e.id, e.record) };
        return {
          ...listed(e),
          headers: message.headers,
          body,
          bodyBytes: bytes,
          bodySha256: sha256,
          bodyTruncated: truncated,
          saga: advice.saga,
          lastAction: record,
          advice: advice.text,
        };
      });
      if (opts.json) return print(true, shown);
      const out = process.stdout;
      out.write(`dead letter ${shown.seq} (${shown.state}) of ${shown.subject}, ${shown.time}\n`);
      print(false, shown, ['header', 'value'], Object.entries(shown.headers));
      const cut = shown.bodyTruncated ? ` (first 64 KiB of ${shown.bodyBytes} bytes, sha256 ${shown.bodySha256})` : '';
      out.write(`body${cut}:\n${printable(typeof shown.body === 'string' ? shown.body : JSON.stringify(shown.body, null, 2))}\n`);
      out.write(
        `saga: ${shown.saga ? `${shown.saga.sagaId} attempt ${shown.saga.attempt} ${shown.saga.status}${shown.saga.reason ? ` (${shown.saga.reason})` : ''}` : 'none'}\n`,
      );
      const r = shown.lastAction;
      if (r) {
        const check = r.verified.ok
          ? `signed by ${r.verified.operator ?? '(key not checked: the order service did not answer)'} (${r.verified.signer})`
          : `NOT VERIFIED: ${r.verified.problem}`;
        const line = `last action: ${r.state} by ${r.operator} at ${r.at}, why: ${r.why}${r.newMsgId ? `, as ${r.newMsgId}` : ''}; ${check}`;
        out.write(printable(line) + '\n');
      }
      out.write(`advice: ${shown.advice}\n`);
    });

  dlq
    .command('stats')
    .description('dead letters counted by original subject and error fingerprint')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const groups = new Map<
        string,
        { subject: string; fingerprint: string; error: string; count: number; firstSeen: string; lastSeen: string }
      >();
      for (const e of await openDlq(cmd, (_, d) => d.all())) {
        const key = `${e.subject} ${e.fingerprint}`;
        const g = groups.get(key) ?? {
          subject: e.subject,
          fingerprint: e.fingerprint,
          error: fingerprintOf(e.error).masked,
          count: 0,
          firstSeen: e.time,
          lastSeen: e.time,
        };
        g.count++;
        if (e.time < g.firstSeen) g.firstSeen = e.time;
        if (e.time > g.lastSeen) g.lastSeen = e.time;
        groups.set(key, g);
      }
      const rows = [...groups.values()].sort((a, b) => b.count - a.count);
      print(
        !!opts.json,
        rows,
        ['subject', 'fingerprint', 'count', 'first seen', 'last seen', 'error'],
        rows.map((g) => [g.subject, g.fingerprint, g.count, g.firstSeen, g.lastSeen, g.error]),
      );
    });

  withPaging(
    withFilters(
      dlq.command('replay').description('republish dead letters to their original subject with a new message id and lineage headers'),
    ),
  )
    .argument('[seqs...]', 'DLQ sequences')
    .option('--all', 'every entry passing the filters')
    .requiredOption('--why <text>', 'why (recorded with the replay)')
    .option('--dry-run', 'print the plan, send nothing')
    .option('--patch <file>', 'an RFC 7386 JSON merge patch for each body, validated before anything is sent; - reads stdin')
    .option('--rate <n/s>', 'most replays per second', rate)
    .option('--canary', 'replay 1, then 2, 4, … per round, waiting for outcomes; halt when a round fails too often')
    .option(
      '--max-fail-rate <r>',
      'with --canary: the share of a round that may be dead-lettered again',
      (v: string) => {
        const r = Number(v);
        if (!(r >= 0 && r <= 1)) throw new UsageError(`--max-fail-rate must be a number from 0 to 1, got "${v}"`);
        return r;
      },
      0.2,
    )
    .option('--timeout <ms>', 'with --canary: how long to wait for each outcome', wholeNumber('--timeout', 100), 30_000)
    .option('--force', 'replay entries already replayed, replayed 3+ times, or whose saga has moved on')
    .option('--json', 'print JSON')
    .action(
      async (
        seqs: string[],
        opts: BulkOptions & {
          why: string;
          dryRun?: boolean;
          patch?: string;
          rate?: number;
          canary?: boolean;
          maxFailRate: number;
          timeout: number;
          force?: boolean;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        if (!opts.why.trim()) throw new UsageError('--why must say why');
        const wanted = selection(seqs, opts);
        const patch = opts.patch !== undefined ? readPatch(opts.patch) : undefined;
        const report = await openDlq(cmd, async (client, d) => {
          const { entries, missing } = await select(d, wanted, opts);
          const r = await replay(client, d, entries, {
            ...opts,
            patch,
            patchArg: opts.patch,
            timeoutMs: opts.timeout,
            selection: wanted === 'all' ? (after) => selectionArgs(opts, after) : undefined,
          });
          return { ...r, results: [...missingResults(missing), ...r.results] };
        });
        printReport(!!opts.json, report);
        if (report.halted && process.exitCode !== 130) process.exitCode = 1;
      },
    );

  withPaging(
    withFilters(
      dlq.command('purge').description('delete dead letters (each keeps its state record, and the purge is recorded on the OPS stream)'),
    ),
  )
    .argument('[seqs...]', 'DLQ sequences')
    .option('--all', 'every entry passing the filters')
    .requiredOption('--why <text>', 'why (recorded with the purge)')
    .option('--dry-run', 'print what would be purged, change nothing')
    .option('--yes', 'confirm (required unless --dry-run, or answered at the prompt)')
    .option('--json', 'print JSON')
    .action(async (seqs: string[], opts: BulkOptions & { why: string; dryRun?: boolean; yes?: boolean; json?: boolean }, cmd: Command) => {
      if (!opts.why.trim()) throw new UsageError('--why must say why');
      const wanted = selection(seqs, opts);
      const report = await openDlq(cmd, async (client, d) => {
        const { entries, missing } = await select(d, wanted, opts);
        const results: EntryResult[] = entries.map((e) => ({
          seq: e.seq,
          action: e.state === 'purged' ? 'skipped' : opts.dryRun ? 'would_purge' : 'purged',
          reason: e.state === 'purged' ? 'already purged' : null,
          newMsgId: null,
          diff: null,
        }));
        const todo = entries.filter((e) => e.state !== 'purged');
        if (!opts.dryRun && todo.length && !opts.yes) await confirm(`purge ${todo.length} dead letter(s)`);
        let resume: string | null = null;
        if (!opts.dryRun && todo.length) {
          // Ctrl-C lets the purges in hand finish, then stops: the report names the command that carries on.
          const done: DlqMessage[] = [];
          let run: BulkRun | undefined;
          try {
            run = await inOrder('purge', todo, PURGE_IN_FLIGHT, async (e) => {
              await d.setState(e.id, {
                state: 'purged',
                at: new Date().toISOString(),
                operator: client.operator,
                why: opts.why,
                entry: { ...listed(e), state: 'purged' },
              });
              await d.deleteMessage(e.seq);
              done.push(e);
            });
          } finally {
            if (done.length)
              await opsEvent(client, 'dlq.purged', {
                action: 'purge',
                entries: done.map((e) => ({ seq: e.seq, subject: e.subject, orderId: e.orderId, error: e.error })),
                why: opts.why,
              });
          }
          if (run.interrupted) {
            const rest = todo.slice(run.taken);
            const left = new Set(rest.map((e) => e.seq));
            for (const r of results) if (left.has(r.seq)) Object.assign(r, { action: 'skipped', reason: 'not purged: interrupted' });
            const last = todo[run.taken - 1]?.seq ?? opts.after ?? 0;
            resume = [
              'orderflow dlq purge',
              ...(wanted === 'all' ? selectionArgs(opts, last) : rest.map((e) => e.seq)),
              `--why ${shellQuote(opts.why)}`,
              '--yes',
            ].join(' ');
            process.exitCode = 130;
          }
        }
        return { dryRun: !!opts.dryRun, halted: resume !== null, resume, results: [...missingResults(missing), ...results] };
      });
      printReport(!!opts.json, report);
    });
  return dlq;
}
