import { Headers } from '@orderflow/contracts';
import { UserNkey, verifyNkey } from './nkey';

/**
 * Signed operator actions: an operator's nkey (ed25519, the key it connects to NATS with) signs what it asks for, so
 * the service that acts — and anyone reading the audit later — can tell who asked and that nothing was changed since.
 * A signature covers a context string, the subject (as sent, with its namespace), the message id and the exact body
 * bytes: it cannot be moved to another subject or message, and a copy with the same id is a duplicate.
 * Source: NATS docs, "NKeys" (ed25519 keys); signed and verified with Node's native Ed25519 (`UserNkey`).
 */

/** A signature as carried in headers (`Orderflow-Signer`, `Orderflow-Signature`) or in an audit record. */
export interface Signature {
  /** The signer's public nkey, `U…`. */
  signer: string;
  /** ed25519 signature, base64url. */
  signature: string;
}

const CONTEXT = 'orderflow-signature-v1';
const te = new TextEncoder();

function signedBytes(subject: string, msgId: string, data: Uint8Array): Uint8Array {
  const head = te.encode(`${CONTEXT}\n${subject}\n${msgId}\n`);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/** Signs `data`, to be sent on `subject` with `Nats-Msg-Id` `msgId`, with the user seed `seed` (`SU…`). */
export function signMessage(seed: Uint8Array, subject: string, msgId: string, data: Uint8Array): Signature {
  const key = UserNkey.fromSeed(seed);
  return { signer: key.publicKey, signature: Buffer.from(key.sign(signedBytes(subject, msgId, data))).toString('base64url') };
}

/** The headers carrying `s`. */
export const signatureHeaders = (s: Signature): Record<string, string> => ({
  [Headers.Signer]: s.signer,
  [Headers.Signature]: s.signature,
});

/**
 * Whether `s` is a valid signature of `data` on `subject` with `msgId` by `s.signer`. False for a malformed key or
 * signature (never throws): whether that signer may act is the caller's question.
 */
export function verifySignature(s: Signature, subject: string, msgId: string, data: Uint8Array): boolean {
  try {
    if (!/^U[A-Z2-7]{55}$/.test(s.signer) || !/^[A-Za-z0-9_-]{86}$/.test(s.signature)) return false;
    return verifyNkey(s.signer, signedBytes(subject, msgId, data), Buffer.from(s.signature, 'base64url'));
  } catch {
    return false;
  }
}

/**
 * What a received message's signature headers say: `none` (unsigned), `invalid` (present but not a signature of this
 * message by that key: tampered, or moved), or the verified signer's public key.
 */
export type SignatureCheck = { status: 'none' } | { status: 'invalid'; signer: string } | { status: 'valid'; signer: string };

export function checkSignature(
  get: (header: string) => string | undefined,
  subject: string,
  msgId: string | undefined,
  data: Uint8Array,
): SignatureCheck {
  const signer = get(Headers.Signer);
  const signature = get(Headers.Signature);
  if (!signer && !signature) return { status: 'none' };
  const ok = !!signer && !!signature && !!msgId && verifySignature({ signer, signature }, subject, msgId, data);
  return ok ? { status: 'valid', signer: signer! } : { status: 'invalid', signer: (signer ?? '').slice(0, 56) };
}
