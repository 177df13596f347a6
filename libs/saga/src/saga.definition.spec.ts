import { Participants, Subjects } from '@orderflow/contracts';
import { sagaSteps, StepResult } from './saga.definition';

interface Data {
  sagaId: string;
  orderId: string;
}
const step = sagaSteps<Data>();
const ok = (): StepResult => ({ ok: true });
const d: Data = { sagaId: 's1', orderId: 'o1' };

// The `@ts-expect-error` lines are checked by `npm run typecheck` (part of `npm test`): each must fail to compile.
describe('saga steps on participant endpoints (sagaSteps)', () => {
  it("builds a remote step from its endpoint: the command's subject, the replies, and the endpoint's undo", () => {
    const s = step.invoke('release', Participants.inventory.commit, {
      command: (x) => ({ orderId: x.orderId, sagaId: x.sagaId }),
      onReply: { [Subjects.InventoryCommitted]: ok },
    });
    expect(s.invoke!(d)).toEqual({ subject: 'inventory.cmd.commit', body: { orderId: 'o1', sagaId: 's1' } });
    expect(s.compensation).toBeUndefined();

    const charge = step.invoke('chargePayment', Participants.payment.charge, {
      command: (x) => ({ orderId: x.orderId, sagaId: x.sagaId, customerId: 'ann', amount: 100, currency: 'USD' }),
      onReply: { [Subjects.PaymentCharged]: ok, [Subjects.PaymentDeclined]: ok },
      compensation: { name: 'refundPayment', command: (x) => ({ orderId: x.orderId, sagaId: x.sagaId, customerId: 'ann' }) },
    });
    expect(charge.compensation?.invoke(d)).toEqual({
      subject: 'payment.cmd.refund',
      body: { orderId: 'o1', sagaId: 's1', customerId: 'ann' },
    });
    expect(charge.compensation?.replies).toEqual([Subjects.PaymentRefunded]);
  });

  it('refuses at compile time a body of another class, a reply left unhandled, a reply the endpoint never sends, and a missing undo', () => {
    step.invoke('commit', Participants.inventory.commit, {
      // @ts-expect-error: inventory.cmd.commit carries CommitStock (sagaId missing)
      command: (x) => ({ orderId: x.orderId }),
      onReply: { [Subjects.InventoryCommitted]: ok },
    });
    step.invoke('reserve', Participants.inventory.reserve, {
      command: (x) => ({ orderId: x.orderId, sagaId: x.sagaId, items: [] }),
      // @ts-expect-error: inventory.evt.rejected is a reply of inventory.cmd.reserve and has no handler
      onReply: { [Subjects.InventoryReserved]: ok },
      compensation: { name: 'release', command: (x) => ({ orderId: x.orderId, sagaId: x.sagaId }) },
    });
    step.invoke('commit', Participants.inventory.commit, {
      command: (x) => ({ orderId: x.orderId, sagaId: x.sagaId }),
      // @ts-expect-error: payment.evt.charged is not a reply of inventory.cmd.commit
      onReply: { [Subjects.InventoryCommitted]: ok, [Subjects.PaymentCharged]: ok },
    });
    // ...and at run time too, should it escape the types.
    expect(() =>
      // @ts-expect-error: inventory.cmd.reserve declares an undo, so the step must give its compensation
      step.invoke('reserve', Participants.inventory.reserve, {
        command: (x) => ({ orderId: x.orderId, sagaId: x.sagaId, items: [] }),
        onReply: { [Subjects.InventoryReserved]: ok, [Subjects.InventoryRejected]: ok },
      }),
    ).toThrow(/a compensation exactly when inventory.cmd.reserve declares one/);
  });

  it('refuses at run time a compensation on an endpoint without an undo', () => {
    const spec = {
      command: (x: Data) => ({ orderId: x.orderId, sagaId: x.sagaId }),
      onReply: { [Subjects.InventoryCommitted]: ok },
      compensation: { name: 'uncommit', command: (x: Data) => ({ orderId: x.orderId, sagaId: x.sagaId }) },
    };
    expect(() => step.invoke('commit', Participants.inventory.commit, spec as never)).toThrow(
      /a compensation exactly when inventory.cmd.commit declares one/,
    );
  });

  it('builds a local step, the pivot when asked', () => {
    const run = async () => ok();
    expect(step.local('createOrder', run, { pivot: true })).toEqual({ name: 'createOrder', local: run, pivot: true });
    expect(step.local('note', run)).toEqual({ name: 'note', local: run });
  });
});
