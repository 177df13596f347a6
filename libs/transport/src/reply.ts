/** A message a handler causes: returned from the handler, written to the outbox with causation and correlation set. */
export interface Reply {
  subject: string;
  body: object;
  /** Overrides of the headers taken from the message that caused it (e.g. `sagaId` from a command's body). */
  headers?: { sagaId?: string; correlationId?: string };
}

/** `return reply(Subjects.InventoryReserved, { … })` from a handler; return an array for several, nothing for none. */
export const reply = (subject: string, body: object, headers?: Reply['headers']): Reply => ({
  subject,
  body,
  ...(headers ? { headers } : {}),
});

export const isReply = (v: unknown): v is Reply =>
  typeof v === 'object' && v !== null && typeof (v as Reply).subject === 'string' && typeof (v as Reply).body === 'object';
