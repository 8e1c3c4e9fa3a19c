import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { dialLink } from '../../src/link/transport.js';
import { INDEX_LINK_ROLE, IndexHello } from '../../src/overlay/index/link-pool.js';
import { NodeIndexPublish } from '../../src/overlay/index/node-messages.js';
import { PresencePublish, PresenceSet, PresenceWatch } from '../../src/overlay/presence/messages.js';
import { verifyPresenceUpdate } from '../../src/overlay/presence/update.js';
import type { PresenceUpdate } from '../../src/overlay/presence/update.js';
import { until } from '../helpers/until.js';
import { loginServer, makeDevice, makeRecord, NETWORK } from './index/fixtures.js';
import {
  attachPhone, byDistance, clock, closed, closerIdentity, K, log, presenceOf, startNetwork, startSupernode, stopSupernode,
} from './presence-network.js';
import type { Phone, Supernode } from './presence-network.js';

/**
 * Presence over real links between five in-process supernodes (k = 3):
 * a watcher's supernode subscribes at the supernodes responsible for the
 * watched user; changes flow device → its supernode → responsible
 * supernodes → the watcher's supernode → the watcher, without polling.
 */
const last = (phone: Phone, user: string): PresenceUpdate | undefined => [...phone.changes].reverse().find((u) => u.user === user);

