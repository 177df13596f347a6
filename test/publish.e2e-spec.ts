import pino from 'pino';
import { Namespace } from '@orderflow/contracts';
import { JetStreamClient, PubAcks, publishRefusal } from '@orderflow/messaging';
import {
  ClosedConnectionError,
  connect,
  headers,
  isNoResponders,
  JetStreamApiError,
  jetstreamManager,
  JetStreamManager,
  NatsConnection,
  TimeoutError,
} from '@orderflow/messaging/nats';

/**
 * `PubAcks` (every JetStream publish of a connection answered on one reply subscription) against the shared
 * nats-server: a stream of this file's own, `pubacks<pid>`, taking `<ns>.in.>` with a 1 KiB message limit.
 */
const ns = new Namespace(`pubacks${process.pid}`);
const STREAM = ns.prefix.toUpperCase();
const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const body = (s: string) => Buffer.from(JSON.stringify({ s }));

describe('PubAcks: JetStream publishes on one reply subscription', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    nc = await connect({ servers: url, noAsyncTraces: true });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: [ns.subject('in.>')], max_msg_size: 1024 });
  });

  afterAll(async () => {
    await jsm.streams.delete(STREAM).catch(() => undefined);
    await nc.close();
  });

  it('resolves each of many concurrent publishes with its own stream sequence, and a re-published id as a duplicate', async () => {
    const acks = new PubAcks(nc, '_INBOX', 5000);
    const first = (await jsm.streams.info(STREAM)).state.last_seq;
    const got = await Promise.all(
      Array.from({ length: 200 }, (_, i) => acks.publish(ns.subject(`in.${i}`), body(`m${i}`), `id-${i}`, headers())),
    );
    expect(got.every((a) => a.stream === STREAM && !a.duplicate)).toBe(true);
    expect(new Set(got.map((a) => a.seq)).size).toBe(200);
    // Each ack is its own publish's: the stored message at that sequence is the one published.
    for (const i of [0, 57, 199]) {
      const stored = await jsm.streams.getMessage(STREAM, { seq: got[i].seq });
      expect(stored?.subject).toBe(ns.subject(`in.${i}`));
    }
    expect(Math.min(...got.map((a) => a.seq))).toBe(first + 1);

    const again = await acks.publish(ns.subject('in.57'), body('m57'), 'id-57', headers());
    expect(again).toMatchObject({ stream: STREAM, seq: got[57].seq, duplicate: true });
  });

  it("rejects a publish the stream refuses with JetStream's API error, and one no stream takes as no responders", async () => {
    const acks = new PubAcks(nc, '_INBOX', 5000);
    const tooLarge = await acks.publish(ns.subject('in.big'), Buffer.alloc(2048, 'x'), 'big', headers()).catch((e: Error) => e);
    expect(tooLarge).toBeInstanceOf(JetStreamApiError);
    expect(publishRefusal(tooLarge)).toMatch(/STREAM_MAX_MSG_SIZE/);

    const nowhere = await acks.publish(ns.subject('elsewhere'), body('x'), 'nowhere', headers()).catch((e: Error) => e);
    expect(isNoResponders(nowhere)).toBe(true);
    expect((nowhere as Error).message).toContain(ns.subject('elsewhere'));
  });

  it('times out a publish nobody answers, once, and still answers the publishes after it', async () => {
    // A plain subscriber that never replies: the server has a responder, so no 503 comes either.
    const silent = nc.subscribe(ns.subject('silent'));
    const acks = new PubAcks(nc, '_INBOX', 300);
    const t0 = performance.now();
    const unanswered = acks.publish(ns.subject('silent'), body('x'), 'silent', headers()).catch((e: Error) => e);
    const answered = await acks.publish(ns.subject('in.after'), body('y'), 'after', headers());
    expect(answered.stream).toBe(STREAM);
    const e = await unanswered;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    silent.unsubscribe();
  });

  it('rejects what waits when the connection closes, without waiting for the timeout, and what comes after', async () => {
    const own = await connect({ servers: url, noAsyncTraces: true });
    own.subscribe(ns.subject('silent2'));
    const acks = new PubAcks(own, '_INBOX', 60_000);
    const waiting = acks.publish(ns.subject('silent2'), body('x'), 'closing', headers()).catch((e: Error) => e);
    await own.flush();
    await own.close();
    expect(await waiting).toBeInstanceOf(ClosedConnectionError);
    // After it: a rejected promise, not a throw.
    const after = acks.publish(ns.subject('in.late'), body('x'), 'late', headers());
    await expect(after).rejects.toBeInstanceOf(ClosedConnectionError);
  });

  it("JetStreamClient.publish sends the message id as Nats-Msg-Id: the stream's duplicate window drops a second publish", async () => {
    const client = await JetStreamClient.connect(url, ns, pino({ level: 'silent' }), 'pubacks-test');
    try {
      const msg = { subject: 'in.client', body: { n: 1 }, correlationId: 'order-1' };
      const a = await client.publish(msg, 'client-1');
      const b = await client.publish(msg, 'client-1');
      expect(a.duplicate).toBe(false);
      expect(b).toMatchObject({ seq: a.seq, duplicate: true });
      const stored = await client.storedMessage(STREAM, a.seq);
      expect(stored?.headers).toMatchObject({ 'Nats-Msg-Id': 'client-1', 'Correlation-Id': 'order-1' });
    } finally {
      await client.close();
    }
  });
});
