import { render } from '../commands/top.command';
import { parseExposition } from './exposition';
import { Scrape, snapshot } from './snapshot';

const instance = (name: string, id: string) => ({
  name,
  id,
  version: '0.1.0',
  pid: 1,
  started: null,
  metricsUrl: `http://127.0.0.1/${id}`,
  healthUrl: null,
  endpoints: [],
});

/** A scrape of the order app whose metrics are `lines`, with `apps` running. */
const scrapeOf = (lines: string[], apps = ['order', 'inventory', 'payment', 'notification']): Scrape => ({
  at: Date.now(),
  instances: apps.map((a) => instance(a, `${a}-1`)),
  families: new Map([['order-1', parseExposition(lines.join('\n'))]]),
});

describe('orderflow top', () => {
  it('counts an attempt that went FAILED and then ended CANCELLED once among those ended', () => {
    const s = snapshot(
      scrapeOf([
        'orderflow_sagas_started_total{type="PlaceOrder"} 3',
        'orderflow_sagas_finished_total{type="PlaceOrder",status="COMPLETED",reason=""} 2',
        'orderflow_sagas_finished_total{type="PlaceOrder",status="FAILED",reason="deadline_exceeded"} 1',
        'orderflow_sagas_finished_total{type="PlaceOrder",status="CANCELLED",reason="deadline_exceeded"} 1',
      ]),
    );
    expect(s.sagas).toMatchObject({ started: 3, finished: 3 });
  });

  it('fits a 80×24 terminal: the headline first, the apps not running named, the consumers it cannot show counted', () => {
    const consumers = Array.from(
      { length: 40 },
      (_, i) => `orderflow_consumer_pending{stream="S${i}",consumer="consumer-with-a-rather-long-name-${i}",app="order"} ${i}`,
    );
    const s = snapshot(scrapeOf(consumers, ['order', 'inventory', 'payment']));
    const screen = render(s, 'ns', 24, false, 80).split('\n');
    expect(screen.length).toBeLessThanOrEqual(23);
    for (const line of screen) expect([...line].length).toBeLessThanOrEqual(80);
    expect(screen[0]).toMatch(/^orderflow top — ns — \d\d:\d\d:\d\d — q quits$/);
    expect(screen[1]).toMatch(/NOT RUNNING: notification/);
    expect(screen[screen.length - 1]).toMatch(/^… \d+ more consumer\(s\): --once --json lists every one$/);
    // eslint-disable-next-line no-control-regex -- no colour codes unless asked for (a pipe, NO_COLOR)
    expect(screen.join('\n')).not.toMatch(/\u001b/);
    // eslint-disable-next-line no-control-regex -- on a terminal, the apps not running in red
    expect(render(s, 'ns', 24, true, 80)).toMatch(/\u001b\[31m; NOT RUNNING/);
  });
});
