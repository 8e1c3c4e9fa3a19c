/**
 * Live sealed messages must be fresh; only what the supernodes held for an
 * offline device may be old, and only the kinds of message they hold. (A
 * sender could otherwise backdate a message into the validity of its expired
 * credential, and a supernode could replay an old one.)
 */
import { describe, expect, it } from 'vitest';
import { issueCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import { Messenger } from '../../src/overlay/route/messenger.js';
import { seal } from '../../src/overlay/route/sealed.js';
import { memoryLogger } from '../helpers/log.js';

const HOUR = 3_600_000;
const server = generateSigningKeyPair();
const now = 1_800_000_000_000;

function credentialFor(user: string, identity: Identity, issued: number): Credential {
  return issueCredential(
    { user, deviceId: identity.deviceId, deviceKey: identity.signing.publicKey.toString('base64'), noiseKey: identity.noise.publicKey.toString('base64'), network: 'office', issued, expires: issued + 8 * HOUR },
    server,
  );
}

const alice = generateIdentity();
const bob = generateIdentity();
const bobCredential = credentialFor('bob', bob, now - HOUR);
const messenger = new Messenger({
  identity: bob,
  network: 'office',
  loginServerKey: server.publicKey,
  credential: () => bobCredential,
  link: () => undefined,
  search: () => Promise.reject(new Error('not used')),
  log: memoryLogger().log,
  now: () => now,
});
const from = { user: 'alice', deviceId: alice.deviceId, supernode: '192.0.2.1:4000' };
const sealedFor = (type: string, ts: number, credentialIssued = ts - HOUR) =>
  seal({ identity: alice, credential: credentialFor('alice', alice, credentialIssued), network: 'office', to: { user: 'bob', deviceId: bob.deviceId, noiseKey: bob.noise.publicKey } }, { type, body: { text: 'hi' }, ts });

describe('Messenger: fresh live messages, old ones only from the mailbox', () => {
  it('takes a fresh live message', () => {
    expect(messenger.receive(from, sealedFor('im', now - 1_000))?.type).toBe('im');
  });

  it('refuses a live message sealed an hour ago (a backdated send or a replay), under a credential long expired', () => {
    // Signed with a credential that expired 15 h ago, backdated into its validity.
    expect(messenger.receive(from, sealedFor('im', now - 20 * HOUR, now - 21 * HOUR))).toBeUndefined();
    expect(messenger.receive(from, sealedFor('im', now - HOUR))).toBeUndefined();
  });

  it('takes an old instant message the supernodes held, but no held path offer', () => {
    expect(messenger.receive(from, sealedFor('im', now - 20 * HOUR), { held: true })?.type).toBe('im');
    expect(messenger.receive(from, sealedFor('path.offer', now - 20 * HOUR), { held: true })).toBeUndefined();
    expect(messenger.receive(from, sealedFor('path.offer', now - 1_000), { held: true })).toBeUndefined();
  });
});
