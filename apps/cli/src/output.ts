import { createHash } from 'node:crypto';
import Table from 'cli-table3';
import { Outcome } from './client';

/** C0/C1 controls (but the line feeds of multi-line cells), DEL, and the bidirectional marks, embeddings and isolates. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `text` safe for a terminal: control and bidirectional characters (which could move the cursor, rewrite the screen or
 * reorder what an operator reads, e.g. in a SKU or an error from the broker) shown as `\uXXXX`.
 */
export const printable = (text: string): string => text.replace(UNPRINTABLE, escaped);

/** Settings from global flags, set before a command runs: `--wide` (tables are never cut to the terminal's width). */
export const outputSettings = { wide: false };

/** Colours only on a terminal, and never when `NO_COLOR` is set (https://no-color.org). */
export const useColour = (stream: NodeJS.WriteStream = process.stdout): boolean => !!stream.isTTY && !process.env.NO_COLOR;

/** The width tables must fit: the terminal's, when stdout is one and `--wide` is not given. */
const fitWidth = (): number | undefined => (process.stdout.isTTY && !outputSettings.wide ? process.stdout.columns || 80 : undefined);

/** An ISO 8601 time as a table shows it: whole off a terminal and with `--wide`, else `MM-DD HH:MM:SS` (UTC). */
export const when = (iso: string | null): string | null =>
  iso && fitWidth() !== undefined ? `${iso.slice(5, 10)} ${iso.slice(11, 19)}` : iso;

const widthOf = (cell: string) => Math.max(0, ...cell.split('\n').map((line) => [...line].length));

/**
 * How `table` lays out what does not fit: cut cells (the default), wrapped cells, or the last `below` columns on a line
 * of their own under each row.
 */
export type Fit = 'cut' | 'wrap' | { below: number };

/** Column widths (cli-table3's, padding included) that fit `width`: the widest columns narrowed to a common width. */
function fitted(head: string[], natural: number[], width: number): number[] {
  const borders = head.length + 1;
  // No column narrower than its header, unless even the headers do not fit: then none narrower than 6.
  const headers = head.map((h, i) => Math.min(natural[i], Math.max(widthOf(h) + 2, 6)));
  const floor = headers.reduce((a, b) => a + b, 0) + borders <= width ? headers : natural.map((n) => Math.min(n, 6));
  const fits = (cap: number) => natural.reduce((sum, n, i) => sum + Math.min(n, Math.max(cap, floor[i])), 0) + borders <= width;
  let cap = Math.max(...natural);
  while (cap > 3 && !fits(cap)) cap--;
  return natural.map((n, i) => Math.min(n, Math.max(cap, floor[i])));
}

/**
 * `rows` under `head` as a table (cli-table3) that fits `width` columns. When the natural widths do not fit, the widest
 * columns are narrowed to a common width and cells cut there end with `…`; with `wrap` (reports whose every word
 * matters) they wrap onto more lines; with `below` (a list whose last columns are long: an id, an error) those columns
 * go on a line of their own under each row, across the table, before anything else is narrowed. Colours (the header)
 * only on a terminal without NO_COLOR.
 */
export function table(head: string[], rows: (string | number | null)[][], width = fitWidth(), fit: Fit = 'cut'): string {
  const cells = rows.map((r) => r.map((c) => (c === null ? '-' : printable(String(c)))));
  const naturalOf = (h: string[], cs: string[][]) => h.map((x, i) => Math.max(widthOf(x), ...cs.map((r) => widthOf(r[i] ?? ''))) + 2);
  const natural = naturalOf(head, cells);
  const fits = width === undefined || natural.reduce((a, b) => a + b, 0) + head.length + 1 <= width;
  const style = { head: useColour() ? ['cyan'] : [], border: [], compact: true };
  if (!fits && typeof fit === 'object') {
    const n = head.length - fit.below;
    const [top, cellsTop] = [head.slice(0, n), cells.map((r) => r.slice(0, n))];
    const colWidths = fitted(top, naturalOf(top, cellsTop), width!);
    const t = new Table({ head: top, colWidths, wordWrap: false, style });
    for (const r of cells) {
      const under = head.slice(n).map((h, i) => `${h}: ${r[n + i]}`.replace(/\n/g, ' '));
      t.push(r.slice(0, n), [{ colSpan: n, content: under.join(' · '), truncate: '…' } as never]);
    }
    return t.toString();
  }
  const colWidths = fits ? undefined : fitted(head, natural, width!);
  const wrap = fit === 'wrap';
  const t = new Table({ head, ...(colWidths ? { colWidths, wordWrap: wrap, wrapOnWordBoundary: wrap } : {}), style });
  for (const r of cells) t.push(r);
  return t.toString();
}

/**
 * Prints `rows` as a table (`table`: fitted to the terminal as `fit` says) or, with `json`, as JSON. Every cell is `printable`; JSON
 * escapes controls itself, and bidirectional characters are escaped as `\uXXXX` too (still the same JSON).
 */
export function print(json: boolean, value: unknown, head?: string[], rows?: (string | number | null)[][], fit: Fit = 'cut'): void {
  if (json || !head || !rows) {
    process.stdout.write(JSON.stringify(value, null, json ? 0 : 2).replace(BIDI, escaped) + '\n');
    return;
  }
  process.stdout.write(table(head, rows, undefined, fit) + '\n');
}

/** Bodies above this many bytes are shown cut, with their size and digest. */
const SHOWN_BYTES = 64 * 1024;

/**
 * A message body as `dlq show` prints it, whatever the stream holds: parsed JSON when it is JSON that can be printed
 * again (not nested beyond what JSON.stringify can walk), else its text; above 64 KiB, the first 64 KiB of text with
 * `truncated` and the whole body's size and sha256.
 */
export function shownBody(data: Uint8Array | null): { body: unknown; bytes: number; sha256: string | null; truncated: boolean } {
  if (!data) return { body: null, bytes: 0, sha256: null, truncated: false };
  const bytes = data.length;
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (bytes > SHOWN_BYTES) return { body: Buffer.from(data.subarray(0, SHOWN_BYTES)).toString('utf8'), bytes, sha256, truncated: true };
  const text = Buffer.from(data).toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    JSON.stringify(parsed, null, 2); // it can be printed (not nested too deep for the stringifier)
    return { body: parsed, bytes, sha256, truncated: false };
  } catch {
    return { body: text, bytes, sha256, truncated: false };
  }
}

export function printOutcomes(json: boolean, outcomes: Outcome[]): void {
  print(
    json,
    outcomes,
    ['order id', 'status', 'ms', 'reason'],
    outcomes.map((o) => [o.orderId, o.status, o.ms, o.reason]),
    { below: 1 },
  );
}

/** "2 CONFIRMED, 1 CANCELLED": how many of each value, in order of first appearance. */
export function countsLine(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([v, n]) => `${n} ${v}`).join(', ');
}
