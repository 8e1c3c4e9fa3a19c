/**
 * A supernode's "offline" is not signed by the device. Found in review: when
 * its seq was taken as given, the supernode a device named could publish an
 * offline with seq = 2^53-1 and every update the device signed afterwards
 * lost — at the responsible supernodes, the watchers' supernodes and the
 * buddies' phones — for 72 h, even after the device moved on. Regression test.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { dialLink } from '../../src/link/transport.js';
import { INDEX_LINK_ROLE, IndexHello } from '../../src/overlay/index/link-pool.js';
import { PresencePublish, PresenceSet } from '../../src/overlay/presence/messages.js';
import { makeDevice, NETWORK } from './index/fixtures.js';
import { attachPhone, byDistance, clock, K, log, presenceOf, startNetwork, stopSupernode } from './presence-network.js';
import type { Supernode } from './presence-network.js';

let nodes: Supernode[];
beforeAll(async () => {
  nodes = await startNetwork(5, { presence: { minSetIntervalMs: 0 } });
});
afterAll(async () => {
  for (const sn of nodes) await stopSupernode(sn);
});

it('an offline with an inflated seq from the (then) named supernode must not outlive the device\'s next signed update', async () => {
  const far = byDistance(nodes, 'carol').slice(K);
  const rogueSn = far[0]!;
  const honestSn = far[1]!;
  const carol = await attachPhone(rogueSn, 'carol');
  expect((await carol.link.request(PresenceSet, { update: { ...presenceOf(carol, 'online') } })).replicas).toBe(K);
  // The operator of carol's supernode speaks for it on index links (same address).
  for (const responsible of byDistance(nodes, 'carol').slice(0, K)) {
    const rogue = generateIdentity();
    const { credential } = makeDevice('rogue', { identity: rogue });
    const { link } = await dialLink({ identity: rogue, network: NETWORK, role: INDEX_LINK_ROLE, credential: () => credential, log, host: '127.0.0.1', port: responsible.server.port });
    await link.request(IndexHello, { address: rogueSn.address });
    const claim = { v: 1 as const, by: 'supernode' as const, user: 'carol', deviceId: carol.device.identity.deviceId, state: 'offline' as const, supernode: rogueSn.address, seq: Number.MAX_SAFE_INTEGER, issued: clock.now };
    expect((await link.request(PresencePublish, { updates: [claim] })).accepted).toBe(1);
    link.close();
  }
  // Carol leaves the rogue and attaches to an honest supernode, and says she is online (signed, newer).
  carol.link.close();
  clock.now += 60_000;
  const again = await attachPhone(honestSn, 'carol', carol.device);
  await again.link.request(PresenceSet, { update: { ...presenceOf(again, 'online') } });
  // Her next signed update wins: the responsible supernodes show her online again.
  for (const responsible of byDistance(nodes, 'carol').slice(0, K)) {
    expect(responsible.presence.table.device('carol', carol.device.identity.deviceId)).toMatchObject({ by: 'device', state: 'online' });
  }
  again.link.close();
});
