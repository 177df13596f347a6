import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { fingerprintOf } from '@orderflow/messaging';
import { CliFailure, UsageError } from '../cli.errors';
import { PipelineClient } from '../client';
import { BulkRun, inOrder } from '../bulk';
import { collect, once, rate, shellQuote, since, wholeNumber, withClient } from '../context';
import { adviceFor } from '../dlq/advice';
import { DeadLetters, DlqFilter, DlqMessage, DlqState, DlqStates, listed, matches } from '../dlq/dead-letters';
import { dlqHistory } from '../dlq/history';
import { EntryResult, failed, opsEvent, replay, Report } from '../dlq/replay';
import { confirm } from '../saga/operate';
import { countsLine, print, printable, shownBody, useColour, when } from '../output';

type FilterOptions = DlqFilter & { limit?: number };

const state = (value: string, all: DlqState[] = []): DlqState[] => {
  if (!(DlqStates as string[]).includes(value)) throw new UsageError(`--state must be one of ${DlqStates.join(', ')}, got "${value}"`);
  return [...all, value as DlqState];
};
const seqNumber = wholeNumber('SEQ', 1);
const afterSeq = once('--after', seqNumber);
/** States that need no one's attention: what `dlq stats` leaves out unless `--all`. */
const SETTLED: DlqState[] = ['resolved', 'purged'];

/** The filter options shared by list, stats, replay and purge: each repeatable (OR-ed), different ones AND-ed. */
function withFilters(cmd: Command): Command {
  return cmd
    .option('--subject <subject>', 'original subject (NATS wildcards: payment.cmd.*, inventory.>); repeatable', collect)
    .option('--error <text>', 'error contains TEXT (any case); repeatable', collect)
    .option('--fingerprint <f>', 'error fingerprint (see dlq stats); repeatable', collect)
    .option('--order <orderId>', 'entries of one order; repeatable', collect)
    .option('--state <state>', `${DlqStates.join(' | ')}; repeatable`, state)
    .option('--since <when>', 'dead-lettered since (30m, 1h, 7d, or ISO 8601)', once('--since', since));
}

/** Purges carried out at once (each writes a state record and deletes a message). */
const PURGE_IN_FLIGHT = 16;
/** Diff lines shown per entry unless `--full-diff`. */
const DIFF_LINES = 40;

/** `--all` with filters, paged: entries after SEQ `after`, at most `limit` of them. */
type BulkOptions = FilterOptions & { all?: boolean; after?: number };

const FILTERS = ['subject', 'error', 'fingerprint', 'order', 'state', 'since'] as const;

/**
 * How a bulk command picks entries: the given SEQs, or `--all` with filters (and `--after`, `--limit`). Checked before
 * connecting. @throws UsageError when neither or both are given.
 */
function selection(seqs: string[], opts: BulkOptions): number[] | 'all' {
  const filtered = [...FILTERS, 'after', 'limit'].some((k) => opts[k as keyof BulkOptions] !== undefined);
  if (seqs.length && (opts.all || filtered)) throw new UsageError('give SEQs, or --all with filters, not both');
  if (!seqs.length && !opts.all) throw new UsageError('give the SEQs of the entries, or --all (with filters)');
  return opts.all ? 'all' : seqs.map(seqNumber);
}

/**
 * The entries a bulk command works on, taken once when it starts (a snapshot: later dead letters are not swept in),
 * in SEQ order, and the SEQs that do not exist. Named SEQs are read one at a time; with `--all`, the DLQ is listed and
 * the snapshot's size stated on stderr.
 */
async function select(
  dlq: DeadLetters,
  wanted: number[] | 'all',
  opts: BulkOptions,
): Promise<{ entries: DlqMessage[]; missing: number[] }> {
  if (wanted !== 'all') {
    const found = await Promise.all([...new Set(wanted)].sort((a, b) => a - b).map(async (seq) => ({ seq, e: await dlq.get(seq) })));
    return { entries: found.flatMap((f) => (f.e ? [f.e] : [])), missing: found.filter((f) => !f.e).map((f) => f.seq) };
  }
  const matching = (await dlq.all()).filter((e) => matches(e, opts) && e.seq > (opts.after ?? 0));
  const entries = matching.slice(0, opts.limit ?? Infinity);
  process.stderr.write(
    `snapshot: ${matching.length} matching dead letter(s)${opts.after ? ` after SEQ ${opts.after}` : ''}${entries.length < matching.length ? `, the first ${entries.length} (--limit)` : ''}\n`,
  );
  return { entries, missing: [] };
}

