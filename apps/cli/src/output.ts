import Table from 'cli-table3';
import { Outcome } from './client';

/** Prints `rows` as a table (cli-table3) or, with `json`, as JSON. */
export function print(json: boolean, value: unknown, head?: string[], rows?: (string | number | null)[][]): void {
  if (json || !head || !rows) {
    process.stdout.write(JSON.stringify(value, null, json ? 0 : 2) + '\n');
    return;
  }
  const table = new Table({ head, style: { head: [], border: [], compact: true } });
  for (const r of rows) table.push(r.map((c) => (c === null ? '-' : String(c))));
  process.stdout.write(table.toString() + '\n');
}

export function printOutcomes(json: boolean, outcomes: Outcome[]): void {
  print(
    json,
    outcomes,
    ['order id', 'status', 'reason', 'ms'],
    outcomes.map((o) => [o.orderId, o.status, o.reason, o.ms]),
  );
}

/** "2 CONFIRMED, 1 CANCELLED": how many of each value, in order of first appearance. */
export function countsLine(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([v, n]) => `${n} ${v}`).join(', ');
}
