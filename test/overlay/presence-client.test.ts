import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import type { Link } from '../../src/link/link.js';
import { dialLink, LinkServer } from '../../src/link/transport.js';
import { PresenceChanged } from '../../src/overlay/presence/messages.js';
import { PresenceClient } from '../../src/overlay/presence/presence-client.js';
import { signPresence } from '../../src/overlay/presence/update.js';
import type { PresenceUpdate } from '../../src/overlay/presence/update.js';
import { RECORD_LIFETIME_MS } from '../../src/overlay/index/record.js';
import { memoryLogger } from '../helpers/log.js';
import { until } from '../helpers/until.js';
import { loginServer, makeDevice, NETWORK } from './index/fixtures.js';
import { attachPhone, byDistance, clock, K, log, startNetwork, stopSupernode } from './presence-network.js';
import type { Phone, Supernode } from './presence-network.js';

function client(phone: Phone, onChange?: (user: string, presence: string) => void): PresenceClient {
  const c = new PresenceClient({
    identity: phone.device.identity,
    network: NETWORK,
    loginServerKey: loginServer.publicKey,
    credential: () => phone.device.credential,
    attachment: () => (phone.link.closed ? undefined : { link: phone.link, supernode: phone.supernode.address }),
    log,
    now: () => clock.now,
    ...(onChange ? { onChange } : {}),
  });
  c.serve(phone.link);
  return c;
}

describe('PresenceClient (a phone) over five in-process supernodes', () => {
  let nodes: Supernode[];
  let alice: Phone;
  let bob: Phone;

  beforeAll(async () => {
    // The clock stands still here: let a phone set its state as often as it likes.
    nodes = await startNetwork(5, { presence: { minSetIntervalMs: 0 } });
    alice = await attachPhone(byDistance(nodes, 'bob')[K]!, 'alice');
    bob = await attachPhone(byDistance(nodes, 'bob')[K + 1]!, 'bob');
  });

  afterAll(async () => {
    alice?.link.close();
    bob?.link.close();
    for (const sn of nodes) await stopSupernode(sn);
  });

  it('announces its state, watches its buddies, and sees their changes; the latest of quick changes wins; logging out says offline', async () => {
    const changes: string[] = [];
    const a = client(alice, (user, presence) => changes.push(`${user}:${presence}`));
    const b = client(bob);
    await a.watch(['bob', 'carol']);
    expect(a.presenceOf('bob')).toEqual({ user: 'bob', online: false, presence: 'offline' });
    await b.announce();
    await until('alice to see bob online', async () => a.presenceOf('Bob').online);
    clock.now += 1000;
    await Promise.all([b.set('in-call'), b.set('online'), b.set('in-call')]);
    expect(b.state).toBe('in-call');
    await until('alice to see bob in a call', async () => a.presenceOf('bob').presence === 'in-call');
    const responsible = byDistance(nodes, 'bob')[0]!;
    expect(responsible.presence.table.device('bob', bob.device.identity.deviceId)?.state).toBe('in-call');
    clock.now += 1000;
    await b.goodbye();
    await until('alice to see bob offline', async () => a.presenceOf('bob').presence === 'offline');
    expect(changes).toEqual(['bob:online', 'bob:in-call', 'bob:offline']);
    // Stops watching carol and bob: what it knew of them is dropped.
    await a.watch([]);
    expect(a.presenceOf('bob').presence).toBe('offline');
  });

  it('a watch list change the supernode says is too soon is sent again: the latest list is what the supernode watches', async () => {
    const dave = await attachPhone(alice.supernode, 'dave');
    try {
      const d = client(dave);
      // The buddy list arrives while the saved one is still on its way.
      await Promise.all([d.watch(['bob']), d.watch(['bob', 'carol'])]);
      await until('the supernode to watch the latest list', async () => alice.supernode.presence.stats().watched >= 2, 5_000);
    } finally {
      dave.link.close();
    }
  });
});

