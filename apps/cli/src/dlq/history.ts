import { Headers, Subjects } from '@orderflow/contracts';
import { checkSignature } from '@orderflow/messaging';
import { PipelineClient } from '../client';
import { DeadLetters, readStream } from './dead-letters';

/** One entry of one audited operator action: a line of `dlq history --json` (docs/operations.md); times ISO 8601. */
export interface HistoryRow {
  at: string;
  /** The operator named in the event. */
  operator: string;
  /**
   * What its signature says: `verified` (a registered operator key, named `operator`), `unchecked` (valid, but the
   * order service did not answer, so the key's owner is unknown), or what is wrong with it.
   */
  signature: 'verified' | 'unchecked' | string;
  action: 'replay' | 'purge';
  seq: number;
  why: string;
  /** For a replay: the merge patch sent, or the whole body that replaced the stored one (its sha256 and size). */
  change: { patch: unknown } | { body: { sha256: string; bytes: number } } | null;
  /** For a replay: the new message's id. */
  newMsgId: string | null;
  /** For a replay that was dead-lettered in turn: that dead letter's SEQ. */
  failedAgainAs: number | null;
}

interface AuditEvent {
  action: 'replay' | 'purge';
  entries: { seq: number; newMsgId?: string }[];
  why: string;
  operator: string;
  at: string;
  patch?: unknown;
  body?: { sha256: string; bytes: number } | null;
}

/**
 * The DLQ's audit, oldest first: every `ops.dlq.*` event on the OPS stream (written by `dlq replay` and `dlq purge`, one
 * event per 1,000 entries), one row per entry, with the signature checked against the registered operator keys; only
 * the rows of dead letter `seq` when given.
 */
export async function dlqHistory(client: PipelineClient, dlq: DeadLetters, seq?: number): Promise<HistoryRow[]> {
  const subject = client.ns.subject(Subjects.operatorEvent('dlq.>'));
  const events: { event: AuditEvent; signature: HistoryRow['signature'] }[] = [];
  await readStream(
    client,
    await dlq.manager(),
    client.ns.stream('OPS'),
    async (m) => {
      const event = JSON.parse(m.string()) as AuditEvent;
      if (seq !== undefined && !event.entries.some((e) => e.seq === seq)) return;
      const check = checkSignature((h) => m.headers?.get(h) || undefined, m.subject, m.headers?.get(Headers.MsgId), m.data);
      let signature: HistoryRow['signature'];
      if (check.status === 'none') signature = 'unsigned';
      else if (check.status === 'invalid') signature = `does not verify (${check.signer}): changed since it was signed`;
      else {
        const name = await dlq.operatorOf(check.signer);
        signature =
          name === null
            ? 'unchecked'
            : name === event.operator
              ? 'verified'
              : `signed by ${check.signer}, ${name === undefined ? 'not a registered operator key' : `the key of ${name}`}`;
      }
      events.push({ event, signature });
    },
    { filter: subject, bodies: true },
  );
  const bornAs = events.some(({ event }) => event.action === 'replay') ? await dlq.bornAs() : new Map<string, number>();
  return events.flatMap(({ event, signature }) =>
    event.entries
      .filter((e) => seq === undefined || e.seq === seq)
      .map((e) => ({
        at: event.at,
        operator: event.operator,
        signature,
        action: event.action,
        seq: e.seq,
        why: event.why,
        change: changeOf(event),
        newMsgId: e.newMsgId ?? null,
        failedAgainAs: (e.newMsgId && bornAs.get(e.newMsgId)) || null,
      })),
  );
}

function changeOf(event: AuditEvent): HistoryRow['change'] {
  if (event.patch) return { patch: event.patch };
  return event.body ? { body: event.body } : null;
}
