import pino from 'pino';
import { Consumers, Headers, Namespace, Subjects } from '@orderflow/contracts';
import { ConsumerRunner, RetryPolicy } from './consumer.runner';
import { PermanentError, UnavailableError } from './errors';
import type { JetStreamClient } from './jetstream.client';
import type { InboundMessage } from './message';
import { headers as natsHeaders } from './nats';

/**
 * ConsumerRunner against a fake message source: a consumer whose messages the test pushes, each recording what the
 * runner did with it (ack, nak and its delay, working), and a DLQ whose publishes are recorded (or refused).
 */
const ns = new Namespace('unit');
const spec = Consumers.inventoryCommands;
// A short ack wait: messages in hand are kept alive, and held dead letters retried, every 100 ms.
const policy: RetryPolicy = { backoffMs: [100, 400], maxDeliver: 3, maxBatch: 8, ackWaitMs: 300, deadLetterRetryMs: [10, 20] };
const log = pino({ level: 'silent' });

class FakeMsg {
  readonly did: string[] = [];
  readonly headers = natsHeaders();
  readonly data: Uint8Array;
  readonly info: { deliveryCount: number; stream: string; streamSequence: number };

  constructor(
    readonly subject: string,
    body: unknown,
    seq: number,
    deliveryCount = 1,
  ) {
    this.data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    this.info = { deliveryCount, stream: ns.stream('INVENTORY'), streamSequence: seq };
    this.headers.set(Headers.MsgId, `msg-${seq}`);
  }
  ack = () => void this.did.push('ack');
  nak = (delay?: number) => void this.did.push(`nak ${delay}`);
  working = () => void this.did.push('working');
  term = () => void this.did.push('term');
}

/** An async iterable the test feeds: what `consume()` returns. */
class FakeMessages implements AsyncIterable<FakeMsg> {
  private readonly queue: FakeMsg[] = [];
  private wake?: () => void;
  private closed = false;
  push(...msgs: FakeMsg[]) {
    this.queue.push(...msgs);
    this.wake?.();
  }
  async close() {
    this.closed = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.queue.length > 0) yield this.queue.shift()!;
      else if (this.closed) return;
      else await new Promise<void>((r) => (this.wake = r));
    }
  }
}

function fakeClient(dlq: { refuse: boolean; letters: { subject: string; headers: Record<string, string> }[] }) {
  const messages = new FakeMessages();
  let seq = 0;
  const client = {
    ns,
    nc: { info: { max_payload: 1_048_576 } },
    consumer: async () => ({ consume: async () => messages }),
    js: {
      publish: async (subject: string, _data: Uint8Array, opts: { headers: ReturnType<typeof natsHeaders> }) => {
        if (dlq.refuse) throw new Error('maximum bytes exceeded');
        const h = opts.headers;
        dlq.letters.push({ subject, headers: Object.fromEntries([...h].map(([k]) => [k, h.get(k)])) });
        return { seq: ++seq, duplicate: false };
      },
    },
  };
  return { client: client as unknown as JetStreamClient, messages };
}

const restock = (seq: number, deliveryCount = 1, sku = 'SKU-1') =>
  new FakeMsg(ns.subject(Subjects.InventoryRestock), { sku, quantity: 1 }, seq, deliveryCount);
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