/** The options that repeat a `--all` selection, for the command that carries on after an interruption. */
function selectionArgs(opts: BulkOptions, after: number): string[] {
  const given = FILTERS.flatMap((k) => {
    const v = opts[k];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((value) => `--${k} ${shellQuote(String(value))}`);
  });
  return ['--all', ...given, `--after ${after}`];
}

/** `--after` and `--limit` of the bulk commands. */
function withPaging(cmd: Command): Command {
  return cmd
    .option('--after <seq>', 'with --all: only entries after this SEQ (where an interrupted run stopped)', afterSeq)
    .option('--limit <n>', 'with --all: at most N entries of the snapshot', once('--limit', wholeNumber('--limit', 1)));
}

/** A diff for a terminal: at most `DIFF_LINES` lines unless `full`, added and removed lines coloured on a TTY. */
function shownDiff(diff: string, full: boolean): string {
  const lines = diff.split('\n');
  const shown = full ? lines : lines.slice(0, DIFF_LINES);
  const colour = useColour();
  const paint = (l: string) =>
    !colour
      ? l
      : l.startsWith('+') && !l.startsWith('+++')
        ? `\x1b[32m${l}\x1b[0m`
        : l.startsWith('-') && !l.startsWith('---')
          ? `\x1b[31m${l}\x1b[0m`
          : l;
  const more = lines.length - shown.length;
  // A line is cut to the terminal's width (a long JSON string would wrap over the screen), or off a terminal to 240
  // characters (a body that is one long line, as a cut one is, would otherwise come whole).
  const width = full ? Infinity : process.stdout.isTTY ? process.stdout.columns || 80 : 240;
  const cut = (l: string) => ([...l].length > width ? [...l].slice(0, width - 1).join('') + '…' : l);
  return (
    shown.map((l) => paint(cut(printable(l)))).join('\n') + (more > 0 ? `\n… ${more} more line(s) of diff (--full-diff shows them)` : '')
  );
}

/**
 * The report: a table of what happened to each entry, then each entry's diff (cut to a screen unless `fullDiff`) — a
 * diff is never drawn into the table, where a large one would take minutes to lay out. Sets the exit code: 1 when
 * anything was invalid, refused, raced or not found (or, for SEQs given by name, skipped).
 */
function printReport(json: boolean, report: Report, named: boolean, fullDiff = false): void {
  print(
    json,
    report,
    ['seq', 'action', 'reason / new message id'],
    report.results.map((r) => [r.seq, r.action, r.reason ?? r.newMsgId]),
    'wrap',
  );
  if (!json)
    for (const r of report.results)
      if (r.diff) process.stdout.write(`diff of ${r.seq}:\n${shownDiff(r.diff, fullDiff)}\n`);
      else if (['would_replay', 'replayed'].includes(r.action) && report.changed)
        process.stdout.write(`diff of ${r.seq}: too large a change to show line by line\n`);
  process.stderr.write(
    `${report.dryRun ? 'dry run, nothing changed: ' : ''}${countsLine(report.results.map((r) => r.action)) || 'no entries'}\n`,
  );
  if (report.halted) {
    const why =
      process.exitCode === 130 ? 'interrupted' : 'the canary halted: more than the allowed share of a round was dead-lettered again';
    process.stderr.write(`${why}${report.resume ? `; carry on with:\n  ${report.resume}` : ''}\n`);
  }
  if (process.exitCode !== 130 && (report.halted || report.results.some((r) => failed(r, named)))) process.exitCode = 1;
}

const missingResults = (missing: number[]): EntryResult[] =>
  missing.map((seq) => ({
    seq,
    action: 'skipped',
    reason: `no dead letter ${seq}`,
    skippedBecause: 'not_found',
    newMsgId: null,
    diff: null,
  }));

