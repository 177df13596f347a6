import Table from 'cli-table3';
import { Command } from 'commander';
import { CliFailure } from '../cli.errors';
import { wholeNumber, withClient } from '../context';
import { useColour } from '../output';
import { Scrape, scrape, snapshot, TopSnapshot } from '../top/snapshot';

const WINDOW = 10;
const fmt = (v: number | null, unit = '') => (v === null ? '–' : `${v}${unit}`);
/** Cells laid out in aligned columns without borders (cli-table3 with its border characters blanked). */
const columns = (head: string[], rows: (string | number)[][]): string[] => {
  const blank = Object.fromEntries(
    [
      'top',
      'top-mid',
      'top-left',
      'top-right',
      'bottom',
      'bottom-mid',
      'bottom-left',
      'bottom-right',
      'left',
      'left-mid',
      'mid',
      'mid-mid',
      'right',
      'right-mid',
      'middle',
    ].map((k) => [k, '']),
  );
  const t = new Table({ head, chars: { ...blank, middle: '  ' }, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } });
  for (const r of rows) t.push(r.map(String));
  return t
    .toString()
    .split('\n')
    .filter((l) => l.trim());
};

/**
 * The live view, at most `height` lines of at most `width` characters so it fits one screen: the headline first, which
 * apps run and which are missing, the saga counts (started and ended: since the apps started) and latency, outcomes,
 * dead letters and the outbox on a line each,
 * then the consumers (cut to what fits, saying how many are left out). Colours (`colour`) only on a terminal.
 */
export function render(s: TopSnapshot, namespace: string, height = 24, colour = false, width = Infinity): string {
  const apps = new Map<string, number>();
  for (const i of s.instances) apps.set(i.name, (apps.get(i.name) ?? 0) + 1);
  const unscraped = s.instances.filter((i) => !i.scraped).length;
  const lines = [
    `orderflow top — ${namespace || '(default namespace)'} — ${s.at.slice(11, 19)} — q quits`,
    `apps: ${[...apps].map(([a, n]) => `${a} ×${n}`).join(', ') || 'none'}` +
      (s.missing.length ? `; NOT RUNNING: ${s.missing.join(', ')}` : '') +
      (unscraped ? `; ${unscraped} instance(s) not scraped (metrics URL not on ORDERFLOW_METRICS_HOSTS, or not answering)` : ''),
    `sagas: ${fmt(s.sagas.perSecond, '/s')} · running ${s.sagas.running} · compensating ${s.sagas.compensating} · FAILED ${s.sagas.failed} · ` +
      `${s.sagas.started} started, ${s.sagas.finished} ended`,
    `latency: p50 ${fmt(s.latencyMs.p50, ' ms')} · p95 ${fmt(s.latencyMs.p95, ' ms')} · p99 ${fmt(s.latencyMs.p99, ' ms')}`,
    `outcomes: ${s.outcomes.map((o) => `${o.status}${o.reason ? ` ${o.reason}` : ''} ${o.count}`).join(' · ') || '–'}`,
    `dead letters: ${s.deadLetters.total}${s.deadLetters.bySubject.length ? ` — ${s.deadLetters.bySubject.map((l) => `${l.subject} ${l.fingerprint} ×${l.count}`).join(' · ')}` : ''}`,
    `outbox rows (lag): ${s.outbox.map((o) => `${o.app} ${o.rows} (${o.lagSeconds.toFixed(1)} s)`).join(' · ') || '–'}`,
    '',
  ];
  const consumers = columns(
    ['consumer', 'stream', 'pending', 'ack pending'],
    s.consumers.map((c) => [c.consumer, c.stream, c.pending, c.ackPending]),
  );
  const room = Math.max(1, height - lines.length - 1); // the terminal's last line stays free
  const shown =
    consumers.length > room
      ? [...consumers.slice(0, room - 1), `… ${consumers.length - room + 1} more consumer(s): --once --json lists every one`]
      : consumers;
  // Cut to the width before colouring: a wrapped line would push the rest off the screen.
  const cut = (l: string) => ([...l].length > width ? [...l].slice(0, width - 1).join('') + '…' : l);
  const out = [...lines, ...shown].map(cut);
  if (colour) {
    out[0] = `\x1b[1m${out[0]}\x1b[0m`;
    out[1] = out[1].replace(/; (NOT RUNNING|\d+ instance).*$/, (m) => `\x1b[31m${m}\x1b[0m`);
    if (s.sagas.failed) out[2] = out[2].replace(/FAILED \d+/, (m) => `\x1b[31m${m}\x1b[0m`);
  }
  return out.join('\n');
}

export function topCommand(): Command {
  return new Command('top')
    .description("a live view of the pipeline from the apps' /metrics (found through the NATS service API); q quits")
    .option('--once', 'take one snapshot (two scrapes a second apart, for the rate) and exit')
    .option('--json', 'with --once: print the snapshot as JSON')
    .option('--interval <ms>', 'refresh period', wholeNumber('--interval', 200, 60_000), 1000)
    .action(async (opts: { once?: boolean; json?: boolean; interval: number }, cmd: Command) => {
      await withClient(cmd, async (client, config) => {
        const first = await scrape(client);
        if (first.instances.length === 0)
          throw new CliFailure(`no running instance in namespace "${config.ORDERFLOW_NAMESPACE}" answered $SRV.INFO; are the apps up?`);
        if (opts.once) {
          await new Promise((r) => setTimeout(r, opts.interval));
          const s = snapshot(await scrape(client), first);
          process.stdout.write(
            opts.json ? JSON.stringify(s, null, 2) + '\n' : render(s, config.ORDERFLOW_NAMESPACE, Infinity, useColour()) + '\n',
          );
          return;
        }
        await live(client, first, opts.interval, config.ORDERFLOW_NAMESPACE);
      });
    });
}

/** Refreshes every `intervalMs` until `q` or Ctrl-C; rates and latency over the last ~10 refreshes. */
async function live(client: Parameters<typeof scrape>[0], first: Scrape, intervalMs: number, namespace: string): Promise<void> {
  const history: Scrape[] = [first];
  let quit: () => void = () => undefined;
  const done = new Promise<void>((r) => (quit = r));
  const stdin = process.stdin;
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  const onKey = (key: Buffer) => {
    const k = key.toString();
    if (k === 'q' || k === 'Q' || k === '\u0003') quit();
  };
  stdin.on('data', onKey);
  process.once('SIGINT', quit);
  try {
    for (;;) {
      const stop = await Promise.race([done.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), intervalMs))]);
      if (stop) return;
      history.push(await scrape(client));
      if (history.length > WINDOW + 1) history.shift();
      const s = snapshot(history[history.length - 1], history[0]);
      process.stdout.write(
        '\x1b[H\x1b[2J' + render(s, namespace, process.stdout.rows || 24, useColour(), process.stdout.columns || 80) + '\n',
      );
    }
  } finally {
    stdin.off('data', onKey);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
  }
}
