import type { Message, MessageOf, MessageSubject } from '@orderflow/contracts';

/** A message a handler causes: returned from the handler, written to the outbox with causation and correlation set. */
export type Reply<S extends MessageSubject = MessageSubject> = Message<S> & {
  /** Overrides of the headers taken from the message that caused it (e.g. `sagaId` from a command's body). */
  headers?: { sagaId?: string; correlationId?: string };
};

/**
 * `return reply(Subjects.InventoryReserved, { … })` from a handler; return an array for several, nothing for none.
 * The body is checked against the subject's class in `MessageTypes` at compile time (a subject without one does not
 * compile), and the consumer validates it again when it arrives.
 */
export const reply = <S extends MessageSubject>(subject: S, body: MessageOf<S>, headers?: Reply['headers']): Reply<S> =>
  ({ subject, body, ...(headers ? { headers } : {}) }) as Reply<S>;

export const isReply = (v: unknown): v is Reply =>
  typeof v === 'object' && v !== null && typeof (v as Reply).subject === 'string' && typeof (v as Reply).body === 'object';
