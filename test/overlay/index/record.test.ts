import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../../../src/crypto/identity.js';
import { issueCredential } from '../../../src/crypto/credential.js';
import { userKey } from '../../../src/overlay/index/node-id.js';
import {
  locationRecordSchema, nextSeq, parseLocationRecord, RECORD_LIFETIME_MS, recordExpires, recordVerifier, signLocationRecord, verifyLocationRecord,
} from '../../../src/overlay/index/record.js';
import type { LocationRecord } from '../../../src/overlay/index/record.js';
import { RecordStore } from '../../../src/overlay/index/record-store.js';
import { HOUR, loginServer, makeDevice, makeRecord, NETWORK, T0 } from './fixtures.js';

const alicePhone = makeDevice('alice');
const aliceDesk = makeDevice('alice');
const mallory = makeDevice('mallory');
const issued = T0 + HOUR;
const good = makeRecord('alice', alicePhone, { issued });

const verify = (value: unknown, now = issued + 1_000): LocationRecord =>
  verifyLocationRecord(value, { loginServerKey: loginServer.publicKey, network: NETWORK, now });

describe('location record validation', () => {
  it('accepts a record signed by the certified device key', () => {
    const record = verify(good);
    expect(record.user).toBe('alice');
    expect(record.device.deviceId).toBe(alicePhone.identity.deviceId);
    expect(locationRecordSchema.parse(JSON.parse(JSON.stringify(good)))).toEqual(good);
  });

  it('stays valid for 72 h although the credential expired after 8 h', () => {
    expect(verify(good, issued + 71 * HOUR).seq).toBe(good.seq);
    expect(recordExpires(good)).toBe(issued + RECORD_LIFETIME_MS);
  });

  const otherServer = generateSigningKeyPair();
  const foreignCredential = issueCredential({ ...alicePhone.credential }, otherServer);
  const homeDevice = makeDevice('alice', { network: 'home', identity: alicePhone.identity });

  it.each([
    ['with an altered address', () => ({ ...good, device: { ...good.device, addresses: ['203.0.113.66:4000'] } }), 'ERR_RECORD_SIGNATURE'],
    ['with an altered supernode', () => ({ ...good, device: { ...good.device, supernode: '203.0.113.66:4000' } }), 'ERR_RECORD_SIGNATURE'],
    ['with a raised seq', () => ({ ...good, seq: good.seq + 1 }), 'ERR_RECORD_SIGNATURE'],
    ['with a forged signature', () => ({ ...good, signature: Buffer.alloc(64, 1).toString('base64') }), 'ERR_RECORD_SIGNATURE'],
    ['signed by a key other than the certified one', () => signLocationRecord({ user: 'alice', device: good.device, seq: good.seq, issued }, alicePhone.credential, mallory.identity.signing), 'ERR_RECORD_SIGNATURE'],
    ['with a credential for another user', () => makeRecord('alice', { ...mallory, credential: mallory.credential }, { issued, device: { ...good.device, deviceId: mallory.identity.deviceId } }), 'ERR_RECORD_CREDENTIAL'],
    ['with a credential for another device of the user', () => makeRecord('alice', { identity: alicePhone.identity, credential: aliceDesk.credential }, { issued }), 'ERR_RECORD_CREDENTIAL'],
    ['with a credential for another network', () => makeRecord('alice', homeDevice, { issued }), 'ERR_RECORD_CREDENTIAL'],
    ['with a credential from another login server', () => makeRecord('alice', { identity: alicePhone.identity, credential: foreignCredential }, { issued }), 'ERR_RECORD_CREDENTIAL'],
    ['with a credential expired at issue time', () => makeRecord('alice', alicePhone, { issued: T0 + 9 * HOUR }), 'ERR_RECORD_CREDENTIAL', T0 + 9 * HOUR],
    ['with a credential not yet valid at issue time', () => makeRecord('alice', alicePhone, { issued: T0 - HOUR }), 'ERR_RECORD_CREDENTIAL', T0],
    ['issued in the future', () => good, 'ERR_RECORD_NOT_YET_VALID', issued - 10 * 60_000],
    ['72 h after issue', () => good, 'ERR_RECORD_EXPIRED', issued + RECORD_LIFETIME_MS],
    ['with an unknown field', () => ({ ...good, admin: true }), 'ERR_RECORD_MALFORMED'],
    ['with a bad address', () => ({ ...good, device: { ...good.device, addresses: ['not an address'] } }), 'ERR_RECORD_MALFORMED'],
    ['with too many addresses', () => ({ ...good, device: { ...good.device, addresses: Array.from({ length: 9 }, (_, i) => `10.0.0.${i}:1`) } }), 'ERR_RECORD_MALFORMED'],
    ['with a user name not normalised', () => ({ ...good, user: 'Alice' }), 'ERR_RECORD_MALFORMED'],
    ['with a credential missing a field', () => ({ ...good, credential: { ...good.credential, noiseKey: undefined } }), 'ERR_RECORD_MALFORMED'],
    ['that is not an object', () => 'alice@10.1.2.3', 'ERR_RECORD_MALFORMED'],
  ])('refuses a record %s', (_name, make, code, now = issued + 1_000) => {
    expect(() => verify(make(), now)).toThrow(expect.objectContaining({ code }));
  });

  it('names the credential check that failed as the cause', () => {
    try {
      verify(makeRecord('alice', homeDevice, { issued }));
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'ERR_RECORD_CREDENTIAL', cause: { code: 'ERR_CREDENTIAL_NETWORK' } });
    }
  });

  it('parses shape only without checking signatures', () => {
    expect(parseLocationRecord({ ...good, signature: Buffer.alloc(64).toString('base64') }).user).toBe('alice');
  });

  it('gives sequence numbers that grow even when the clock goes back', () => {
    expect(nextSeq(undefined, T0)).toBe(T0);
    expect(nextSeq(T0, T0 - 5_000)).toBe(T0 + 1);
    expect(nextSeq(T0, T0 + 5_000)).toBe(T0 + 5_000);
  });

  it('builds a verifier bound to the network and login server key', () => {
    const verifier = recordVerifier({ loginServerKey: loginServer.publicKey, network: NETWORK });
    expect(() => verifier(parseLocationRecord(good), issued)).not.toThrow();
    expect(() => recordVerifier({ loginServerKey: loginServer.publicKey, network: 'home' })(parseLocationRecord(good), issued)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_CREDENTIAL' }));
  });
});

