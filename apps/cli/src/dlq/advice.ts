import { ErrorCode, Subjects, SagaView } from '@orderflow/contracts';
import { PipelineClient } from '../client';
import { awaitedSubjects } from '../saga/definition';
import { DlqMessage } from './dead-letters';

/**
 * What to do with an entry, from its current state and its order's newest saga attempt (docs/operations.md, "advice"). Every
 * command advised is one the pipeline would carry out now:
 * - `replay`: replaying lets something happen (the saga still waits on it, or nothing about the order exists yet);
 * - `patch` / `body`: it can never pass validation or was refused for good as it is: replay it with `--patch` (a JSON
 *   body) or `--body FILE` (any body), or purge it;
 * - `moved_on`: the saga no longer needs it (replaying changes nothing; `saga retry` or `saga resume` may);
 * - `resolved`: its order's saga ended after it was dead-lettered; nothing to do;
 * - `replayed`: replayed before (and maybe dead-lettered again); `gone`: the original message is gone (lost, purged).
 */
export type Verdict = 'replay' | 'patch' | 'body' | 'moved_on' | 'resolved' | 'replayed' | 'gone';

export interface Advice {
  verdict: Verdict;
  text: string;
  /** The saga the advice is about (its order's newest attempt), if any, for `dlq show --json`. */
  saga: { sagaId: string; attempt: number; status: string; reason: string | null } | null;
}

/** Error codes that say the message can never succeed as it is: replaying it unchanged would fail the same way. */
const REFUSED_FOR_GOOD = new Set<ErrorCode | null>(['permanent', 'contradicts_records', 'unexpected_reply', 'idempotency_key_reused']);

/**
 * Looks up the newest saga attempt of the entry's order (or its own attempt when it names no order) and advises.
 * `body` is the entry's stored body, when read (to tell a JSON body, which `--patch` can fix, from another).
 */
export async function adviceFor(client: PipelineClient, e: DlqMessage, body?: Uint8Array | null): Promise<Advice> {
  const id = e.orderId ?? e.sagaId;
  const view = id ? await client.query<SagaView>(Subjects.QuerySaga, { id }) : undefined;
  return advise(e, view, body === undefined ? undefined : isJson(body));
}

const isJson = (body: Uint8Array | null): boolean => {
  try {
    JSON.parse(Buffer.from(body ?? []).toString('utf8'));
    return true;
  } catch {
    return false;
  }
};

/** `view`: the newest attempt of the entry's order. `json`: whether its body is JSON (undefined: not known). */
export function advise(e: DlqMessage, view: SagaView | undefined, json?: boolean): Advice {
  const saga = view ? { sagaId: view.sagaId, attempt: view.attempt, status: view.status, reason: view.reason } : null;
  const say = (verdict: Verdict, text: string): Advice => ({ verdict, text, saga });
  const replay = `orderflow dlq replay ${e.seq} --why "…"`;
  const purge = `orderflow dlq purge ${e.seq} --why "…" --yes`;
  const state = view && `${view.status}${view.reason ? ` (${view.reason})` : ''}`;
  if (e.state === 'purged' || e.state === 'lost' || !e.hasBody)
    return say('gone', `the original message is gone (${e.state}): there is nothing to replay`);
  if (e.state === 'resolved' && view) {
    const again = view.status === 'CANCELLED' ? `; to run the order again: \`orderflow saga retry ${view.orderId} --why "…"\`` : '';
    return say(
      'resolved',
      `resolved: saga attempt ${view.attempt} of order ${view.orderId} ended ${state} at ${view.updatedAt}, after this was dead-lettered; nothing to do here (\`${purge}\` clears it)${again}`,
    );
  }
  if (e.state === 'failed_again')
    return say(
      'replayed',
      `replayed as ${e.record?.newMsgId}, which was dead-lettered again as ${e.failedAgainAs}: see \`orderflow dlq show ${e.failedAgainAs}\``,
    );
  if (e.state === 'replayed')
    return say(
      'replayed',
      `replayed by ${e.record?.operator} at ${e.record?.at} as ${e.record?.newMsgId}${state ? `; the saga is ${state}` : ''}: replaying it again needs --force`,
    );

  if (e.cutFrom !== null)
    return say(
      'body',
      `this dead letter keeps only the head of its ${e.cutFrom}-byte body (too large to keep whole): it can be neither replayed nor patched; replace the body whole: \`orderflow dlq replay ${e.seq} --body fixed.json --why "…"\`, or \`${purge}\``,
    );
  const fix = (why: string): Advice =>
    json === false
      ? say(
          'body',
          `${why}: its body is not JSON, so replace it whole: \`orderflow dlq replay ${e.seq} --body fixed.bin --why "…"\`, or \`${purge}\``,
        )
      : say('patch', `${why}: fix it with \`orderflow dlq replay ${e.seq} --patch fix.json --why "…"\` (or --body FILE), or \`${purge}\``);
  const malformed = e.errorCode === 'malformed';
  const refusedForGood = REFUSED_FOR_GOOD.has(e.errorCode);
  const problem = e.error.replace(/^\w+Error: /, '');

  if (e.subject === Subjects.OrderCreated) {
    if (e.errorCode === 'idempotency_key_reused')
      return say(
        'moved_on',
        `order ${e.orderId} exists with a different body: replaying changes nothing; publish this order under a new order id, then \`${purge}\``,
      );
    if (view)
      return say('moved_on', `order ${e.orderId} exists (saga attempt ${view.attempt} ${state}): replaying changes nothing; \`${purge}\``);
    if (malformed) return fix(`the body fails validation (${problem})`);
    return say('replay', `no saga exists for order ${e.orderId ?? '(unknown)'}: replaying starts it: \`${replay}\``);
  }
  if (malformed) return fix(`the body fails validation (${problem})`);
  if (!e.sagaId && !e.orderId) {
    if (refusedForGood) return fix(`the service refused it for good (${problem}), and would refuse it again as it is`);
    return say(
      'replay',
      `not part of a saga: replaying republishes it to ${e.subject} and applies it once more (check its effect first): \`${replay}\``,
    );
  }
  if (!view) return say('moved_on', `there is no saga ${e.sagaId ?? `for order ${e.orderId}`}: replaying changes nothing; \`${purge}\``);
  if (view.status === 'CANCELLED')
    return say(
      'moved_on',
      `the order's newest saga attempt (${view.attempt}) is ${state}: replaying this changes nothing; to run the order again: \`orderflow saga retry ${view.orderId} --why "…"\``,
    );
  if (view.status === 'COMPLETED')
    return say('moved_on', `the order's newest saga attempt (${view.attempt}) COMPLETED: replaying this changes nothing; \`${purge}\``);
  if (e.sagaId && e.sagaId !== view.sagaId)
    return say(
      'moved_on',
      `it belongs to attempt ${e.sagaId}, and the order has a newer attempt (${view.attempt}, ${state}): replaying it changes nothing; \`${purge}\``,
    );
  if (awaitedSubjects(view).includes(e.subject)) {
    if (refusedForGood) return fix(`the service refused it for good (${problem}), and would refuse it again as it is`);
    const also = view.status === 'FAILED' ? ` or \`orderflow saga resume ${view.sagaId} --why "…"\`` : '';
    return say('replay', `the saga is ${state} and still waits on this step: replaying lets it carry on: \`${replay}\`${also}`);
  }
  return say('moved_on', `the saga is ${state} and has moved past ${e.subject}: replaying it changes nothing; \`${purge}\``);
}
