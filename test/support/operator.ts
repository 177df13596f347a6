import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromSeed, KeyPair } from '@nats-io/nkeys';
import { Namespace } from '@orderflow/contracts';
import { signatureHeaders, signMessage } from '@orderflow/messaging';

const seedOf = (operator: string) =>
  new TextEncoder().encode(readFileSync(join(process.env.ORDERFLOW_SECRETS!, `operator-${operator}.nk`), 'utf8').trim());

/** The key of the operator the tests act as (`ORDERFLOW_OPERATOR`), which setup created and registered. */
export const operatorKey = (operator = process.env.ORDERFLOW_OPERATOR!): KeyPair => fromSeed(seedOf(operator));

/** The signature headers of `body` on `subject` (logical, in `ns`) with message id `msgId`, as the CLI signs it. */
export function signedBy(ns: Namespace, subject: string, msgId: string, body: unknown, operator = process.env.ORDERFLOW_OPERATOR!) {
  return signatureHeaders(signMessage(seedOf(operator), ns.subject(subject), msgId, Buffer.from(JSON.stringify(body))));
}