describe('PresenceClient and an untrusted supernode', () => {
  it('believes a buddy\'s signed update only when the signature holds, and only for users it watches', async () => {
    const bobDevice = makeDevice('bob');
    const carolDevice = makeDevice('carol');
    const sign = (device: typeof bobDevice, user: string, state: 'online' | 'in-call', key = device.identity.signing) =>
      signPresence({ user, deviceId: device.identity.deviceId, state, supernode: '127.0.0.1:4000', seq: clock.now, issued: clock.now }, device.credential, key);
    const forged = sign(bobDevice, 'bob', 'in-call', generateIdentity().signing);
    const genuine = sign(bobDevice, 'bob', 'online');
    const unwatched = sign(carolDevice, 'carol', 'online');
    // A "supernode" that pushes whatever it likes to the phone that attaches.
    const server = new LinkServer({
      identity: generateIdentity(), network: NETWORK, role: 'supernode', log, host: '127.0.0.1', port: 0,
      onLink: ({ link }) => setTimeout(() => link.notify(PresenceChanged, { updates: [forged, unwatched, genuine] }), 50),
    });
    await server.start();
    const alice = makeDevice('alice');
    const mem = memoryLogger('info');
    const { link } = await dialLink({ identity: alice.identity, network: NETWORK, role: 'node', log, host: '127.0.0.1', port: server.port });
    try {
      const c = new PresenceClient({
        identity: alice.identity, network: NETWORK, loginServerKey: loginServer.publicKey, credential: () => alice.credential,
        attachment: () => undefined, log: mem.log, now: () => clock.now,
      });
      await c.watch(['bob']);
      c.serve(link);
      await until('the genuine update', async () => c.presenceOf('bob').online);
      expect(c.presenceOf('bob').presence).toBe('online');
      expect(c.presenceOf('carol').online).toBe(false);
      expect(mem.lines().some((l) => l.msg === 'presence update refused' && l.code === 'ERR_PRESENCE_SIGNATURE')).toBe(true);
    } finally {
      link.close();
      await server.stop();
    }
  });

  it('a supernode\'s offline marks offline only the signed update it refers to; the buddy\'s next signed update wins; old news is forgotten', async () => {
    const bobDevice = makeDevice('bob');
    const deviceId = bobDevice.identity.deviceId;
    const t = clock.now;
    const online = (seq: number, issued = seq) =>
      signPresence({ user: 'bob', deviceId, state: 'online', supernode: '127.0.0.1:4000', seq, issued }, bobDevice.credential, bobDevice.identity.signing);
    const offline = (seq: number): PresenceUpdate => ({ v: 1, by: 'supernode', user: 'bob', deviceId, state: 'offline', supernode: '127.0.0.1:4000', seq, issued: t + 1 });
    let serverLink: Link | undefined;
    const server = new LinkServer({
      identity: generateIdentity(), network: NETWORK, role: 'supernode', log, host: '127.0.0.1', port: 0,
      onLink: ({ link }) => {
        serverLink = link;
      },
    });
    await server.start();
    const alice = makeDevice('alice');
    const { link } = await dialLink({ identity: alice.identity, network: NETWORK, role: 'node', log, host: '127.0.0.1', port: server.port });
    const now = { value: t };
    try {
      const c = new PresenceClient({
        identity: alice.identity, network: NETWORK, loginServerKey: loginServer.publicKey, credential: () => alice.credential,
        attachment: () => undefined, log, now: () => now.value,
      });
      await c.watch(['bob']);
      c.serve(link);
      await until('the supernode side of the link', async () => serverLink);
      const push = async (updates: PresenceUpdate[]) => {
        serverLink!.notify(PresenceChanged, { updates: updates.map((u) => ({ ...u })) });
        await link.ping();
      };
      await push([online(t)]);
      expect(c.presenceOf('bob').presence).toBe('online');
      // An offline claiming a seq far above anything bob signed: not bob's update, ignored.
      await push([offline(Number.MAX_SAFE_INTEGER)]);
      expect(c.presenceOf('bob').presence).toBe('online');
      // The offline for the update bob signed: he is offline...
      await push([offline(t)]);
      expect(c.presenceOf('bob').presence).toBe('offline');
      // ...until he signs again.
      await push([online(t + 1)]);
      expect(c.presenceOf('bob').presence).toBe('online');
      expect(c.knownUsers).toBe(1);
      // 72 h later the next news sweeps what bob said then.
      now.value = t + 1 + RECORD_LIFETIME_MS;
      await push([]);
      expect(c.knownUsers).toBe(0);
    } finally {
      link.close();
      await server.stop();
    }
  });
});