describe('record store', () => {
  const phone1 = makeRecord('alice', alicePhone, { issued });
  const phone2 = makeRecord('alice', alicePhone, { issued: issued + 60_000 });
  const desk = makeRecord('alice', aliceDesk, { issued: issued + 30_000 });

  it('keeps the records of two devices of one user side by side', () => {
    const store = new RecordStore();
    expect(store.put(phone1, issued)).toBe('stored');
    expect(store.put(desk, issued + 30_000)).toBe('stored');
    expect(store.put(phone2, issued + 60_000)).toBe('replaced');
    expect(store.get('alice', issued + 60_000)).toEqual([phone2, desk].sort((a, b) => a.device.since - b.device.since));
    expect(store.size).toBe(1);
    expect(store.recordCount).toBe(2);
  });

  it.each([
    { name: 'an older seq', held: phone2, incoming: phone1, expected: 'ERR_RECORD_REPLAY' },
    { name: 'the same seq with other content', held: phone1, incoming: makeRecord('alice', alicePhone, { issued, device: { ...phone1.device, addresses: [] } }), expected: 'ERR_RECORD_REPLAY' },
    { name: 'an identical copy', held: phone1, incoming: phone1, expected: 'unchanged' },
    { name: 'a newer seq', held: phone1, incoming: phone2, expected: 'replaced' },
  ])('answers $expected to $name', ({ held, incoming, expected }) => {
    const store = new RecordStore();
    store.put(held, issued + 60_000);
    if (expected.startsWith('ERR_')) {
      expect(() => store.put(incoming, issued + 60_000)).toThrow(expect.objectContaining({ code: expected }));
      expect(store.get('alice', issued + 60_000)).toEqual([held]);
    } else {
      expect(store.put(incoming, issued + 60_000)).toBe(expected);
    }
  });

  it('expires records 72 h after their issue time, per device (fake clock)', () => {
    const store = new RecordStore();
    store.put(phone1, issued);
    store.put(desk, issued);
    const phoneEnd = phone1.issued + RECORD_LIFETIME_MS;
    expect(store.get('alice', phoneEnd - 1)).toHaveLength(2);
    expect(store.get('alice', phoneEnd)).toEqual([desk]);
    expect(store.expire(phoneEnd)).toBe(1);
    expect(store.recordCount).toBe(1);
    expect(store.expire(desk.issued + RECORD_LIFETIME_MS)).toBe(1);
    expect(store.size).toBe(0);
    expect(() => store.put(phone1, phoneEnd)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_EXPIRED' }));
  });

  it('accepts a refresh of an expired device record although its seq is lower than nothing held', () => {
    const store = new RecordStore();
    store.put(phone2, issued);
    // After expiry the old record no longer counts for replay checks.
    const later = phone2.issued + RECORD_LIFETIME_MS;
    const fresh = makeRecord('alice', makeDevice('alice', { issued: later, identity: alicePhone.identity }), { issued: later + 1, seq: 5 });
    expect(store.put(fresh, later + 1)).toBe('replaced');
  });

  it('limits devices per user: the oldest gives way to a newer one, an older one is refused', () => {
    const store = new RecordStore({ maxDevicesPerUser: 2 });
    store.put(phone1, issued);
    store.put(desk, issued);
    const third = makeDevice('alice');
    expect(store.put(makeRecord('alice', third, { issued: issued + 90_000 }), issued + 90_000)).toBe('stored');
    expect(store.get('alice', issued + 90_000).map((r) => r.device.deviceId).sort()).toEqual([aliceDesk.identity.deviceId, third.identity.deviceId].sort());
    const fourth = makeDevice('alice');
    expect(() => store.put(makeRecord('alice', fourth, { issued: issued + 1 }), issued + 90_000)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_STORE_FULL' }));
  });

  it('limits users: when full, the key farthest from this node gives way to a closer one', () => {
    const self = userKey('self');
    const far = (name: string): bigint => userKey(name) ^ self;
    const names = Array.from({ length: 40 }, (_, i) => `user${i}`).sort((a, b) => (far(a) < far(b) ? -1 : 1));
    const [nearest, middle, farthest] = [names[0]!, names[20]!, names[39]!];
    const record = (name: string): LocationRecord => makeRecord(name, makeDevice(name), { issued });
    const store = new RecordStore({ maxUsers: 2, self });
    store.put(record(nearest), issued);
    store.put(record(middle), issued);
    expect(() => store.put(record(farthest), issued)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_STORE_FULL' }));
    expect(store.put(record(names[1]!), issued)).toBe('stored');
    expect(store.get(middle, issued)).toEqual([]);
    expect([...store.users()].map((e) => e.user).sort()).toEqual([nearest, names[1]!].sort());
  });

  it('lists entries closer to another node than to itself', () => {
    const store = new RecordStore();
    const users = ['ann', 'ben', 'cat', 'dan', 'eve'];
    for (const u of users) store.put(makeRecord(u, makeDevice(u), { issued }), issued);
    const self = userKey('ann');
    const other = userKey('dan');
    const expected = users.filter((u) => (userKey(u) ^ other) < (userKey(u) ^ self)).sort();
    expect(store.entriesCloserTo(other, self).map((e) => e.user).sort()).toEqual(expected);
    expect(expected).toContain('dan');
    expect(expected).not.toContain('ann');
  });
});
