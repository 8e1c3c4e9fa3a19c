import { describe, expect, it } from 'vitest';
import { issueCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import { openSealed, seal, SEALED_LIFETIME_MS } from '../../src/overlay/route/sealed.js';
import type { SealTarget } from '../../src/overlay/route/sealed.js';

const HOUR = 3_600_000;
const server = generateSigningKeyPair();
const now = 1_800_000_000_000;

function credentialFor(user: string, identity: Identity, issued = now): Credential {
  return issueCredential(
    { user, deviceId: identity.deviceId, deviceKey: identity.signing.publicKey.toString('base64'), noiseKey: identity.noise.publicKey.toString('base64'), network: 'office', issued, expires: issued + 8 * HOUR },
    server,
  );
}

const alice = generateIdentity();
const bob = generateIdentity();
const mallory = generateIdentity();
const bobTarget: SealTarget = { user: 'bob', deviceId: bob.deviceId, noiseKey: bob.noise.publicKey };
const open = (sealed: Buffer, extra: { identity?: Identity; user?: string; now?: number; network?: string } = {}) =>
  openSealed({ identity: extra.identity ?? bob, user: extra.user ?? 'bob', network: extra.network ?? 'office', loginServerKey: server.publicKey, now: extra.now ?? now + HOUR }, sealed);

describe('sealed messages (Noise X + signature, end to end through untrusted supernodes)', () => {
  it('opens for the addressed device, with the sender proven by credential and signature', () => {
    const sealed = seal({ identity: alice, credential: credentialFor('alice', alice), network: 'office', to: bobTarget }, { type: 'im', body: { text: 'hello' }, ts: now + HOUR });
    const opened = open(sealed);
    expect(opened.from.user).toBe('alice');
    expect(opened.from.deviceId).toBe(alice.deviceId);
    expect(opened.body).toEqual({ text: 'hello' });
    expect(opened.type).toBe('im');
    expect(sealed.includes(Buffer.from('hello'))).toBe(false);
  });

  it('does not open for another device, another network, or after tampering', () => {
    const sealed = seal({ identity: alice, credential: credentialFor('alice', alice), network: 'office', to: bobTarget }, { type: 'im', body: 'x', ts: now + HOUR });
    expect(() => open(sealed, { identity: mallory })).toThrow(expect.objectContaining({ code: 'ERR_SEALED_DECRYPT' }));
    expect(() => open(sealed, { network: 'other' })).toThrow(expect.objectContaining({ code: 'ERR_SEALED_DECRYPT' }));
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 20]! ^= 1;
    expect(() => open(flipped)).toThrow(expect.objectContaining({ code: 'ERR_SEALED_DECRYPT' }));
    expect(() => open(sealed.subarray(0, 40))).toThrow(expect.objectContaining({ code: 'ERR_SEALED_DECRYPT' }));
  });

  it('refuses a sender whose credential certifies another key (someone else\'s credential)', () => {
    const sealed = seal({ identity: mallory, credential: credentialFor('alice', alice), network: 'office', to: bobTarget }, { type: 'im', body: 'I am alice', ts: now + HOUR });
    expect(() => open(sealed)).toThrow(expect.objectContaining({ code: 'ERR_SEALED_CREDENTIAL' }));
  });

  it('checks the credential at the time of sending, and refuses messages older than 72 h or from the future', () => {
    const credential = credentialFor('alice', alice);
    const sealed = seal({ identity: alice, credential, network: 'office', to: bobTarget }, { type: 'im', body: 'held', ts: now + HOUR });
    // Opened two days later: the credential has expired since, but was valid when the message was sealed.
    expect(open(sealed, { now: now + 48 * HOUR }).body).toBe('held');
    expect(() => open(sealed, { now: now + HOUR + SEALED_LIFETIME_MS })).toThrow(expect.objectContaining({ code: 'ERR_SEALED_EXPIRED' }));
    const future = seal({ identity: alice, credential, network: 'office', to: bobTarget }, { type: 'im', body: 'x', ts: now + 2 * HOUR });
    expect(() => open(future, { now: now + HOUR })).toThrow(expect.objectContaining({ code: 'ERR_SEALED_NOT_YET_VALID' }));
    const late = seal({ identity: alice, credential, network: 'office', to: bobTarget }, { type: 'im', body: 'x', ts: now + 9 * HOUR });
    expect(() => open(late, { now: now + 9 * HOUR })).toThrow(expect.objectContaining({ code: 'ERR_SEALED_CREDENTIAL' }));
  });

  it('refuses a message sealed for the same device key under another user name', () => {
    const sealed = seal({ identity: alice, credential: credentialFor('alice', alice), network: 'office', to: { ...bobTarget, user: 'carol' } }, { type: 'im', body: 'x', ts: now + HOUR });
    expect(() => open(sealed)).toThrow(expect.objectContaining({ code: 'ERR_SEALED_RECIPIENT' }));
  });
});