/** `--patch FILE|-` or `--body FILE|-`: a JSON object read from a file or stdin. @throws UsageError otherwise. */
function readJsonObject(flag: string, path: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path === '-' ? 0 : path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`${flag} ${path}: ${err.code ? `cannot read it (${err.code})` : `not JSON (${err.message})`}`, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${flag} ${path}: ${what}`);
  return value as Record<string, unknown>;
}

async function openDlq<T>(cmd: Command, work: (client: PipelineClient, dlq: DeadLetters) => Promise<T>): Promise<T> {
  return withClient(cmd, async (client) => {
    await client.requireNamespace();
    const dlq = await DeadLetters.open(client);
    const out = await work(client, dlq);
    if (dlq.stale) process.stderr.write(`warning: ${dlq.stale}\n`);
    return out;
  });
}

export function dlqCommand(): Command {
  const dlq = new Command('dlq').description(
    'the dead-letter stream: inspect, replay, purge, and read who did what (states: new, replayed, failed_again, resolved — its order’s saga ended after it —, purged, lost)',
  );

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
        ['seq', 'time', 'subject', 'state', 'replayed', 'fingerprint', 'order', 'error'],
        rows.map((e) => [
          e.seq,
          when(e.time),
          e.subject,
          e.failedAgainAs ? `${e.state} (${e.failedAgainAs})` : e.state,
          e.timesReplayed,
          e.fingerprint,
          e.orderId,
          e.error,
        ]),
        { below: 2 },
      );
    });

  dlq
    .command('show')
    .description('one dead letter: every header, the body, its order’s saga, what was done to it, and advice')
    .argument('<seq>', 'DLQ sequence', seqNumber)
    .option('--json', 'print JSON')
    .action(async (seq: number, opts: { json?: boolean }, cmd: Command) => {
      const shown = await openDlq(cmd, async (client, d) => {
        const e = await d.get(seq);
        if (!e) throw new CliFailure(`no dead letter ${seq} (see orderflow dlq list)`);
        const message = await d.message(e);
        const advice = await adviceFor(client, e, message.data);
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
        `saga (the order's newest attempt): ${shown.saga ? `${shown.saga.sagaId} attempt ${shown.saga.attempt} ${shown.saga.status}${shown.saga.reason ? ` (${shown.saga.reason})` : ''}` : 'none'}\n`,
      );
      const r = shown.lastAction;
      if (r) {
        const check = r.verified.ok
          ? `signed by ${r.verified.operator ?? '(key not checked: the order service did not answer)'} (${r.verified.signer})`
          : `NOT VERIFIED: ${r.verified.problem}`;
        const times = shown.timesReplayed > 1 ? ` (replayed ${shown.timesReplayed} times)` : '';
        const again = shown.failedAgainAs ? `; dead-lettered again as ${shown.failedAgainAs}` : '';
        const line = `last action: ${r.state} by ${r.operator} at ${r.at}${times}, why: ${r.why}${r.newMsgId ? `, as ${r.newMsgId}` : ''}${again}; ${check}`;
        out.write(printable(line) + '\n');
      }
      out.write(`advice: ${printable(shown.advice)}\n`);
    });

  withFilters(dlq.command('stats').description('dead letters that need attention, counted by original subject and error fingerprint'))
    .option('--all', 'every entry, resolved and purged ones too')
    .option('--json', 'print JSON')
    .action(async (opts: DlqFilter & { all?: boolean; json?: boolean }, cmd: Command) => {
      type Group = {
        subject: string;
        fingerprint: string;
        error: string;
        count: number;
        states: Record<string, number>;
        firstSeen: string;
        lastSeen: string;
      };
      const groups = new Map<string, Group>();
      const entries = (await openDlq(cmd, (_, d) => d.all())).filter((e) => matches(e, opts) && (opts.all || !SETTLED.includes(e.state)));
      for (const e of entries) {
        const key = `${e.subject} ${e.fingerprint}`;
        const g: Group = groups.get(key) ?? {
          subject: e.subject,
          fingerprint: e.fingerprint,
          error: fingerprintOf(e.error).masked,
          count: 0,
          states: {},
          firstSeen: e.time,
          lastSeen: e.time,
        };
        g.count++;
        g.states[e.state] = (g.states[e.state] ?? 0) + 1;
        if (e.time < g.firstSeen) g.firstSeen = e.time;
        if (e.time > g.lastSeen) g.lastSeen = e.time;
        groups.set(key, g);
      }
      const rows = [...groups.values()].sort((a, b) => b.count - a.count);
      print(
        !!opts.json,
        rows,
        ['subject', 'fingerprint', 'count', 'states', 'last seen', 'first seen', 'error'],
        rows.map((g) => [
          g.subject,
          g.fingerprint,
          g.count,
          Object.entries(g.states)
            .map(([s, n]) => `${n} ${s}`)
            .join(', '),
          when(g.lastSeen),
          when(g.firstSeen),
          g.error,
        ]),
        { below: 2 },
      );
      if (!opts.json && !opts.all)
        process.stderr.write(`${entries.length} dead letter(s) need attention (--all counts resolved and purged ones too)\n`);
    });

  dlq
    .command('history')
    .description(
      'the audit of replays and purges: who, when, why, with which patch or body, the new message id, and whether it failed again',
    )
    .argument('[seq]', 'only this dead letter', seqNumber)
    .option('--json', 'print JSON')
    .action(async (seq: number | undefined, opts: { json?: boolean }, cmd: Command) => {
      const rows = await openDlq(cmd, (client, d) => dlqHistory(client, d, seq));
      if (opts.json) return print(true, rows);
      // One block per action, as `git log` prints commits: an audit reads top to bottom, and fits any width.
      for (const r of rows) {
        const change = !r.change
          ? null
          : 'patch' in r.change
            ? `patch: ${JSON.stringify(r.change.patch)}`
            : `new body: sha256 ${r.change.body.sha256} (${r.change.body.bytes} bytes)`;
        const lines = [
          `${r.at}  ${r.action} of dead letter ${r.seq} by ${r.operator} (${r.signature})`,
          `    why: ${r.why}`,
          ...(change ? [`    ${change}`] : []),
          ...(r.newMsgId ? [`    new message ${r.newMsgId}${r.failedAgainAs ? `, dead-lettered again as ${r.failedAgainAs}` : ''}`] : []),
        ];
        process.stdout.write(printable(lines.join('\n')) + '\n');
      }
      if (!rows.length) process.stderr.write(seq ? `no operator action on dead letter ${seq}\n` : 'no operator action on the DLQ yet\n');
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
    .option('--body <file>', 'a whole new body (JSON) for each entry, for one no patch can fix; validated and diffed; - reads stdin')
    .option('--full-diff', 'show each diff whole (by default, its first 40 lines)')
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
    .option('--force', 'replay entries already replayed or resolved, replayed 3+ times, or whose saga has moved on')
    .option('--json', 'print JSON')
    .action(
      async (
        seqs: string[],
        opts: BulkOptions & {
          why: string;
          dryRun?: boolean;
          patch?: string;
          body?: string;
          fullDiff?: boolean;
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
        if (opts.patch !== undefined && opts.body !== undefined) throw new UsageError('give --patch or --body, not both');
        const wanted = selection(seqs, opts);
        const patch =
          opts.patch !== undefined
            ? readJsonObject('--patch', opts.patch, "a merge patch is a JSON object (its fields replace the body's; null removes one)")
            : undefined;
        const body = opts.body !== undefined ? readJsonObject('--body', opts.body, 'a message body is a JSON object') : undefined;
        const report = await openDlq(cmd, async (client, d) => {
          const { entries, missing } = await select(d, wanted, opts);
          const r = await replay(client, d, entries, {
            ...opts,
            patch,
            body,
            patchArg: opts.patch,
            bodyArg: opts.body,
            timeoutMs: opts.timeout,
            selection: wanted === 'all' ? (after) => selectionArgs(opts, after) : undefined,
          });
          return { ...r, results: [...missingResults(missing), ...r.results] };
        });
        printReport(!!opts.json, report, wanted !== 'all', !!opts.fullDiff);
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
        const result = (e: DlqMessage): EntryResult => ({
          seq: e.seq,
          action: e.state === 'purged' ? 'skipped' : opts.dryRun ? 'would_purge' : 'purged',
          reason: e.state === 'purged' ? 'already purged' : null,
          skippedBecause: null, // purging what is purged is a no-op by design
          newMsgId: null,
          diff: null,
        });
        const results = entries.map(result);
        const resultOf = new Map(results.map((r) => [r.seq, r]));
        const todo = entries.filter((e) => e.state !== 'purged');
        if (!opts.dryRun && todo.length && !opts.yes) await confirm(`purge ${todo.length} dead letter(s)`);
        let resume: string | null = null;
        if (!opts.dryRun && todo.length) {
          // Ctrl-C lets the purges in hand finish, then stops: the report names the command that carries on.
          const done: DlqMessage[] = [];
          let run: BulkRun | undefined;
          try {
            run = await inOrder('purge', todo, PURGE_IN_FLIGHT, async (e) => {
              // Compare-and-set on the record as read now: of two operators purging it at once, one purges.
              const { record, revision } = await d.recordOf(e.id);
              const r = resultOf.get(e.seq)!;
              const purged = { state: 'purged' as const, at: new Date().toISOString(), operator: client.operator, why: opts.why };
              if (
                record?.state === 'purged' ||
                !(await d.setState(e.id, { ...record, ...purged, entry: { ...listed(e), state: 'purged' } }, revision))
              ) {
                const now = (await d.recordOf(e.id)).record;
                Object.assign(r, { action: 'skipped', reason: `purged by ${now?.operator} at ${now?.at}` });
                return;
              }
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
            for (const r of results)
              if (left.has(r.seq))
                Object.assign(r, { action: 'skipped', reason: 'not purged: interrupted', skippedBecause: 'interrupted' });
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
        return {
          dryRun: !!opts.dryRun,
          halted: resume !== null,
          resume,
          changed: false,
          results: [...missingResults(missing), ...results],
        };
      });
      printReport(!!opts.json, report, wanted !== 'all');
    });
  return dlq;
}