describe('PresenceService: five supernodes over real links', () => {
  let nodes: Supernode[];
  let extra: Supernode[] = [];
  let alice: Phone;
  let bob: Phone;

  beforeAll(async () => {
    // Renewal every 2 s of the shared clock, checked every 20 ms: tests move the clock to renew.
    nodes = await startNetwork(5, { presence: { renewIntervalMs: 2_000, checkIntervalMs: 20 } });
    // Alice and bob attach to supernodes that are not responsible for bob: everything goes over the network.
    const far = byDistance(nodes, 'bob').slice(K);
    alice = await attachPhone(far[0]!, 'alice');
    bob = await attachPhone(far[1]!, 'bob');
  });

  afterAll(async () => {
    alice?.link.close();
    bob?.link.close();
    for (const sn of [...nodes, ...extra]) await stopSupernode(sn);
  });

  it('a watcher hears a buddy come online and go into a call, through the responsible supernodes', async () => {
    expect(await alice.link.request(PresenceWatch, { users: ['Bob', 'alice'] })).toEqual({ watching: 1 });
    // Subscribed at the k supernodes responsible for bob (all of them, as k = 3 = subscribeAt).
    const responsible = byDistance(nodes, 'bob').slice(0, K);
    for (const sn of responsible) expect(sn.presence.subscribers.of('bob', clock.now).map((c) => c.address)).toEqual([alice.supernode.address]);
    expect(await bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'online') } })).toEqual({ replicas: K });
    const online = await until('alice to hear bob online', async () => last(alice, 'bob'));
    expect(online).toMatchObject({ by: 'device', user: 'bob', state: 'online', supernode: bob.supernode.address });
    // What the watcher got still carries the device's signature: it checks it itself.
    expect(verifyPresenceUpdate(online, { loginServerKey: loginServer.publicKey, network: NETWORK, now: clock.now })).toEqual(online);
    clock.now += 1000;
    await bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'in-call') } });
    await until('alice to hear bob in a call', async () => last(alice, 'bob')?.state === 'in-call');
    for (const sn of responsible) expect(sn.presence.table.device('bob', bob.device.identity.deviceId)?.state).toBe('in-call');
  });

  it('refuses updates for someone else, naming another supernode, replayed, forged, or too frequent', async () => {
    const accepted = bob.seq;
    clock.now += 1000;
    const carol = makeDevice('carol');
    const other = { ...bob, user: 'carol', device: carol };
    await expect(bob.link.request(PresenceSet, { update: { ...presenceOf(other, 'online') } })).rejects.toMatchObject({ code: 'ERR_PRESENCE_OWNER' });
    await expect(bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'online', { supernode: '192.0.2.1:4000' }) } })).rejects.toMatchObject({ code: 'ERR_PRESENCE_SUPERNODE' });
    await expect(bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'online', { seq: accepted - 1 }) } })).rejects.toMatchObject({ code: 'ERR_PRESENCE_REPLAY' });
    const forged = { ...presenceOf(bob, 'online'), state: 'offline' };
    await expect(bob.link.request(PresenceSet, { update: forged })).rejects.toMatchObject({ code: 'ERR_PRESENCE_SIGNATURE' });
    await bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'online') } });
    await expect(bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'in-call') } })).rejects.toMatchObject({ code: 'ERR_PRESENCE_BUSY' });
    await until('alice to hear bob online again', async () => last(alice, 'bob')?.state === 'online');
  });

  it('search: a device that logged out is offline while its record lives; back online when it returns', async () => {
    clock.now += 1000;
    const record = makeRecord('bob', bob.device, { issued: clock.now, device: { deviceId: bob.device.identity.deviceId, supernode: bob.supernode.address, addresses: [], since: clock.now } });
    await bob.link.request(NodeIndexPublish, { record: { ...record } });
    const searcher = nodes.find((sn) => sn !== alice.supernode && sn !== bob.supernode && !byDistance(nodes, 'bob').slice(0, K).includes(sn)) ?? alice.supernode;
    expect(await searcher.index.answerSearch('bob')).toMatchObject({ online: true, devices: [{ presence: 'online' }] });
    clock.now += 1000;
    const goodbye = presenceOf(bob, 'offline');
    await bob.link.request(PresenceSet, { update: { ...goodbye } });
    const answer = await searcher.index.answerSearch('bob');
    expect(answer).toMatchObject({ found: true, online: false, lastSeen: goodbye.issued, devices: [{ presence: 'offline', lastSeen: goodbye.issued }] });
    await until('alice to hear bob offline', async () => last(alice, 'bob')?.state === 'offline');
    clock.now += 1000;
    await bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'online') } });
    expect(await searcher.index.answerSearch('bob')).toMatchObject({ online: true });
  });

  it('when a phone\'s link dies, its supernode says offline, and only that supernode is believed', async () => {
    clock.now += 1000;
    const bob2 = await attachPhone(bob.supernode, 'bob', makeDevice('bob'));
    await bob2.link.request(PresenceSet, { update: { ...presenceOf(bob2, 'online') } });
    await until('alice to hear bob\'s second device', async () => alice.changes.some((u) => u.deviceId === bob2.device.identity.deviceId));
    // A rogue supernode (real credential) claims the second device went offline: refused, it was never named.
    const rogue = generateIdentity();
    const { credential } = makeDevice('rogue', { identity: rogue });
    const responsible = byDistance(nodes, 'bob')[0]!;
    const { link } = await dialLink({ identity: rogue, network: NETWORK, role: INDEX_LINK_ROLE, credential: () => credential, log, host: '127.0.0.1', port: responsible.server.port });
    try {
      await link.request(IndexHello, { address: '127.0.0.1:9' });
      const claim = { v: 1 as const, by: 'supernode' as const, user: 'bob', deviceId: bob2.device.identity.deviceId, state: 'offline' as const, supernode: '127.0.0.1:9', seq: bob2.seq, issued: clock.now };
      expect(await link.request(PresencePublish, { updates: [claim] })).toEqual({ accepted: 0, refused: [{ deviceId: bob2.device.identity.deviceId, code: 'ERR_PRESENCE_ATTESTER' }] });
      // Nor may it speak in the name of the right supernode over its own link.
      const spoof = { ...claim, supernode: bob.supernode.address };
      expect((await link.request(PresencePublish, { updates: [spoof] })).refused[0]?.code).toBe('ERR_PRESENCE_ATTESTER');
    } finally {
      link.close();
    }
    // The real loss of the link: bob's supernode says it.
    bob2.link.close();
    const offline = await until('alice to hear bob\'s second device offline', async () => {
      const u = [...alice.changes].reverse().find((x) => x.deviceId === bob2.device.identity.deviceId);
      return u?.state === 'offline' ? u : undefined;
    });
    expect(offline).toMatchObject({ by: 'supernode', supernode: bob.supernode.address, seq: bob2.seq });
    // Bob's first device is still online: the user is.
    const devices = new Map(alice.changes.filter((u) => u.user === 'bob').map((u) => [u.deviceId, u.state]));
    expect(devices.get(bob.device.identity.deviceId)).toBe('online');
  });

  it('a new watcher gets the current picture at once; subscriptions lapse when nobody watches', async () => {
    const carol = await attachPhone(alice.supernode, 'carol');
    await carol.link.request(PresenceWatch, { users: ['bob'] });
    // Sent before the answer: both of bob's devices, one online, one offline.
    expect(new Set(carol.changes.map((u) => `${u.deviceId}:${u.state}`))).toEqual(new Set([`${bob.device.identity.deviceId}:online`, expect.stringMatching(/:offline$/)]));
    expect(carol.changes).toHaveLength(2);
    alice.link.close();
    carol.link.close();
    await Promise.all([closed(alice.link), closed(carol.link)]);
    await until('their supernode to notice', async () => alice.supernode.presence.stats().watched === 0);
    const responsible = byDistance(nodes, 'bob').slice(0, K);
    // Nobody renews: after the subscription lifetime (3 renewal intervals) the responsible supernodes forget it.
    clock.now += 6_001;
    await until('subscriptions to lapse', async () => responsible.every((sn) => sn.presence.subscribers.of('bob', clock.now).length === 0 && sn.presence.subscribers.size === 0), 3000);
  });

  it('follows a supernode that joins closer to the user: the subscription moves, and so does the news', async () => {
    alice = await attachPhone(alice.supernode, 'alice', alice.device);
    await alice.link.request(PresenceWatch, { users: ['bob'] });
    const newcomer = await startSupernode('sn5', { identity: closerIdentity(nodes, 'bob'), presence: { renewIntervalMs: 2_000, checkIntervalMs: 20 } });
    extra = [newcomer];
    await newcomer.index.join([nodes[0]!.index.self]);
    // Alice's supernode notices the new contact (its routing table changed) and places the subscription anew.
    for (const sn of nodes) await sn.index.join([newcomer.index.self]);
    await until('the subscription at the newcomer', async () => newcomer.presence.subscribers.of('bob', clock.now).some((c) => c.address === alice.supernode.address), 3000);
    // Bob's supernode publishes there too now; the newcomer alone could tell alice.
    clock.now += 1000;
    await bob.link.request(PresenceSet, { update: { ...presenceOf(bob, 'in-call') } });
    expect(newcomer.presence.table.device('bob', bob.device.identity.deviceId)?.state).toBe('in-call');
    await until('alice to hear it', async () => last(alice, 'bob')?.state === 'in-call');
  });

  it('limits how far one phone can make its supernode fan out: one watch at a time, a budget of new users', async () => {
    const sn = byDistance(nodes, 'mallory').slice(K)[0]!;
    const mallory = await attachPhone(sn, 'mallory');
    try {
      const many = (from: number, n: number) => Array.from({ length: n }, (_, i) => `nobody-${from + i}`);
      const first = mallory.link.request(PresenceWatch, { users: many(0, 5) });
      // The same moment: the first is still subscribing.
      await expect(mallory.link.request(PresenceWatch, { users: many(0, 6) })).rejects.toMatchObject({ code: 'ERR_PRESENCE_BUSY' });
      await first;
      // 1,000 names at once is more new users than the budget allows.
      await expect(mallory.link.request(PresenceWatch, { users: many(0, 1000) })).rejects.toMatchObject({ code: 'ERR_PRESENCE_BUSY' });
      // Watching the same users again costs nothing.
      expect(await mallory.link.request(PresenceWatch, { users: many(0, 5) })).toEqual({ watching: 5 });
    } finally {
      mallory.link.close();
    }
  });
});
