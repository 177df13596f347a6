import Table from 'cli-table3';
import { Command } from 'commander';
import { CliFailure } from '../cli.errors';
import { wholeNumber, withClient } from '../context';
import { Scrape, scrape, snapshot, TopSnapshot } from '../top/snapshot';

const WINDOW = 10;
const fmt = (v: number | null, unit = '') => (v === null ? '–' : `${v}${unit}`);

/** The live view: a few small tables a person reads at a glance. */
export function render(s: TopSnapshot, namespace: string): string {
  const scraped = s.instances.filter((i) => i.scraped).length;
  const head = `orderflow top — ${namespace || '(default namespace)'} — ${s.at.slice(11, 19)} — ${scraped}/${s.instances.length} instance(s) scraped — q quits`;
  const sagas = new Table({ head: ['sagas/s', 'started', 'finished', 'running', 'compensating', 'FAILED', 'p50', 'p95', 'p99'] });
  sagas.push([
    fmt(s.sagas.perSecond),
    s.sagas.started,
    s.sagas.finished,
    s.sagas.running,
    s.sagas.compensating,
    s.sagas.failed,
    fmt(s.latencyMs.p50, ' ms'),
    fmt(s.latencyMs.p95, ' ms'),
    fmt(s.latencyMs.p99, ' ms'),
  ]);
  const outcomes = new Table({ head: ['outcome', 'reason', 'sagas'] });
  for (const o of s.outcomes.slice(0, 8)) outcomes.push([o.status, o.reason ?? '', o.count]);
  const letters = new Table({ head: [`dead letters: ${s.deadLetters.total}`, 'fingerprint', 'count'] });
  for (const l of s.deadLetters.bySubject.slice(0, 5)) letters.push([l.subject, l.fingerprint, l.count]);
  const outbox = new Table({ head: ['outbox', 'rows', 'lag'] });
  for (const o of s.outbox) outbox.push([o.app, o.rows, `${o.lagSeconds.toFixed(1)} s`]);
  const consumers = new Table({ head: ['consumer', 'stream', 'pending', 'ack pending'] });
  for (const c of s.consumers) consumers.push([c.consumer, c.stream, c.pending, c.ackPending]);
  return [head, sagas.toString(), outcomes.toString(), letters.toString(), outbox.toString(), consumers.toString()].join('\n');
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
          process.stdout.write(opts.json ? JSON.stringify(s, null, 2) + '\n' : render(s, config.ORDERFLOW_NAMESPACE) + '\n');
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
      process.stdout.write('\x1b[H\x1b[2J' + render(s, namespace) + '\n');
    }
  } finally {
    stdin.off('data', onKey);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
  }
}
