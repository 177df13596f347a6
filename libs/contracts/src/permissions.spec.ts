import { Subjects } from './subjects';
import { AppNames, AppTopology, operatorIdentity, permissionsFor } from './permissions';
import { Consumers, Namespace } from './topology';

describe('the generated permission matrix', () => {
  const ns = new Namespace('ns1');

  it('lets ingress publish order.created and nothing else', () => {
    expect(permissionsFor('ingress', ns)).toEqual({
      publish: { allow: ['ns1.order.created'] },
      subscribe: { allow: ['_INBOX_ingress.>'] },
    });
  });

  it.each(AppNames)('gives %s no right to manage streams or consumers, and only its own consumers', (app) => {
    const { publish, subscribe } = permissionsFor(app, ns);
    // The order app, which replays dead letters, reads DLQ entries by sequence; nothing else touches a stream.
    const reads = AppTopology[app].replaysDeadLetters
      ? ['DLQ', 'ORDER', 'INVENTORY', 'PAYMENT', 'NOTIFICATION'].map((s) => `$JS.API.STREAM.MSG.GET.NS1_${s}`)
      : [];
    const api = publish.allow.filter((s) => s.startsWith('$JS.') && !reads.includes(s));
    expect(api.filter((s) => /STREAM\.|CONSUMER\.(CREATE|DELETE|DURABLE)|\$JS\.API\.>/.test(s))).toEqual([]);
    // Its own consumers, and the info of those it observes (the order app: the participants', for `saga show`).
    const durables = new Set(
      [...AppTopology[app].consumers, ...(AppTopology[app].observes ?? [])].map((c) => `NS1_${c.stream}.${c.durable}`),
    );
    const own = (subject: string) => [...durables].some((d) => subject.endsWith(`.${d}`) || subject.endsWith(`.${d}.>`));
    expect(api.filter((x) => x !== '$JS.API.INFO' && !own(x))).toEqual([]);
    expect(subscribe.allow).toContain(`_INBOX_${app}.>`);
    expect(publish.allow.every((s) => s.startsWith('$') || s.startsWith('ns1.'))).toBe(true);
  });

  it('covers every subject a consumer handles: sent by an app, or by ingress / operators', () => {
    const sent = new Set(AppNames.flatMap((a) => AppTopology[a].sends as string[]));
    const fromOutside = [
      Subjects.OrderCreated,
      Subjects.OrderRetrySaga,
      Subjects.OrderResumeSaga,
      Subjects.OrderReplayDeadLetter,
      Subjects.InventoryRestock,
      Subjects.PaymentDeposit,
    ];
    const handled = Object.values(Consumers).flatMap((c) => c.handles as string[]);
    expect(handled.filter((s) => !sent.has(s) && !(fromOutside as string[]).includes(s))).toEqual([]);
  });

  it('lets an operator publish operator commands, orders, deposits and restocks, but no participant command or reply', () => {
    const { publish } = permissionsFor('operator-alice', ns);
    expect(publish.allow).toEqual(
      expect.arrayContaining(['ns1.order.cmd.>', 'ns1.order.created', 'ns1.payment.cmd.deposit', 'ns1.inventory.cmd.restock']),
    );
    for (const s of [
      'ns1.payment.cmd.>',
      'ns1.payment.cmd.charge',
      'ns1.payment.evt.>',
      'ns1.inventory.cmd.>',
      'ns1.inventory.evt.>',
      'ns1.order.confirmed',
    ])
      expect(publish.allow).not.toContain(s);
  });

  it('lets an app only read the info of the consumers it observes, never pull them', () => {
    const { publish } = permissionsFor('order', ns);
    expect(publish.allow).toContain('$JS.API.CONSUMER.INFO.NS1_PAYMENT.payment-commands');
    expect(publish.allow).not.toContain('$JS.API.CONSUMER.MSG.NEXT.NS1_PAYMENT.payment-commands');
  });

  it('lets the order app replay to every subject a consumer pulls but operator commands', () => {
    const { publish } = permissionsFor('order', ns);
    expect(publish.allow).toEqual(
      expect.arrayContaining(['ns1.payment.cmd.>', 'ns1.inventory.evt.>', 'ns1.order.created', 'ns1.order.confirmed']),
    );
    expect(publish.allow).not.toContain('ns1.order.cmd.>');
    expect(permissionsFor('payment', ns).publish.allow).not.toContain('ns1.payment.cmd.>');
  });

  it('refuses an operator name that is not a plain word', () => {
    expect(() => permissionsFor('operator-x', ns)).not.toThrow();
    expect(() => operatorIdentity('Bad Name')).toThrow(/must match/);
  });
});
