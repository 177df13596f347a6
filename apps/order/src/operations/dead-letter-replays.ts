import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { apply as mergePatch } from 'json-merge-patch';
import {
  Consumers,
  ConsumerSpec,
  Headers,
  MalformedMessageError,
  MAX_REPLAYS,
  Message,
  messageTypeOf,
  parseMessage,
  RefusalCode,
  ReplayDeadLetter,
  Subjects,
} from '@orderflow/contracts';
import { InboundMessage, JetStreamClient, readDeadLetter, StoredDeadLetter } from '@orderflow/messaging';
import { Tx } from '@orderflow/persistence';
import { Logger, LOGGER } from '@orderflow/runtime';
import { SagaStore } from '@orderflow/saga';
import { OrdersRepository } from '../orders/orders.repository';
import { Operator } from './operator-keys';
import { OperatorsRepository } from './operators.repository';
import type { OperatorOutcome } from './saga-commands';

const ENDED = ['COMPLETED', 'CANCELLED'];
/** Every subject a consumer of the pipeline handles but operator commands (signed, never replayed): where a replay may go. */
const replayable = new Set(
  Object.values(Consumers as Record<string, ConsumerSpec>)
    .filter((c) => !c.signed)
    .flatMap((c) => c.handles as string[]),
);
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 1024);

/**
 * `order.cmd.replay-dead-letter` (`orderflow dlq replay`): the order app reads the dead letter itself, enforces the
 * replay rules — a reason, at most 3 replays, not replayed before, its saga not ended (all but the reason waived by
 * `force`) — applies the signed patch (or takes the signed whole body instead), validates the result against its subject's class and republishes it through
 * the outbox with its lineage (`Replay-Of`, `Replay-Count`, `Replayed-By`, `Replay-Why`), in the transaction that
 * records the action. Operators cannot publish to the participants' subjects themselves.
 * Pattern: "Dead letter channel" with a message store and replay (Hohpe & Woolf, *Enterprise Integration Patterns*).
 */