describe('ConsumerRunner', () => {
  let runner: ConsumerRunner;
  afterEach(() => runner?.stop());

  const start = async (
    handler: (batch: InboundMessage[]) => Promise<void>,
    opts: { refuse?: boolean; unavailable?: () => Promise<void> } = {},
  ) => {
    const dlq = { refuse: opts.refuse ?? false, letters: [] as { subject: string; headers: Record<string, string> }[] };
    const { client, messages } = fakeClient(dlq);
    runner = new ConsumerRunner(client, policy, log, opts.unavailable ? { whenAvailable: opts.unavailable } : undefined);
    await runner.start(spec, handler);
    return { messages, dlq };
  };

  it('hands messages that arrived together to the handler as one batch, and acks each after it returns', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const { messages } = await start(async (batch) => {
      batches.push(batch.map((m) => m.sequence));
      if (batches.length === 1) await first;
    });
    const msgs = [1, 2, 3, 4].map((s) => restock(s));
    messages.push(msgs[0]);
    await until(() => batches.length === 1);
    messages.push(msgs[1], msgs[2], msgs[3]); // arrive while the first batch is in the handler
    await new Promise((r) => setTimeout(r, 20));
    release();
    await until(() => msgs.every((m) => m.did.includes('ack')));
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('splits a failed batch: the good messages are acked, the failing one naked with the policy backoff', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { messages } = await start(async (batch) => {
      if (batch[0].sequence === 1) return gate;
      if (batch.some((m) => (m.body as { sku: string }).sku === 'BAD')) throw new Error('injected fault');
    });
    messages.push(restock(1));
    await new Promise((r) => setTimeout(r, 10));
    const good = restock(2);
    const bad = restock(3, 2, 'BAD');
    const alsoGood = restock(4);
    messages.push(good, bad, alsoGood);
    await new Promise((r) => setTimeout(r, 20));
    release();
    await until(() => alsoGood.did.includes('ack') && bad.did.length > 0);
    expect(good.did).toEqual(['ack']);
    expect(bad.did).toEqual(['nak 400']); // second delivery: backoffMs[1]
  });

  it('dead-letters on the last delivery with the code, then acks; a permanent error at once; a malformed body without calling the handler', async () => {
    const seen: number[] = [];
    const { messages, dlq } = await start(async (batch) => {
      seen.push(...batch.map((m) => m.sequence));
      const sku = (batch[0].body as { sku: string }).sku;
      if (sku === 'FAIL') throw new Error('injected fault');
      if (sku === 'NEVER') throw new PermanentError('no such thing');
    });
    const last = restock(1, 3, 'FAIL');
    const permanent = restock(2, 1, 'NEVER');
    const malformed = new FakeMsg(ns.subject(Subjects.InventoryRestock), { sku: 'X', quantity: 'two' }, 3);
    messages.push(last);
    await until(() => last.did.includes('ack'));
    messages.push(permanent);
    await until(() => permanent.did.includes('ack'));
    messages.push(malformed);
    await until(() => malformed.did.includes('ack'));
    expect(seen).not.toContain(3);
    expect(dlq.letters.map((l) => [l.subject, l.headers[Headers.Dlq.ErrorCode], l.headers[Headers.Dlq.Attempts]])).toEqual([
      [ns.subject(`dlq.${Subjects.InventoryRestock}`), 'transient', '3'],
      [ns.subject(`dlq.${Subjects.InventoryRestock}`), 'permanent', '1'],
      [ns.subject(`dlq.${Subjects.InventoryRestock}`), 'malformed', '1'],
    ]);
    expect(dlq.letters[0].headers[Headers.Dlq.Error]).toBe('Error: injected fault');
  });

  it('holds messages while the database is unavailable: no nak, no dead letter, handled once it is back', async () => {
    let up = false;
    let back!: () => void;
    const available = new Promise<void>((r) => (back = r));
    const handled: number[] = [];
    const { messages, dlq } = await start(
      async (batch) => {
        if (!up) throw new UnavailableError('circuit open');
        handled.push(...batch.map((m) => m.sequence));
      },
      { unavailable: () => available },
    );
    const msgs = [restock(1), restock(2)];
    messages.push(...msgs);
    await until(() => msgs.every((m) => m.did.includes('working'))); // kept alive while they wait
    expect(msgs.flatMap((m) => m.did).filter((d) => d !== 'working')).toEqual([]);
    up = true;
    back();
    await until(() => msgs.every((m) => m.did.includes('ack')));
    expect(handled.sort()).toEqual([1, 2]);
    expect(dlq.letters).toEqual([]);
  });

  it('holds a message whose dead letter the DLQ refuses, alive and unacked, and dead-letters it once the DLQ takes it', async () => {
    const { messages, dlq } = await start(
      async () => {
        throw new PermanentError('never');
      },
      { refuse: true },
    );
    const m = restock(1);
    messages.push(m);
    await until(() => m.did.filter((d) => d === 'working').length >= 2); // held: kept alive past the in-place tries
    expect(m.did.filter((d) => d !== 'working')).toEqual([]);
    expect(dlq.letters).toEqual([]);
    dlq.refuse = false;
    await until(() => m.did.includes('ack'));
    expect(dlq.letters.map((l) => l.headers[Headers.Dlq.ErrorCode])).toEqual(['permanent']);
    expect(m.did).not.toContain('nak');
  });

  it('acks a subject the consumer ignores, and dead-letters one it does not handle', async () => {
    const handler = jest.fn(async () => undefined);
    const replies = Consumers.orderSagaInventoryReplies;
    const dlq = { refuse: false, letters: [] as { subject: string; headers: Record<string, string> }[] };
    const { client, messages } = fakeClient(dlq);
    runner = new ConsumerRunner(client, policy, log);
    await runner.start(replies, handler);
    const ignored = new FakeMsg(ns.subject(Subjects.InventoryRestocked), { sku: 'SKU-1', available: 1, reserved: 0, sold: 0 }, 1);
    const unknown = new FakeMsg(ns.subject('inventory.evt.unheard-of'), {}, 2);
    messages.push(ignored, unknown);
    await until(() => ignored.did.includes('ack') && unknown.did.includes('ack'));
    expect(handler).not.toHaveBeenCalled();
    expect(dlq.letters.map((l) => l.headers[Headers.Dlq.ErrorCode])).toEqual(['malformed']);
  });
});
