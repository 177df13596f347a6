import { printable } from './output';
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
