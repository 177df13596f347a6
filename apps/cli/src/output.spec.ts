import { printable, shownBody, table, useColour } from './output';
import { fetchable, metricsHosts } from './top/snapshot';

describe('what the CLI prints of the broker', () => {
  it('escapes control and bidirectional characters, keeps line feeds and ordinary text', () => {
    expect(printable('SKU\u001b[2J-1')).toBe('SKU\\u001b[2J-1');
    expect(printable('abc\u202Efed.exe')).toBe('abc\\u202efed.exe');
    expect(printable('a\r\u0007b\u2066c')).toBe('a\\u000d\\u0007b\\u2066c');
    expect(printable('two\nlines, café, 東京')).toBe('two\nlines, café, 東京');
  });
});

describe('which metrics URLs top fetches', () => {
  it('only http(s) on the allowed hosts: loopback by default, ORDERFLOW_METRICS_HOSTS otherwise', () => {
    const loopback = metricsHosts({});
    expect(fetchable('http://127.0.0.1:9461/metrics', loopback)).toBe(true);
    expect(fetchable('http://[::1]:9461/metrics', loopback)).toBe(true);
    expect(fetchable('http://169.254.169.254/latest/meta-data', loopback)).toBe(false);
    expect(fetchable('file:///etc/passwd', loopback)).toBe(false);
    expect(fetchable('not a url', loopback)).toBe(false);
    const named = metricsHosts({ ORDERFLOW_METRICS_HOSTS: 'order, Payment' });
    expect(fetchable('http://payment:9463/metrics', named)).toBe(true);
    expect(fetchable('http://127.0.0.1:9461/metrics', named)).toBe(false);
  });
});

describe('shownBody', () => {
  it('shows a body nested deeper than JSON.stringify can walk as its text, without throwing', () => {
    const deep = '['.repeat(30_000) + ']'.repeat(30_000);
    expect(() => JSON.stringify(JSON.parse(deep), null, 2)).toThrow(RangeError);
    expect(shownBody(Buffer.from(deep))).toMatchObject({ body: deep, truncated: false, bytes: 60_000 });
  });

  it('cuts a body above 64 KiB, with its size and sha256; parses a small JSON body', () => {
    const big = shownBody(Buffer.alloc(100_000, 'a'));
    expect(big).toMatchObject({ truncated: true, bytes: 100_000, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((big.body as string).length).toBe(64 * 1024);
    expect(shownBody(Buffer.from('{"a":[1,2]}'))).toMatchObject({ body: { a: [1, 2] }, truncated: false, bytes: 11 });
    expect(shownBody(null)).toEqual({ body: null, bytes: 0, sha256: null, truncated: false });
  });
});

describe('tables', () => {
  const head = ['seq', 'subject', 'error'];
  const rows = [[1, 'payment.cmd.deposit', 'PermanentError: account alice is in USD, not EUR; deposit refused, and a long tail after it']];

  it('fit the width given, the widest columns cut with an ellipsis', () => {
    const lines = table(head, rows, 60).split('\n');
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(60);
    expect(lines.join('\n')).toMatch(/…/);
    expect(lines.join('\n')).toMatch(/│ 1 /);
  });

  it('fit even when their headers do not', () => {
    const wide = ['a header that is long', 'another long header', 'and a third long one', 'fourth header here'];
    for (const line of table(wide, [['x', 'y', 'z', 'w']], 40).split('\n')) expect([...line].length).toBeLessThanOrEqual(40);
  });

  it('are whole without a width (a pipe, or --wide)', () => {
    expect(table(head, rows, undefined)).toContain('and a long tail after it');
  });

  it('colour only on a terminal, and never with NO_COLOR', () => {
    const tty = { isTTY: true } as NodeJS.WriteStream;
    const saved = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    expect(useColour(tty)).toBe(true);
    expect(useColour({ isTTY: false } as NodeJS.WriteStream)).toBe(false);
    process.env.NO_COLOR = '1';
    expect(useColour(tty)).toBe(false);
    if (saved === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = saved;
  });
});
