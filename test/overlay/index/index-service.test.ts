import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCredential } from '../../../src/crypto/credential.js';
import type { Credential } from '../../../src/crypto/credential.js';
import { generateIdentity } from '../../../src/crypto/identity.js';
import type { Identity } from '../../../src/crypto/identity.js';
import type { Link } from '../../../src/link/link.js';
import { dialLink, LinkServer } from '../../../src/link/transport.js';
import type { PeerLink } from '../../../src/link/transport.js';
import { IndexService, ONE_OFF_DIALS_PER_MINUTE } from '../../../src/overlay/index/index-service.js';
import type { IndexServiceOptions } from '../../../src/overlay/index/index-service.js';
import { INDEX_LINK_ROLE, LinkPool } from '../../../src/overlay/index/link-pool.js';
import { FindValue, IndexPing, Store } from '../../../src/overlay/index/messages.js';
import { idToHex, supernodeId, userKey } from '../../../src/overlay/index/node-id.js';
import { NodeIndexPublish, NodeIndexSearch } from '../../../src/overlay/index/node-messages.js';
import type { DirectoryAnswer } from '../../../src/overlay/index/node-messages.js';
import { verifyLocationRecord } from '../../../src/overlay/index/record.js';
import type { LocationRecord } from '../../../src/overlay/index/record.js';
import type { ContactInfo } from '../../../src/overlay/index/routing-table.js';
import { silentLogger } from '../../../src/system/logging.js';
import { HOUR, loginServer, makeDevice, makeRecord, NETWORK, T0 } from './fixtures.js';
import type { Device } from './fixtures.js';

/**
 * Five supernodes in one process, on loopback with real sockets and Noise
 * links: each has an identity, a LinkServer and an IndexService, and joins
 * through the one started before it. The services share a clock the test
 * moves (records and credentials are dated from T0).
 */
const log = silentLogger();
const K = 3;
const clock = { now: T0 + 120_000 };

interface Supernode {
  name: string;
  identity: Identity;
  credential: Credential;
  server: LinkServer;
  service: IndexService;
  contact: ContactInfo;
}

const directory = new Map<string, DirectoryAnswer>([['ghost', { exists: true, lastLogin: T0 - 30 * HOUR, lastSupernode: '192.0.2.1:4000' }]]);

/** What the SupernodeService does for a node link (its attach), reduced to the credential check. */
function acceptNode(service: IndexService, { link, peer }: PeerLink): void {
  try {
    const credential = verifyCredential(peer.credential, { loginServerKey: loginServer.publicKey, network: NETWORK, now: clock.now, noiseKey: link.channel.remoteStaticKey });
    service.serveNode(link, credential);
  } catch (err) {
    link.close(err as Error);
  }
}

async function startSupernode(name: string, options: Partial<IndexServiceOptions> = {}): Promise<Supernode> {
  const identity = generateIdentity();
  const { credential } = makeDevice(name, { identity });
  const holder: { service?: IndexService } = {};
  const server = new LinkServer({
    identity, network: NETWORK, role: 'supernode', log, host: '127.0.0.1', port: 0,
    onLink: (peerLink) => (peerLink.peer.role === INDEX_LINK_ROLE ? holder.service!.accept(peerLink) : acceptNode(holder.service!, peerLink)),
  });
  await server.start();
  const service = new IndexService({
    identity, network: NETWORK, address: `127.0.0.1:${server.port}`, loginServerKey: loginServer.publicKey, credential: () => credential, log,
    k: K, now: () => clock.now, maintenanceIntervalMs: 3_600_000, fallback: async (user) => directory.get(user), ...options,
  });
  holder.service = service;
  service.start();
  return { name, identity, credential, server, service, contact: service.self };
}

async function startNetwork(n: number): Promise<Supernode[]> {
  const nodes: Supernode[] = [];
  for (let i = 0; i < n; i++) {
    const sn = await startSupernode(`sn${i}`);
    if (i > 0) await sn.service.join([nodes[i - 1]!.contact]);
    nodes.push(sn);
  }
  return nodes;
}

async function stopSupernode(sn: Supernode): Promise<void> {
  sn.service.stop();
  await sn.server.stop();
}

interface User {
  name: string;
  device: Device;
  record: LocationRecord;
}

