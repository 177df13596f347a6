import { Consumers, messageTypeOf, StockReleased, Subjects } from '@orderflow/contracts';
import type { Command, ReplyHandlers } from '@orderflow/saga';
import { isReply, reply } from './reply';

// The `@ts-expect-error` lines below are checked by `npm run typecheck` (part of `npm test`): each must fail to
// compile, or the directive itself is an error. They are what "a subject sent without a class is a compile error" means.
describe('typed messages (MessageTypes)', () => {
  it('reply() takes a subject of MessageTypes with a body of its class, and nothing else', () => {
    // @ts-expect-error: no message class for this subject
    expect(isReply(reply('inventory.evt.nope', { orderId: 'o' }))).toBe(true);
    // @ts-expect-error: inventory.cmd.reserve carries ReserveStock, which has sagaId and items
    reply(Subjects.InventoryReserve, { orderId: 'o' });
    const r = reply(Subjects.InventoryReleased, { orderId: 'o' }, { sagaId: 's' });
    expect(r).toEqual({ subject: 'inventory.evt.released', body: { orderId: 'o' }, headers: { sagaId: 's' } });
  });

  it("types a saga step's command and its reply handlers by subject", () => {
    // @ts-expect-error: payment.cmd.charge carries ChargePayment (amount, currency, customerId missing)
    const bad: Command = { subject: Subjects.PaymentCharge, body: { orderId: 'o', sagaId: 's' } };
    const handlers: ReplyHandlers = {
      [Subjects.InventoryReleased]: (body: StockReleased) => ({ ok: body.orderId === 'o' }) as { ok: true },
      // @ts-expect-error: a reply subject without a message class
      'inventory.evt.nope': () => ({ ok: true }),
    };
    expect(bad.subject).toBe('payment.cmd.charge');
    expect(Object.keys(handlers)).toHaveLength(2);
  });

  it('every subject a consumer handles or ignores has a message class (checked at run time too)', () => {
    const subjects = Object.values(Consumers).flatMap((c) => [...c.handles, ...(('ignores' in c ? c.ignores : []) as string[])]);
    expect(subjects.length).toBeGreaterThan(10);
    expect(subjects.filter((s) => !messageTypeOf(s))).toEqual([]);
    expect(messageTypeOf('inventory.evt.nope')).toBeUndefined();
    expect(messageTypeOf('toString')).toBeUndefined();
  });
});