@Injectable()
export class DeadLetterReplays {
  constructor(
    private readonly client: JetStreamClient,
    private readonly orders: OrdersRepository,
    private readonly sagas: SagaStore,
    private readonly operators: OperatorsRepository,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async replay(tx: Tx, cmd: ReplayDeadLetter, cause: InboundMessage, operator: Operator): Promise<OperatorOutcome> {
    const refuse = (code: RefusalCode, reason: string): OperatorOutcome => ({ done: false, body: { dlqSeq: cmd.dlqSeq, code, reason } });
    if (cmd.patch && cmd.body) return refuse('invalid', 'a replay takes a patch or a whole body, not both');
    // One replay of a dead letter at a time, across instances: a second command for it waits for the first to
    // commit, then finds it replayed (two operators replaying the same SEQ at the same instant replay it once).
    await this.operators.lockReplaysOf(tx, cmd.dlqSeq);
    const entry = await readDeadLetter(this.client, cmd.dlqSeq);
    if (!entry) return refuse('not_found', `no dead letter ${cmd.dlqSeq} (purged, or never there)`);
    if (entry.originalId !== cmd.originalId)
      return refuse(
        'changed',
        `dead letter ${cmd.dlqSeq} is of message ${entry.originalId}, not ${cmd.originalId}: the DLQ changed since the plan`,
      );
    if (!entry.data && !cmd.body)
      return refuse('gone', `the original message of dead letter ${cmd.dlqSeq} is gone: there is nothing to replay`);
    if (entry.cutFrom && !cmd.body)
      return refuse(
        'gone',
        `dead letter ${cmd.dlqSeq} keeps only the first ${entry.data?.length ?? 0} of its ${entry.cutFrom} bytes: it cannot be replayed`,
      );
    const type = messageTypeOf(entry.subject);
    if (!type || !replayable.has(entry.subject)) return refuse('invalid', `${entry.subject} is not a subject a consumer handles`);
    if (!cmd.force) {
      const why = await this.whyNot(tx, entry);
      if (why) return refuse(why.code, `${why.reason} (--force replays it anyway)`);
    }

    let body: unknown = cmd.body;
    if (!body) {
      try {
        body = JSON.parse(Buffer.from(entry.data!).toString('utf8'));
      } catch {
        return refuse('invalid', 'the body is not JSON: it cannot be patched or replayed as it is; replace it whole (--body FILE)');
      }
      if (cmd.patch) body = mergePatch(structuredClone(body), cmd.patch);
    }
    const what = cmd.body ? 'the new body' : cmd.patch ? 'the patched body' : 'the body';
    try {
      parseMessage(type, Buffer.from(JSON.stringify(body)));
    } catch (e) {
      if (!(e instanceof MalformedMessageError)) throw e;
      return refuse('invalid', `${what} fails validation: ${e.message}`);
    }

    const newMsgId = randomUUID();
    tx.send({ subject: entry.subject, body, headers: lineage(entry, operator, cmd.why), id: newMsgId } as Message & { id: string });
    await this.operators.recordReplay(tx, {
      commandId: cause.messageId,
      dlqSeq: cmd.dlqSeq,
      replayOf: entry.originalId,
      newMsgId,
      patch: cmd.patch ?? null,
      body: cmd.body ?? null,
      operator: operator.name,
      publicKey: operator.publicKey,
      why: cmd.why,
    });
    this.log.info(
      { dlqSeq: cmd.dlqSeq, subject: entry.subject, orderId: entry.headers[Headers.CorrelationId], newMsgId, operator: operator.name },
      'dead letter replayed by an operator',
    );
    return {
      done: true,
      subject: Subjects.OrderDeadLetterReplayed,
      body: { dlqSeq: cmd.dlqSeq, subject: entry.subject, newMsgId, operator: operator.name },
    };
  }

  /** Why replaying `entry` would be wrong without `force`: replayed before, too often, or its saga has ended. */
  private async whyNot(tx: Tx, entry: StoredDeadLetter): Promise<{ code: RefusalCode; reason: string } | null> {
    const notAllowed = (reason: string) => ({ code: 'not_allowed' as const, reason });
    const before = await this.operators.lastReplay(tx, entry.originalId, entry.seq);
    if (before)
      return {
        code: 'already_replayed',
        reason: `dead letter ${entry.seq} was replayed by ${before.operator} at ${before.at.toISOString()} (as ${before.new_msg_id})`,
      };
    if (entry.replayCount >= MAX_REPLAYS) return notAllowed(`its message was replayed ${entry.replayCount} times already`);
    const orderId = entry.headers[Headers.CorrelationId];
    if (entry.subject === Subjects.OrderCreated) {
      const order = orderId ? await this.orders.find(tx, orderId) : undefined;
      return order ? notAllowed(`order ${orderId} exists (${order.status}): replaying changes nothing`) : null;
    }
    const sagaId = entry.headers[Headers.SagaId];
    if (!sagaId && !orderId) return null; // outside any saga (a deposit, a restock)
    const saga = sagaId ? await this.sagas.statusOf(tx, sagaId) : await this.sagas.newest(tx, orderId!);
    if (!saga) return notAllowed(`there is no saga ${sagaId ?? `for order ${orderId}`}: replaying changes nothing`);
    if (ENDED.includes(saga.status)) return notAllowed(`saga ${saga.id} is ${saga.status}: replaying changes nothing`);
    return null;
  }
}

/** The headers of a replay: the original's (without the dead letter's, the broker's and the signature), plus lineage. */
function lineage(entry: StoredDeadLetter, operator: Operator, why: string): Record<string, string> {
  const drop = (k: string) => k.startsWith('Dlq-') || k.startsWith('Nats-') || k === Headers.Signer || k === Headers.Signature;
  return {
    ...Object.fromEntries(Object.entries(entry.headers).filter(([k]) => !drop(k))),
    [Headers.ReplayOf]: entry.originalId,
    [Headers.ReplayCount]: String(entry.replayCount + 1),
    [Headers.ReplayedBy]: operator.name,
    [Headers.ReplayWhy]: oneLine(why),
  };
}
