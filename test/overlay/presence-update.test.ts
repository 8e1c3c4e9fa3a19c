import { describe, expect, it } from 'vitest';
import { ONLINE_WINDOW_MS } from '../../src/overlay/index/node-messages.js';
import { RECORD_LIFETIME_MS } from '../../src/overlay/index/record.js';
import { userPresence } from '../../src/overlay/presence/state.js';
import type { PresenceState } from '../../src/overlay/presence/state.js';
import {
  effectiveState, namedSupernode, parsePresenceUpdate, signPresence, supersedes, verifyPresenceUpdate,
} from '../../src/overlay/presence/update.js';
import type { DevicePresenceUpdate, PresenceUpdate, SupernodePresenceUpdate } from '../../src/overlay/presence/update.js';
import { HOUR, loginServer, makeDevice, NETWORK, T0 } from './index/fixtures.js';

const bob = makeDevice('bob');
const SN = '192.0.2.10:4000';
const now = T0 + HOUR;
const verify = (value: unknown, at = now) => verifyPresenceUpdate(value, { loginServerKey: loginServer.publicKey, network: NETWORK, now: at });

function update(state: PresenceState = 'online', fields: Partial<{ seq: number; issued: number; supernode: string; user: string }> = {}, device = bob): DevicePresenceUpdate {
  const issued = fields.issued ?? T0 + 60_000;
  return signPresence(
    { user: fields.user ?? 'bob', deviceId: device.identity.deviceId, state, supernode: fields.supernode ?? SN, seq: fields.seq ?? issued, issued },
    device.credential,
    device.identity.signing,
  );
}

function offlineBy(fields: Partial<SupernodePresenceUpdate> = {}): SupernodePresenceUpdate {
  return { v: 1, by: 'supernode', user: 'bob', deviceId: bob.identity.deviceId, state: 'offline', supernode: SN, seq: T0 + 60_000, issued: T0 + 120_000, ...fields };
}

describe('presence updates', () => {
  it('a device signs its state; anyone with the login server key checks it', () => {
    const u = update('in-call');
    expect(verify(JSON.parse(JSON.stringify(u)))).toEqual(u);
    expect(u).toMatchObject({ v: 1, by: 'device', user: 'bob', state: 'in-call', supernode: SN });
  });

  it.each([
    ['state', { state: 'online' }],
    ['supernode', { supernode: '198.51.100.1:4000' }],
    ['seq', { seq: T0 + 61_000 }],
    ['issued', { issued: T0 + 61_000 }],
  ])('refuses an update whose %s was changed after signing', (_field, change) => {
    const forged = { ...update('in-call'), ...change };
    expect(() => verify(forged)).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_SIGNATURE' }));
  });

  it('refuses an update signed by another device than its credential certifies, or for another user', () => {
    const mallory = makeDevice('mallory');
    const stolen = signPresence({ user: 'bob', deviceId: bob.identity.deviceId, state: 'online', supernode: SN, seq: T0 + 60_000, issued: T0 + 60_000 }, bob.credential, mallory.identity.signing);
    expect(() => verify(stolen)).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_SIGNATURE' }));
    const renamed = update('online', { user: 'carol' });
    expect(() => verify(renamed)).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_CREDENTIAL' }));
    const foreign = makeDevice('bob', { network: 'elsewhere' });
    expect(() => verify(update('online', {}, foreign))).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_CREDENTIAL' }));
  });

  it('checks the credential at the time of signing, and refuses updates from the future or older than 72 h', () => {
    // Credentials last 8 h: an update signed after that is refused, one signed before is good for 72 h.
    expect(() => verify(update('online', { issued: T0 + 9 * HOUR }), T0 + 9 * HOUR)).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_CREDENTIAL' }));
    expect(verify(update('offline'), T0 + 48 * HOUR).state).toBe('offline');
    expect(() => verify(update('offline'), T0 + 60_000 + RECORD_LIFETIME_MS)).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_EXPIRED' }));
    expect(() => verify(update('online', { issued: now + HOUR }))).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_NOT_YET_VALID' }));
  });

  it('refuses malformed updates with the field named', () => {
    expect(() => parsePresenceUpdate({ ...update(), extra: 1 })).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_MALFORMED' }));
    expect(() => parsePresenceUpdate({ ...update(), state: 'away' })).toThrow(/state/);
    expect(() => parsePresenceUpdate({ ...update(), user: 'Bob' })).toThrow(/not a normalised user name/);
    expect(() => parsePresenceUpdate({ ...offlineBy(), state: 'online' })).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_MALFORMED' }));
    expect(() => parsePresenceUpdate({ ...offlineBy(), signature: update().signature })).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_MALFORMED' }));
  });

  it('a supernode\'s offline has nothing to verify but its shape and time (its sender is checked by the receiver)', () => {
    expect(verify(offlineBy())).toEqual(offlineBy());
    expect(() => verify(offlineBy({ issued: now + HOUR }))).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_NOT_YET_VALID' }));
  });

  it.each<[string, PresenceUpdate, PresenceUpdate | undefined, boolean]>([
    ['anything beats nothing', update('online'), undefined, true],
    ['a higher seq wins', update('in-call', { seq: T0 + 70_000 }), update('online'), true],
    ['a lower seq loses (replay)', update('online'), update('in-call', { seq: T0 + 70_000 }), false],
    ['an identical copy changes nothing', update('online'), update('online'), false],
    ['the supernode\'s offline beats the update it refers to', offlineBy(), update('online'), true],
    ['the supernode\'s offline loses to a newer update (the device moved on)', offlineBy(), update('online', { seq: T0 + 70_000 }), false],
    ['the supernode\'s offline adds nothing to the device\'s own offline', offlineBy(), update('offline'), false],
    ['a new update beats the supernode\'s offline', update('online', { seq: T0 + 70_000 }), offlineBy(), true],
  ])('supersedes: %s', (_what, next, held, expected) => {
    expect(supersedes(next, held)).toBe(expected);
  });

  it('online and in-call run out after the online window; offline stays', () => {
    const u = update('in-call');
    expect(effectiveState(u, u.issued + ONLINE_WINDOW_MS - 1)).toBe('in-call');
    expect(effectiveState(u, u.issued + ONLINE_WINDOW_MS)).toBe('offline');
    expect(effectiveState(update('offline'), u.issued + 70 * HOUR)).toBe('offline');
  });

  it('the supernode a device named last: the newer of its record and its own update', () => {
    const record = { issued: T0 + 60_000, device: { supernode: '192.0.2.20:4000' } };
    expect(namedSupernode(record, undefined)).toBe('192.0.2.20:4000');
    expect(namedSupernode(record, update('online', { issued: T0 + 90_000 }))).toBe(SN);
    expect(namedSupernode({ ...record, issued: T0 + 100_000 }, update('online', { issued: T0 + 90_000 }))).toBe('192.0.2.20:4000');
    // What a supernode said is not the device naming anyone.
    expect(namedSupernode(undefined, offlineBy({ supernode: '203.0.113.9:4000' }))).toBeUndefined();
    expect(namedSupernode(undefined, undefined)).toBeUndefined();
  });

  it.each<[PresenceState[], PresenceState]>([
    [[], 'offline'],
    [['offline', 'offline'], 'offline'],
    [['offline', 'online'], 'online'],
    [['online', 'in-call', 'offline'], 'in-call'],
  ])('a user with devices %j is %s', (states, expected) => {
    expect(userPresence(states)).toBe(expected);
  });
});
