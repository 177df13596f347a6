import { Subjects, SagaView } from '@orderflow/contracts';
import { PipelineClient } from '../client';
import { awaitedSubjects } from '../saga/definition';
import { DlqMessage } from './dead-letters';

/**
 * What replaying an entry would do, from its saga's current state (OPERATIONS.md "advice"):
 * - `replay`: replaying lets something happen (the saga still waits on it, or nothing about the order exists yet);
 * - `patch`: the body can never pass validation; replay it with `--patch`;
 * - `moved_on`: the saga no longer needs it (replaying changes nothing; `saga retry` or `saga resume` may);
 * - `replayed`: replayed before; `gone`: the original message is gone (lost, purged).
 */
export type Verdict = 'replay' | 'patch' | 'moved_on' | 'replayed' | 'gone';

export interface Advice {
  verdict: Verdict;
  text: string;
  /** The saga the advice is about, if any: `{sagaId, attempt, status, reason}` for `dlq show --json`. */
  saga: { sagaId: string; attempt: number; status: string; reason: string | null } | null;
}

/** Looks up the saga of the entry (its attempt, or the order's newest) and advises. */
export async function adviceFor(client: PipelineClient, e: DlqMessage): Promise<Advice> {
  const id = e.sagaId ?? e.orderId;
  const view = id ? await client.query<SagaView>(Subjects.QuerySaga, { id }) : undefined;
  return advise(e, view);
}

export function advise(e: DlqMessage, view: SagaView | undefined): Advice {
  const saga = view ? { sagaId: view.sagaId, attempt: view.attempt, status: view.status, reason: view.reason } : null;
  const say = (verdict: Verdict, text: string): Advice => ({ verdict, text, saga });
  const replay = `orderflow dlq replay ${e.seq} --why "…"`;
  if (e.state === 'purged' || e.state === 'lost' || !e.hasBody)
    return say('gone', `the original message is gone (${e.state}): there is nothing to replay`);
  if (e.state !== 'new')
    return say(
      'replayed',
      `already replayed (${e.state}${e.record?.newMsgId ? `, as ${e.record.newMsgId}` : ''}): replaying it again needs --force`,
    );
  const malformed = /^MalformedMessageError/.test(e.error);

  if (e.subject === Subjects.OrderCreated) {
    if (/idempotency_key_reused/.test(e.error))
      return say(
        'moved_on',
        `order ${e.orderId} exists with a different body: replaying changes nothing; publish this order under a new order id`,
      );
    if (view)
      return say(
        'moved_on',
        `order ${e.orderId} exists (saga attempt ${view.attempt} ${view.status}${view.reason ? `, ${view.reason}` : ''}): replaying changes nothing`,
      );
    if (malformed)
      return say(
        'patch',
        `the body fails validation (${e.error.replace(/^MalformedMessageError: /, '')}): fix it with \`orderflow dlq replay ${e.seq} --patch fix.json --why "…"\``,
      );
    return say('replay', `no saga exists for order ${e.orderId ?? '(unknown)'}: replaying starts it: \`${replay}\``);
  }
  if (malformed)
    return say(
      'patch',
      `the body fails validation (${e.error.replace(/^MalformedMessageError: /, '')}): fix it with \`orderflow dlq replay ${e.seq} --patch fix.json --why "…"\``,
    );
  if (!e.sagaId && !e.orderId)
    return say(
      'replay',
      `not part of a saga: replaying republishes it to ${e.subject} and applies it once more (check its effect first): \`${replay}\``,
    );
  if (!view) return say('moved_on', `there is no saga ${e.sagaId ?? `for order ${e.orderId}`}: replaying changes nothing`);
  const state = `${view.status}${view.reason ? ` (${view.reason})` : ''}`;
  if (view.status === 'CANCELLED') {
    return say(
      'moved_on',
      `the saga of this order was ${state} after this message was dead-lettered: replaying it changes nothing; run \`orderflow saga retry ${view.orderId} --why "…"\``,
    );
  }
  if (view.status === 'COMPLETED')
    return say(
      'moved_on',
      `the saga of this order COMPLETED: replaying it changes nothing; purge it (\`orderflow dlq purge ${e.seq} --why "…" --yes\`)`,
    );
  if (awaitedSubjects(view).includes(e.subject)) {
    const also = view.status === 'FAILED' ? ` or \`orderflow saga resume ${view.sagaId} --why "…"\`` : '';
    return say('replay', `the saga is ${state} and still waits on this step: replaying lets it carry on: \`${replay}\`${also}`);
  }
  return say('moved_on', `the saga is ${state} and has moved past ${e.subject}: replaying it changes nothing`);
}
