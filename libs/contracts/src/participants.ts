import type { MessageSubject } from './messages/registry';
import type { AppName } from './permissions';
import { Subjects } from './subjects';

/**
 * One command a saga participant handles, declared once: the participant, the command's subject, the reply subjects
 * that end it, and — for a command that can be undone — the command that undoes it (its compensation). Saga steps
 * reference endpoints instead of repeating subjects, so a step cannot send a command its participant does not take
 * or wait on a reply it never sends.
 * Source: the command endpoints of Eventuate Tram's service proxies (FTGO `KitchenServiceProxy`).
 * @typeParam C the command's subject (its body is `MessageOf<C>`)
 * @typeParam R the subjects of its replies
 * @typeParam U the endpoint of its compensation, if it has one
 */
export interface CommandEndpoint<
  C extends MessageSubject = MessageSubject,
  R extends MessageSubject = MessageSubject,
  U extends CommandEndpoint<MessageSubject, MessageSubject, undefined> | undefined =
    CommandEndpoint<MessageSubject, MessageSubject, undefined> | undefined,
> {
  participant: AppName;
  command: C;
  replies: readonly R[];
  compensation: U;
}

/** Declares an endpoint (see `CommandEndpoint`); without `compensation` its command cannot be undone. */
export function commandEndpoint<C extends MessageSubject, R extends MessageSubject>(
  participant: AppName,
  command: C,
  replies: readonly R[],
): CommandEndpoint<C, R, undefined>;
export function commandEndpoint<
  C extends MessageSubject,
  R extends MessageSubject,
  U extends CommandEndpoint<MessageSubject, MessageSubject, undefined>,
>(participant: AppName, command: C, replies: readonly R[], compensation: U): CommandEndpoint<C, R, U>;
export function commandEndpoint(
  participant: AppName,
  command: MessageSubject,
  replies: readonly MessageSubject[],
  compensation?: CommandEndpoint,
) {
  return { participant, command, replies, compensation };
}

const release = commandEndpoint('inventory', Subjects.InventoryRelease, [Subjects.InventoryReleased]);
const refund = commandEndpoint('payment', Subjects.PaymentRefund, [Subjects.PaymentRefunded]);

/** The commands each participant takes from sagas. */
export const Participants = {
  inventory: {
    /** Holds units of stock for a saga; undone by `release`. */
    reserve: commandEndpoint('inventory', Subjects.InventoryReserve, [Subjects.InventoryReserved, Subjects.InventoryRejected], release),
    /** Gives a saga's held units back (idempotent; nothing held is a success). */
    release,
    /** The held units become sold (after the pivot: never undone). */
    commit: commandEndpoint('inventory', Subjects.InventoryCommit, [Subjects.InventoryCommitted]),
  },
  payment: {
    /** Debits the customer's account; undone by `refund`. */
    charge: commandEndpoint('payment', Subjects.PaymentCharge, [Subjects.PaymentCharged, Subjects.PaymentDeclined], refund),
    /** Credits back what a saga charged (idempotent; nothing charged is a success). */
    refund,
  },
} satisfies Partial<Record<AppName, Record<string, CommandEndpoint>>>;