function makeUsers(n: number): User[] {
  return Array.from({ length: n }, (_, i) => {
    const name = `user${String(i).padStart(2, '0')}`;
    const device = makeDevice(name);
    return { name, device, record: makeRecord(name, device, { device: { deviceId: device.identity.deviceId, supernode: '127.0.0.1:4000', addresses: [`10.0.0.${i + 1}:5060`], since: T0 } }) };
  });
}

/** The supernodes that hold a live record of `user`. */
const holders = (nodes: readonly Supernode[], user: string): string[] => nodes.filter((sn) => sn.service.node.store.get(user, clock.now).length > 0).map((sn) => sn.name).sort();
/** The k supernodes closest to `user`'s key. */
const closest = (nodes: readonly Supernode[], user: string): string[] => {
  const key = userKey(user);
  return [...nodes].sort((a, b) => ((a.contact.id ^ key) < (b.contact.id ^ key) ? -1 : 1)).slice(0, K).map((sn) => sn.name).sort();
};

describe('IndexService: five supernodes over real links', () => {
  let nodes: Supernode[];
  const users = makeUsers(20);

  beforeAll(async () => {
    nodes = await startNetwork(5);
    for (const [i, user] of users.entries()) await nodes[i % nodes.length]!.service.publish(user.record);
  });
  afterAll(async () => {
    for (const sn of nodes) await stopSupernode(sn);
  });

  it('reaches known supernodes by address, and dials an unknown address only when the caller vouches for it', async () => {
    const [a, b] = nodes;
    expect(await a!.service.requestSupernode(b!.contact.address, IndexPing, {})).toBeDefined();
    let connections = 0;
    const stranger = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => stranger.listen(0, '127.0.0.1', r));
    try {
      const address = `127.0.0.1:${(stranger.address() as AddressInfo).port}`;
      await expect(a!.service.requestSupernode(address, IndexPing, {})).rejects.toMatchObject({ code: 'ERR_INDEX_UNKNOWN_SUPERNODE' });
      await expect(a!.service.requestSupernode(address, IndexPing, {}, { mayDial: async () => false })).rejects.toMatchObject({ code: 'ERR_INDEX_UNKNOWN_SUPERNODE' });
      expect(connections).toBe(0);
      await expect(a!.service.requestSupernode(address, IndexPing, {}, { mayDial: async () => true, timeoutMs: 500 })).rejects.toThrow();
      expect(connections).toBe(1);
      // It did not answer as a supernode: not dialled again soon, whoever vouches.
      let asked = 0;
      const vouch = async () => {
        asked++;
        return true;
      };
      await expect(a!.service.requestSupernode(address, IndexPing, {}, { mayDial: vouch, timeoutMs: 500 })).rejects.toMatchObject({ code: 'ERR_INDEX_UNKNOWN_SUPERNODE' });
      expect(connections).toBe(1);
      expect(asked).toBe(0);
      // And one-off links have a budget, spent before the caller's check (itself a lookup) is made.
      const refuse = async () => {
        asked++;
        return false;
      };
      const tries = await Promise.allSettled(Array.from({ length: ONE_OFF_DIALS_PER_MINUTE }, (_, i) => a!.service.requestSupernode(`192.0.2.${i + 1}:4000`, IndexPing, {}, { mayDial: refuse })));
      expect(tries.every((t) => t.status === 'rejected')).toBe(true);
      expect(tries.some((t) => t.status === 'rejected' && (t.reason as { code: string }).code === 'ERR_INDEX_BUSY')).toBe(true);
      expect(asked).toBeLessThan(ONE_OFF_DIALS_PER_MINUTE);
    } finally {
      await new Promise<void>((r) => stranger.close(() => r()));
    }
  });

  it('joined: every supernode knows the four others, with the keys their links proved', () => {
    for (const sn of nodes) {
      const known = sn.service.node.table.contacts();
      expect(known.map((c) => c.id).sort()).toEqual(nodes.filter((o) => o !== sn).map((o) => o.contact.id).sort());
      for (const c of known) expect(c.publicKey).toBe(nodes.find((o) => o.contact.id === c.id)!.contact.publicKey);
    }
  });

  it('stores each record on the k supernodes closest to the user', () => {
    for (const user of users) expect(holders(nodes, user.name), user.name).toEqual(closest(nodes, user.name));
  });

  it('finds every user from every supernode, asking at most α supernodes', async () => {
    for (const sn of nodes) {
      for (const user of users) {
        const result = await sn.service.search(user.name.toUpperCase());
        expect(result.records, `${user.name} from ${sn.name}`).toEqual([user.record]);
        expect(result.found).toBe(true);
        const replica = closest(nodes, user.name).includes(sn.name);
        if (replica) expect(result.contacted).toBe(0);
        else expect(result.contacted).toBeGreaterThanOrEqual(2);
        expect(result.contacted).toBeLessThanOrEqual(3);
      }
    }
  });

  it('says "not found" for an unknown user after asking only the closest supernodes', async () => {
    const result = await nodes[0]!.service.search('nobody-here');
    expect(result).toMatchObject({ found: false, records: [] });
    // The k closest of the four others answer "no value", and the fourth is never asked.
    expect(result.contacted).toBe(K);
  });

  it('enters a dialler in its routing table only when its hello names the address the link comes from', async () => {
    const target = nodes[0]!;
    const honest = testPool('127.0.0.1:4999');
    const liar = testPool('192.0.2.50:4000');
    const anonymous = testPool();
    try {
      for (const pool of [honest, liar, anonymous]) await expect(pool.request(target.contact, IndexPing, {})).resolves.toEqual({ id: idToHex(target.contact.id) });
      const table = target.service.node.table;
      expect(table.get(honest.id)).toMatchObject({ address: '127.0.0.1:4999', publicKey: honest.publicKey });
      expect(table.has(liar.id)).toBe(false);
      expect(table.has(anonymous.id)).toBe(false);
    } finally {
      for (const pool of [honest, liar, anonymous]) pool.stop();
      target.service.node.table.remove(honest.id);
    }
  });

  it('refuses a forged record and a replayed older one with their codes, and keeps the stored record', async () => {
    const user = users[0]!;
    const forged = { ...user.record, seq: user.record.seq + 1, device: { ...user.record.device, addresses: ['203.0.113.9:5060'] } };
    const older = makeRecord(user.name, user.device, { issued: user.record.issued - 1_000 });
    const replica = nodes.find((sn) => closest(nodes, user.name).includes(sn.name))!;
    const outsider = nodes.find((sn) => !closest(nodes, user.name).includes(sn.name))!;
    for (const sn of [replica, outsider]) {
      await expect(sn.service.publish(forged)).rejects.toMatchObject({ name: 'RecordError', code: 'ERR_RECORD_SIGNATURE' });
      // The replica knows better itself; the outsider hears it from every replica.
      await expect(sn.service.publish(older)).rejects.toMatchObject({ name: 'RecordError', code: 'ERR_RECORD_REPLAY' });
    }
    // A STORE straight over an index link gets per-record answers.
    const pool = testPool();
    try {
      const answer = await pool.request(replica.contact, Store, { records: [forged, older, user.record] });
      expect(answer.results).toEqual([
        { deviceId: user.device.identity.deviceId, status: 'refused', code: 'ERR_RECORD_SIGNATURE' },
        { deviceId: user.device.identity.deviceId, status: 'refused', code: 'ERR_RECORD_REPLAY' },
        { deviceId: user.device.identity.deviceId, status: 'unchanged' },
      ]);
      const found = await pool.request(replica.contact, FindValue, { user: user.name });
      expect(found.records).toEqual([user.record]);
    } finally {
      pool.stop();
    }
    for (const sn of nodes) expect((await sn.service.search(user.name)).records).toEqual([user.record]);
  });

  it('closes index links whose handshake shows no valid credential', async () => {
    const target = nodes[0]!;
    const stranger = generateIdentity();
    for (const credential of [undefined, makeDevice('sn-expired', { identity: stranger, issued: T0 - 10 * HOUR, hours: 1 }).credential]) {
      const { link } = await dialLink({
        identity: stranger, network: NETWORK, role: INDEX_LINK_ROLE, log, host: '127.0.0.1', port: target.server.port,
        ...(credential ? { credential: () => credential } : {}),
      });
      const closed = new Promise((resolve) => link.once('close', resolve));
      await expect(link.request(IndexPing, {})).rejects.toMatchObject({ code: 'ERR_LINK_CLOSED' });
      await closed;
    }
  });

  describe('an attached node', () => {
    const phone = makeDevice('phoebe');
    let link: Link;

    beforeAll(async () => {
      ({ link } = await dialLink({ identity: phone.identity, network: NETWORK, role: 'node', credential: () => phone.credential, log, host: '127.0.0.1', port: nodes[1]!.server.port }));
    });
    afterAll(() => link.close());

    it('publishes its own record, found from every supernode', async () => {
      const record = makeRecord('phoebe', phone);
      const answer = await link.request(NodeIndexPublish, { record: { ...record } });
      expect(answer).toEqual({ user: 'phoebe', deviceId: phone.identity.deviceId, seq: record.seq, replicas: K, expires: record.issued + 72 * HOUR });
      for (const sn of nodes) expect((await sn.service.search('phoebe')).records).toEqual([record]);
    });

    it('is refused a record of another user, a forged one, a replayed one, and one sent too soon', async () => {
      const record = makeRecord('phoebe', phone);
      const someoneElse = users[1]!.record;
      const forged = { ...record, seq: record.seq + 1, device: { ...record.device, addresses: ['203.0.113.9:5060'] } };
      const older = makeRecord('phoebe', phone, { issued: record.issued - 5_000 });
      const newer = makeRecord('phoebe', phone, { issued: record.issued + 1_000 });
      await expect(link.request(NodeIndexPublish, { record: { ...someoneElse } })).rejects.toMatchObject({ code: 'ERR_RECORD_OWNER' });
      await expect(link.request(NodeIndexPublish, { record: { ...forged } })).rejects.toMatchObject({ code: 'ERR_RECORD_SIGNATURE' });
      await expect(link.request(NodeIndexPublish, { record: { ...older } })).rejects.toMatchObject({ code: 'ERR_RECORD_REPLAY' });
      await expect(link.request(NodeIndexPublish, { record: { v: 1, user: 'phoebe' } })).rejects.toMatchObject({ code: 'ERR_RECORD_MALFORMED' });
      await expect(link.request(NodeIndexPublish, { record: { ...newer } })).rejects.toMatchObject({ code: 'ERR_INDEX_BUSY' });
      // Nothing of it reached the index: users[1] is where it was, phoebe's record is the first one.
      for (const sn of nodes) {
        expect((await sn.service.search('phoebe')).records).toEqual([record]);
        expect((await sn.service.search(users[1]!.name)).records).toEqual([someoneElse]);
      }
    });

    it('searches: the index with signed records, the login server when the index has nothing, else not found', async () => {
      const user = users[7]!;
      const hit = await link.request(NodeIndexSearch, { user: user.name });
      expect(hit).toEqual({
        found: true, user: user.name, online: true, source: 'index', lastSeen: user.record.issued,
        devices: [{ deviceId: user.device.identity.deviceId, supernode: '127.0.0.1:4000', addresses: ['10.0.0.8:5060'], since: T0, presence: 'online', lastSeen: user.record.issued }],
        records: [user.record],
      });
      // The node need not trust the supernode: the record verifies against the login server key.
      expect(verifyLocationRecord(hit.records[0], { loginServerKey: loginServer.publicKey, network: NETWORK, now: clock.now })).toEqual(user.record);
      await expect(link.request(NodeIndexSearch, { user: 'Ghost' })).resolves.toEqual({
        found: true, user: 'ghost', online: false, devices: [], records: [], lastSeen: T0 - 30 * HOUR, lastSupernode: '192.0.2.1:4000', source: 'login-server',
      });
      await expect(link.request(NodeIndexSearch, { user: 'nobody-here' })).resolves.toEqual({
        found: false, user: 'nobody-here', online: false, devices: [], records: [], lastSeen: null, source: 'index',
      });
    });
  });
});

