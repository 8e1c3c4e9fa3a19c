/**
 * Duplicate suppression on a phone (found in review): the ids of sealed
 * messages seen were kept in one list of 20,000, oldest evicted first — a
 * flood from one sender pushed out what others had sent, and a supernode
 * could then deliver those again. Now the list is bounded per sender and
 * emptied by age (what can no longer arrive goes first), and a message that
 * makes the phone act is taken only for a minute after it was sealed.
 */
import { describe, expect, it } from 'vitest';
import { issueCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import { ACTION_MAX_AGE_MS, LIVE_MAX_AGE_MS, Messenger } from '../../src/overlay/route/messenger.js';
import { seal } from '../../src/overlay/route/sealed.js';
import { memoryLogger } from '../helpers/log.js';

const HOUR = 3_600_000;
const server = generateSigningKeyPair();
const t0 = 1_800_000_000_000;

function credentialFor(user: string, identity: Identity): Credential {
  return issueCredential(
    { user, deviceId: identity.deviceId, deviceKey: identity.signing.publicKey.toString('base64'), noiseKey: identity.noise.publicKey.toString('base64'), network: 'office', issued: t0 - HOUR, expires: t0 + 8 * HOUR },
    server,
  );
}

const bob = generateIdentity();
const senders = { alice: generateIdentity(), mallory: generateIdentity() };

function setup(options: { maxRemembered?: number; maxRememberedPerSender?: number } = {}) {
  const clock = { now: t0 };
  const messenger = new Messenger({
    identity: bob, network: 'office', loginServerKey: server.publicKey, credential: () => credentialFor('bob', bob),
    link: () => undefined, search: () => Promise.reject(new Error('not used')), log: memoryLogger().log, now: () => clock.now, ...options,
  });
  const send = (user: 'alice' | 'mallory', type: string, id: string, ts = clock.now) => {
    const identity = senders[user];
    const sealed = seal({ identity, credential: credentialFor(user, identity), network: 'office', to: { user: 'bob', deviceId: bob.deviceId, noiseKey: bob.noise.publicKey } }, { type, id, ts, body: {} });
    return messenger.receive({ user, deviceId: identity.deviceId, supernode: '192.0.2.1:4000' }, sealed);
  };
  return { clock, messenger, send };
}

describe('Messenger: duplicate suppression and replays', () => {
  it('a flood from one sender evicts only its own: a copy of what others sent is still dropped', () => {
    const { clock, messenger, send } = setup({ maxRemembered: 20, maxRememberedPerSender: 10 });
    expect(send('alice', 'call.invite', 'alice-0001')?.id).toBe('alice-0001');
    for (let i = 0; i < 30; i++) send('mallory', 'call.invite', `mallory-${String(i).padStart(4, '0')}`);
    expect(messenger.remembered).toBeLessThanOrEqual(20);
    clock.now += 1_000;
    // A supernode delivers alice's message again.
    expect(send('alice', 'call.invite', 'alice-0001', t0)).toBeUndefined();
  });

  it('forgets a message once no copy of it could be taken any more; keeps an instant message as long as the mailbox may deliver it', () => {
    const { clock, messenger, send } = setup();
    send('alice', 'call.invite', 'live-0001');
    send('alice', 'im', 'im-00000001');
    expect(messenger.remembered).toBe(2);
    clock.now += LIVE_MAX_AGE_MS + 1;
    // A held copy of the instant message, long after: still a duplicate.
    const sealedIm = seal({ identity: senders.alice, credential: credentialFor('alice', senders.alice), network: 'office', to: { user: 'bob', deviceId: bob.deviceId, noiseKey: bob.noise.publicKey } }, { type: 'im', id: 'im-00000001', ts: t0, body: {} });
    expect(messenger.receive({ user: 'alice', deviceId: senders.alice.deviceId, supernode: '192.0.2.1:4000' }, sealedIm, { held: true })).toBeUndefined();
    // The sweep (when the list is full) takes what can no longer arrive first.
    const small = setup({ maxRemembered: 2 });
    small.send('alice', 'call.invite', 'live-0001');
    small.send('alice', 'im', 'im-00000001');
    small.clock.now += LIVE_MAX_AGE_MS + 1;
    small.send('mallory', 'call.invite', 'live-0002');
    small.clock.now += 1;
    const again = seal({ identity: senders.alice, credential: credentialFor('alice', senders.alice), network: 'office', to: { user: 'bob', deviceId: bob.deviceId, noiseKey: bob.noise.publicKey } }, { type: 'im', id: 'im-00000001', ts: t0, body: {} });
    expect(small.messenger.receive({ user: 'alice', deviceId: senders.alice.deviceId, supernode: '192.0.2.1:4000' }, again, { held: true })).toBeUndefined();
    expect(small.messenger.remembered).toBe(2);
  });

  it('acts on a message only within a minute of its sealing', () => {
    const { messenger, send } = setup();
    const acted: string[] = [];
    messenger.on('buddies.changed', (m) => {
      acted.push(m.id);
    }, { maxAgeMs: ACTION_MAX_AGE_MS });
    expect(send('alice', 'buddies.changed', 'old-00000001', t0 - 2 * 60_000)).toBeUndefined();
    expect(send('alice', 'buddies.changed', 'new-00000001', t0 - 30_000)?.id).toBe('new-00000001');
  });
});
