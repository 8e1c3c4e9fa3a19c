import { describe, expect, it } from 'vitest';
import { supernodeId } from '../../src/overlay/index/node-id.js';
import type { ContactInfo } from '../../src/overlay/index/routing-table.js';
import { RECORD_LIFETIME_MS } from '../../src/overlay/index/record.js';
import { PresenceTable, Subscriptions } from '../../src/overlay/presence/presence-table.js';
import type { Credential } from '../../src/crypto/credential.js';
import type { DevicePresenceUpdate, SupernodePresenceUpdate } from '../../src/overlay/presence/update.js';
import { T0 } from './index/fixtures.js';

/** Device updates with a placeholder signature: the table does not verify, it only orders and keeps. */
function u(user: string, deviceId: string, seq: number, issued = seq): DevicePresenceUpdate {
  return { v: 1, by: 'device', user, deviceId, state: 'online', supernode: '192.0.2.1:4000', seq, issued, credential: {} as Credential, signature: 'unchecked' };
}

/** A supernode's offline for a device's update at `seq`. */
function offline(user: string, deviceId: string, seq: number, issued = seq + 1): SupernodePresenceUpdate {
  return { v: 1, by: 'supernode', user, deviceId, state: 'offline', supernode: '192.0.2.1:4000', seq, issued };
}

function contact(n: number): ContactInfo {
  const key = Buffer.alloc(32, n);
  return { id: supernodeId(key), address: `192.0.2.${n}:4000`, publicKey: key.toString('base64') };
}

describe('PresenceTable', () => {
  it('keeps the newest update per device, and says whether it took one', () => {
    const table = new PresenceTable();
    expect(table.merge(u('bob', 'd1', T0))).toBe(true);
    expect(table.merge(u('bob', 'd1', T0))).toBe(false);
    expect(table.merge(u('bob', 'd1', T0 - 1))).toBe(false);
    expect(table.merge(u('bob', 'd2', T0 - 5))).toBe(true);
    expect(table.merge(u('bob', 'd1', T0 + 1))).toBe(true);
    expect(table.get('bob').map((x) => [x.deviceId, x.seq]).sort()).toEqual([['d1', T0 + 1], ['d2', T0 - 5]]);
    expect(table.device('bob', 'd2')?.seq).toBe(T0 - 5);
    expect(table.get('nobody')).toEqual([]);
  });

  it('takes a supernode\'s offline only for the signed update it refers to: it can never raise the seq', () => {
    const table = new PresenceTable();
    // Nothing held: kept as a weak offline (seq 0) that any signed update replaces, whatever seq it claimed.
    expect(table.merge(offline('bob', 'd1', Number.MAX_SAFE_INTEGER))).toBe(true);
    expect(table.device('bob', 'd1')).toMatchObject({ state: 'offline', seq: 0 });
    expect(table.merge(u('bob', 'd1', T0))).toBe(true);
    expect(table.merge(offline('bob', 'd1', Number.MAX_SAFE_INTEGER))).toBe(false); // an inflated seq
    expect(table.merge(offline('bob', 'd1', T0))).toBe(true);
    expect(table.device('bob', 'd1')?.state).toBe('offline');
    expect(table.merge(offline('bob', 'd1', T0))).toBe(false);
    // The device's next signed update wins again.
    expect(table.merge(u('bob', 'd1', T0 + 1))).toBe(true);
    expect(table.device('bob', 'd1')?.state).toBe('online');
  });

  it('makes room for a new device by dropping the oldest, and refuses a new user when full', () => {
    const table = new PresenceTable({ maxUsers: 2, maxDevicesPerUser: 2 });
    table.merge(u('bob', 'd1', T0, T0 - 100));
    table.merge(u('bob', 'd2', T0, T0));
    table.merge(u('bob', 'd3', T0, T0 + 100));
    expect(table.get('bob').map((x) => x.deviceId).sort()).toEqual(['d2', 'd3']);
    table.merge(u('carol', 'd1', T0));
    expect(() => table.merge(u('dave', 'd1', T0))).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_FULL' }));
    // Known users still take news.
    expect(table.merge(u('carol', 'd1', T0 + 1))).toBe(true);
  });

  it('forgets updates older than 72 h', () => {
    const table = new PresenceTable();
    table.merge(u('bob', 'd1', T0));
    table.merge(u('bob', 'd2', T0 + 1000));
    expect(table.expire(T0 + RECORD_LIFETIME_MS)).toBe(1);
    expect(table.get('bob').map((x) => x.deviceId)).toEqual(['d2']);
    expect(table.expire(T0 + 1000 + RECORD_LIFETIME_MS)).toBe(1);
    expect(table.size).toBe(0);
  });
});

describe('Subscriptions', () => {
  it('adds, renews (never shortening) and expires subscriptions', () => {
    const subs = new Subscriptions();
    subs.add('bob', contact(1), T0 + 1000);
    subs.add('bob', contact(2), T0 + 500);
    subs.add('bob', contact(1), T0 + 200);
    expect(subs.size).toBe(2);
    expect(subs.of('bob', T0 + 600).map((c) => c.address)).toEqual(['192.0.2.1:4000']);
    expect(subs.expire(T0 + 600)).toBe(1);
    expect(subs.size).toBe(1);
    subs.add('bob', contact(1), T0 + 5000);
    expect(subs.of('bob', T0 + 4000)).toHaveLength(1);
    expect(subs.expire(T0 + 5000)).toBe(1);
    expect(subs.size).toBe(0);
  });

  it('drops one subscriber everywhere, or one user of it', () => {
    const subs = new Subscriptions();
    for (const user of ['bob', 'carol', 'dave']) {
      subs.add(user, contact(1), T0 + 1000);
      subs.add(user, contact(2), T0 + 1000);
    }
    subs.remove('carol', contact(2).id);
    expect(subs.of('carol', T0).map((c) => c.address)).toEqual(['192.0.2.1:4000']);
    expect(subs.removeSubscriber(contact(1).id)).toBe(3);
    expect(subs.size).toBe(2);
    expect(subs.of('carol', T0)).toEqual([]);
  });

  it('has limits per user and in all', () => {
    const subs = new Subscriptions({ maxPerUser: 2, maxTotal: 3 });
    subs.add('bob', contact(1), T0);
    subs.add('bob', contact(2), T0);
    expect(() => subs.add('bob', contact(3), T0)).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_FULL' }));
    subs.add('carol', contact(3), T0);
    expect(() => subs.add('dave', contact(4), T0)).toThrow(expect.objectContaining({ code: 'ERR_PRESENCE_FULL' }));
    // A renewal is never refused.
    subs.add('bob', contact(1), T0 + 10);
  });
});