describe('IndexService: seeding from the supernode peer list', () => {
  it('takes the peers with a key as contacts, joins through them and finds what they hold', async () => {
    const nodes = await startNetwork(3);
    const user = makeUsers(1)[0]!;
    const newcomer = await startSupernode('sn-new');
    const extra: Supernode[] = [];
    try {
      await nodes[0]!.service.publish(user.record);
      const infos = [
        { address: newcomer.contact.address, publicKey: newcomer.contact.publicKey! },
        ...nodes.map((sn) => ({ address: sn.contact.address, publicKey: sn.contact.publicKey! })),
        { address: '192.0.2.7:4000' },
      ];
      const contacts = newcomer.service.contactsFromPeers(infos);
      expect(contacts.map((c) => c.id).sort()).toEqual(nodes.map((sn) => sn.contact.id).sort());
      expect(newcomer.service.node.table.size).toBe(3);
      await expect(newcomer.service.join(contacts)).resolves.toEqual({ answered: 3, contacts: 3 });
      await expect(newcomer.service.search(user.name)).resolves.toMatchObject({ found: true, records: [user.record] });
      // The others learnt of the newcomer from its requests.
      for (const sn of nodes) expect(sn.service.node.table.has(newcomer.contact.id)).toBe(true);

      // With `seeds`, a supernode whose table runs low rejoins through them on its own.
      const late = await startSupernode('sn-late', { seeds: () => infos });
      extra.push(late);
      await expect.poll(() => late.service.node.table.size).toBe(4);
      await expect(late.service.search(user.name)).resolves.toMatchObject({ found: true, records: [user.record] });
    } finally {
      for (const sn of [...nodes, newcomer, ...extra]) await stopSupernode(sn);
    }
  });
});

