import { createPrivateKey, createPublicKey, KeyObject, sign, verify } from 'node:crypto';
import { NKeysError, NKeysErrorCode, Prefix } from '@nats-io/nkeys';
// The seed and public-key text encodings (base32 with a role prefix and a CRC-16) are @nats-io/nkeys' own codec.
import { Codec } from '@nats-io/nkeys/lib/codec';

/** DER prefixes of an Ed25519 PKCS#8 private key and SPKI public key (RFC 8410), each followed by the 32 raw bytes. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * A user nkey (NATS's Ed25519 key; NATS docs, "NKeys") that signs with Node's native Ed25519 (`node:crypto`) rather
 * than @nats-io/nkeys' JavaScript one (tweetnacl): on a cold process that is about 25 ms less for the public key and
 * the first signature, which every CLI call pays to connect. Ed25519 signatures are deterministic: the bytes are the
 * ones @nats-io/nkeys would make.
 */
export class UserNkey {
  private constructor(
    private readonly key: KeyObject,
    /** The public key, `U…` (56 characters). */
    readonly publicKey: string,
  ) {}

  /** @throws NKeysError when `seed` is not a user nkey seed (`SU…`). */
  static fromSeed(seed: Uint8Array): UserNkey {
    const { prefix, buf: raw } = Codec.decodeSeed(seed); // checks the encoding and checksum
    if (prefix !== Prefix.User) throw new NKeysError(NKeysErrorCode.InvalidPrefixByte);
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: 'der', type: 'pkcs8' });
    const pub = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
    return new UserNkey(key, new TextDecoder().decode(Codec.encode(Prefix.User, pub)));
  }

  /** The 64-byte Ed25519 signature of `data`. */
  sign(data: Uint8Array): Uint8Array {
    return sign(null, data, this.key);
  }

  /**
   * nats.js's `nkeyAuthenticator`, with this key: the public key and the server's nonce signed (base64, as nats.js
   * encodes it), as the NATS protocol's CONNECT carries them.
   */
  authenticator(): (nonce?: string) => { nkey: string; sig: string } {
    return (nonce) => ({ nkey: this.publicKey, sig: nonce ? Buffer.from(this.sign(Buffer.from(nonce))).toString('base64') : '' });
  }
}

/** Whether `signature` is `publicKey`'s (`U…`) Ed25519 signature of `data`. @throws NKeysError for a malformed key. */
export function verifyNkey(publicKey: string, data: Uint8Array, signature: Uint8Array): boolean {
  const raw = Codec.decode(Prefix.User, new TextEncoder().encode(publicKey));
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
  return verify(null, data, key, signature);
}
