import { createAccount, createUser, fromPublic } from '@nats-io/nkeys';
import { UserNkey, verifyNkey } from './nkey';

describe('UserNkey (native Ed25519)', () => {
  const kp = createUser();
  const key = UserNkey.fromSeed(kp.getSeed());
  const data = Buffer.from('orderflow-signature-v1\nsubject\nid\n{}');

  it('has the public key and makes the signatures @nats-io/nkeys makes', () => {
    expect(key.publicKey).toBe(kp.getPublicKey());
    expect(Buffer.from(key.sign(data))).toEqual(Buffer.from(kp.sign(data)));
    expect(fromPublic(kp.getPublicKey()).verify(data, key.sign(data))).toBe(true);
  });

  it('answers a server nonce as nats.js does: the public key and the signature, base64', () => {
    const { nkey, sig } = key.authenticator()('nonce-123');
    expect(nkey).toBe(kp.getPublicKey());
    expect(sig).toBe(Buffer.from(kp.sign(Buffer.from('nonce-123'))).toString('base64'));
  });

  it('verifies its own signatures and no others', () => {
    expect(verifyNkey(key.publicKey, data, key.sign(data))).toBe(true);
    expect(verifyNkey(key.publicKey, Buffer.from('other'), key.sign(data))).toBe(false);
    expect(verifyNkey(createUser().getPublicKey(), data, key.sign(data))).toBe(false);
  });

  it('refuses a seed that is not a user seed', () => {
    expect(() => UserNkey.fromSeed(createAccount().getSeed())).toThrow(/invalid prefix byte/);
    expect(() => UserNkey.fromSeed(new TextEncoder().encode('SUnotaseed'))).toThrow();
  });
});