describe('IndexService: losing supernodes', () => {
  it('keeps every record after two of five supernodes die and one maintenance round (pings, then replication)', async () => {
    const nodes = await startNetwork(5);
    const users = makeUsers(20);
    try {
      for (const [i, user] of users.entries()) await nodes[i % nodes.length]!.service.publish(user.record);
      // Kill the two supernodes that hold the most records.
      const victims = [...nodes].sort((a, b) => b.service.node.store.size - a.service.node.store.size).slice(0, 2);
      for (const sn of victims) await stopSupernode(sn);
      const live = nodes.filter((sn) => !victims.includes(sn));
      const lost = users.filter((u) => holders(live, u.name).length < K);
      expect(lost.length).toBeGreaterThan(0);

      // Nobody has noticed yet. Contacts fall silent past contactCheckMs (15 min): the next rounds ping them,
      // the dead fail twice (maxFailures 2) and leave the tables, and their records go to the new replicas.
      clock.now += 16 * 60_000;
      for (let round = 0; round < 2; round++) for (const sn of live) await sn.service.maintain();

      for (const sn of live) expect(sn.service.node.table.size).toBe(live.length - 1);
      for (const user of users) {
        expect(holders(live, user.name), user.name).toEqual(live.map((sn) => sn.name).sort());
        for (const sn of live) expect((await sn.service.search(user.name)).records).toEqual([user.record]);
      }
    } finally {
      for (const sn of nodes) await stopSupernode(sn);
      clock.now = T0 + 120_000;
    }
  });

  it('stops twice without complaint and leaves no timer or socket behind', async () => {
    const handles = (): string[] => process.getActiveResourcesInfo().filter((kind) => /^(Timeout|Immediate|TCP)/.test(kind));
    const nodes = await startNetwork(3);
    await nodes[1]!.service.publish(makeUsers(1)[0]!.record);
    await nodes[2]!.service.maintain();
    for (const sn of nodes) {
      sn.service.stop();
      sn.service.stop();
      await sn.server.stop();
    }
    await expect(nodes[0]!.service.search('user00')).rejects.toMatchObject({ code: 'ERR_INDEX_STOPPED' });
    expect(await settled(handles)).toEqual([]);
  });
});

/** A bare pool of a supernode that is not in the network (announcing `announce` in its hello, if given). */
function testPool(announce?: string): LinkPool & { id: bigint; publicKey: string } {
  const identity = generateIdentity();
  const { credential } = makeDevice('sn-test', { identity });
  const pool = new LinkPool({ identity, network: NETWORK, log, credential: () => credential, ...(announce ? { announce } : {}) });
  pool.start();
  return Object.assign(pool, { id: supernodeId(identity.noise.publicKey), publicKey: identity.noise.publicKey.toString('base64') });
}

/** What `probe` returns once it is empty, or after a second (checked between timer ticks, so the wait itself is not counted). */
async function settled(probe: () => string[]): Promise<string[]> {
  for (let i = 0; i < 50 && probe().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return probe();
}
