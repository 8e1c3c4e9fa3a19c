import { describe, expect, it } from 'vitest';
import { IndexNode } from '../../../src/overlay/index/index-node.js';
import { FindValue, Store } from '../../../src/overlay/index/messages.js';
import { idFromHex, idToHex, userKey } from '../../../src/overlay/index/node-id.js';
import type { NodeId } from '../../../src/overlay/index/node-id.js';
import { RECORD_LIFETIME_MS, recordVerifier } from '../../../src/overlay/index/record.js';
import type { LocationRecord } from '../../../src/overlay/index/record.js';
import { RecordStore } from '../../../src/overlay/index/record-store.js';
import { replicaSet, replicationActions, republishActions } from '../../../src/overlay/index/replication.js';
import { RoutingTable } from '../../../src/overlay/index/routing-table.js';
import type { ContactInfo } from '../../../src/overlay/index/routing-table.js';
import { HOUR, loginServer, makeDevice, makeRecord, NETWORK, T0 } from './fixtures.js';
import { MemNetwork } from './mem-network.js';

const verify = recordVerifier({ loginServerKey: loginServer.publicKey, network: NETWORK });
const NOW = T0 + 120_000;
const contact = (id: NodeId, n = 1): ContactInfo => ({ id, address: `10.9.0.${n}:4000` });

describe('index node handlers', () => {
  const alice = makeDevice('alice');
  const desk = makeDevice('alice');
  const record = makeRecord('alice', alice);
  const node = (): IndexNode => new IndexNode({ self: contact(userKey('alice') ^ 1n), verify, k: 3 });

  it('stores good records, refuses bad ones with their code, and keeps what it had', () => {
    const n = node();
    // A forgery must claim a higher seq to get past the replay check; then its signature fails.
    const forged = { ...record, seq: record.seq + 1, device: { ...record.device, addresses: ['203.0.113.9:1'] } };
    const stale = makeRecord('alice', alice, { issued: record.issued - 1_000 });
    const answer = n.handleStore(contact(5n), Store.request.parse(JSON.parse(JSON.stringify({ records: [record, makeRecord('alice', desk)] }))), NOW);
    expect(answer.response.results.map((r) => r.status)).toEqual(['stored', 'stored']);
    const second = n.handleStore(contact(5n), { records: [forged, stale, record] }, NOW);
    expect(second.response.results).toEqual([
      { deviceId: alice.identity.deviceId, status: 'refused', code: 'ERR_RECORD_SIGNATURE' },
      { deviceId: alice.identity.deviceId, status: 'refused', code: 'ERR_RECORD_REPLAY' },
      { deviceId: alice.identity.deviceId, status: 'unchanged' },
    ]);
    expect(n.store.get('alice', NOW)).toHaveLength(2);
    expect(n.store.get('alice', NOW).find((r) => r.device.deviceId === alice.identity.deviceId)).toEqual(record);
    // The sender went into the routing table.
    expect(n.table.has(5n)).toBe(true);
  });

  it('answers FIND_VALUE with the records it holds, else with closer contacts (never the asker)', () => {
    const n = node();
    for (let i = 1; i <= 5; i++) n.contactSeen(contact(userKey('bob') ^ BigInt(i), i), NOW);
    n.handleStore(undefined, { records: [record] }, NOW);
    const hit = FindValue.response.parse(n.handleFindValue(undefined, { user: 'Alice' }, NOW).response);
    expect(hit.records).toEqual([record]);
    const miss = n.handleFindValue(contact(userKey('bob') ^ 1n), { user: 'bob' }, NOW).response;
    expect(miss.records).toBeUndefined();
    expect(miss.closer.map((c) => idFromHex(c.id))).toEqual([2n, 3n, 4n].map((i) => userKey('bob') ^ i));
    expect(n.handlePing(undefined, {}, NOW).response).toEqual({ id: idToHex(n.id) });
  });

  it('drops invalid records and records of other users found by a search', () => {
    const n = node();
    const bob = makeRecord('bob', makeDevice('bob'));
    const forged = { ...record, seq: record.seq + 5 };
    expect(n.findValueAnswer('alice', { records: [bob, forged], closer: [] }, NOW)).toEqual({ closer: [] });
    expect(n.findValueAnswer('alice', { records: [bob, record], closer: [] }, NOW).value).toEqual([record]);
  });

  it('publishes locally only when it is itself among the k closest', () => {
    const key = userKey('alice');
    const near = new IndexNode({ self: contact(key ^ 1n), verify, k: 2 });
    const far = new IndexNode({ self: contact(key ^ (1n << 200n)), verify, k: 2 });
    const found = [contact(key ^ 2n, 2), contact(key ^ 3n, 3)];
    const nearActions = near.publish([record], found, NOW);
    expect(nearActions.map((a) => (a.type === 'store' ? a.to.id : 0n))).toEqual([key ^ 2n]);
    expect(near.store.get('alice', NOW)).toEqual([record]);
    expect(far.publish([record], found, NOW)).toHaveLength(2);
    expect(far.store.get('alice', NOW)).toEqual([]);
  });
});

describe('replication (pure)', () => {
  const key = userKey('alice');
  const record = makeRecord('alice', makeDevice('alice'));
  const setup = (selfXor: bigint, others: bigint[], k = 3): { table: RoutingTable; store: RecordStore; self: ContactInfo } => {
    const self = contact(key ^ selfXor, 99);
    const table = new RoutingTable({ self: self.id, bucketSize: 20 });
    others.forEach((x, i) => table.add(contact(key ^ x, i + 1), NOW));
    const store = new RecordStore({ self: self.id });
    store.put(record, NOW);
    store.entry('alice')!.replicas = replicaSet(key, table, k, self).map((c) => c.id);
    return { table, store, self };
  };

  it.each([
    { name: 'a holder that is one of the two closest pushes to the node that replaces a departed one', k: 3, selfXor: 2n, departed: 1n, pushesTo: [4n] },
    { name: 'the third holder pushes when one of the two closer ones departed', k: 4, selfXor: 3n, departed: 1n, pushesTo: [5n] },
    { name: 'a holder behind two closer holders leaves the push to them', k: 4, selfXor: 3n, departed: 4n, pushesTo: [] },
    { name: 'a departure outside the replica set changes nothing', k: 3, selfXor: 1n, departed: 8n, pushesTo: [] },
  ])('$name', ({ k, selfXor, departed, pushesTo }) => {
    const others = [1n, 2n, 3n, 4n, 5n, 8n].filter((x) => x !== selfXor);
    const { table, store, self } = setup(selfXor, others, k);
    table.remove(key ^ departed);
    const actions = replicationActions(store, table, NOW, { k, self });
    expect(actions.map((a) => (a.type === 'store' ? a.to.id ^ key : -1n))).toEqual(pushesTo);
    // Bookkeeping moved on: a second pass pushes nothing.
    expect(replicationActions(store, table, NOW, { k, self })).toEqual([]);
  });

  it('pushes to a newcomer that joins the replica set', () => {
    const { table, store, self } = setup(1n, [4n, 5n, 6n]);
    table.add(contact(key ^ 2n, 42), NOW);
    const actions = replicationActions(store, table, NOW, { k: 3, self });
    expect(actions).toEqual([{ type: 'store', to: expect.objectContaining({ id: key ^ 2n }), user: 'alice', records: [record] }]);
  });

  it('republishes what nobody stored or republished for an hour', () => {
    const store = new RecordStore();
    store.put(record, NOW);
    expect(republishActions(store, NOW + HOUR - 1, HOUR)).toEqual([]);
    expect(republishActions(store, NOW + HOUR, HOUR)).toEqual([{ type: 'republish', user: 'alice', key }]);
    store.entry('alice')!.receivedAt = NOW + HOUR;
    expect(republishActions(store, NOW + HOUR, HOUR)).toEqual([]);
  });
});

describe('replication on a 40-supernode network (fake clock)', () => {
  const k = 4;
  const build = (): { net: MemNetwork; users: string[]; records: Map<string, LocationRecord> } => {
    const net = new MemNetwork({ verify, k, alpha: 3, bucketSize: 8, now: NOW, seed: 11 });
    for (let i = 0; i < 40; i++) net.addNode();
    const users = Array.from({ length: 40 }, (_, i) => `member${i}`);
    const records = new Map(users.map((u) => [u, makeRecord(u, makeDevice(u))]));
    for (const user of users) net.publish(net.nodes[Math.floor(net.random() * 40)]!, [records.get(user)!]);
    return { net, users, records };
  };
  const settle = (net: MemNetwork): void => {
    // Contacts go stale after 15 min: pings find the dead (two failures remove a contact), then replication runs.
    net.now += 16 * 60_000;
    for (let round = 0; round < 4; round++) {
      net.maintain();
      net.now += 60_000;
    }
  };

  it('hands records over to a joining supernode that becomes one of the k closest', () => {
    const { net, users } = build();
    const newcomers = Array.from({ length: 10 }, () => net.addNode());
    net.maintain();
    let handedOver = 0;
    for (const user of users) {
      const closest = net.closestLive(user, k);
      for (const n of newcomers) {
        if (closest.includes(n)) {
          expect(n.store.get(user, net.now)).toHaveLength(1);
          handedOver++;
        }
      }
    }
    expect(handedOver).toBeGreaterThan(0);
  });

  it('serves the freshest record per device when one holder is stale, and repairs that holder', () => {
    const { net, users } = build();
    const user = users[0]!;
    const desk = makeDevice(user);
    const old = makeRecord(user, desk, { issued: NOW });
    const fresh = makeRecord(user, desk, { issued: NOW + 60_000 });
    net.publish(net.nodes[0]!, [old]);
    net.now = NOW + 120_000;
    net.publish(net.nodes[1]!, [fresh]);
    // One holder missed the refresh (say it was unreachable just then) and still has the old record.
    const holders = net.holders(user);
    expect(holders).toHaveLength(k);
    const stale = holders[0]!;
    stale.store.delete(user);
    stale.handleStore(undefined, { records: [old] }, net.now);
    const originalFirst = net.holders(user)[1]!.store.get(user, net.now).find((r) => r.device.deviceId !== desk.identity.deviceId)!;
    stale.handleStore(undefined, { records: [originalFirst] }, net.now);
    for (const origin of net.live().filter((n) => !holders.includes(n))) {
      const found = net.search(origin, user).records;
      expect(found.map((r) => r.seq).sort()).toEqual([originalFirst.seq, fresh.seq].sort());
    }
    // Read repair brought the stale holder up to date.
    expect(stale.store.get(user, net.now).find((r) => r.device.deviceId === desk.identity.deviceId)?.seq).toBe(fresh.seq);
  });

  it('does not answer from a local copy when it is not one of the k closest (that copy may be stale)', () => {
    const { net, users, records } = build();
    const user = users[1]!;
    const outsider = net.live().find((n) => !net.holders(user).includes(n))!;
    const old = records.get(user)!;
    outsider.handleStore(undefined, { records: [old] }, net.now);
    const device = makeDevice(user);
    net.now += 60_000;
    const fresh = makeRecord(user, device, { issued: net.now });
    net.publish(net.nodes[0]!, [fresh]);
    expect(net.search(outsider, user)).toMatchObject({ records: expect.arrayContaining([fresh, old]) });
    expect(net.search(outsider, user).contacted).toBeGreaterThan(0);
    const holder = net.holders(user).find((n) => n !== outsider)!;
    expect(net.search(holder, user).contacted).toBe(0);
  });

  it('merges device records by freshest seq and repairs exactly what each holder lacked', () => {
    const n = new IndexNode({ self: contact(1n), verify, k: 3 });
    const phone = makeDevice('alice');
    const desk = makeDevice('alice');
    const p1 = makeRecord('alice', phone, { issued: NOW });
    const p2 = makeRecord('alice', phone, { issued: NOW + 1_000 });
    const d1 = makeRecord('alice', desk, { issued: NOW + 500 });
    const values = [{ value: [p1, d1], from: contact(5n, 5) }, { value: [p2], from: contact(6n, 6) }];
    expect(n.searchResult(values).map((r) => r.seq).sort()).toEqual([p2.seq, d1.seq].sort());
    expect(n.readRepair(values)).toEqual([
      { type: 'store', to: contact(5n, 5), user: 'alice', records: [p2] },
      { type: 'store', to: contact(6n, 6), user: 'alice', records: [d1] },
    ]);
    expect(n.readRepair([values[1]!])).toEqual([]);
  });

  it('re-replicates to k live copies after 30% of the supernodes fail at once, and every record is found', () => {
    const { net, users, records } = build();
    const victims = [...net.nodes].sort(() => net.random() - 0.5).slice(0, 12);
    for (const v of victims) net.dead.add(v.id);
    const survivors = users.filter((u) => net.holders(u).length > 0);
    settle(net);
    for (const user of survivors) {
      const holders = net.holders(user);
      expect(holders.length).toBeGreaterThanOrEqual(k);
      for (const n of net.closestLive(user, k)) expect(n.store.get(user, net.now)).toEqual([records.get(user)]);
      for (const origin of net.live()) expect(net.search(origin, user).records).toEqual([records.get(user)]);
    }
    // No live routing table still lists a dead supernode.
    for (const node of net.live()) for (const v of victims) expect(node.table.has(v.id)).toBe(false);
  });

  it('republishes about once per user per hour, not once per holder', () => {
    const { net, users } = build();
    net.now += HOUR;
    const before = net.messages;
    net.maintain();
    const republishers = users.map((u) => net.live().filter((n) => n.store.entry(u)?.republishedAt === net.now).length);
    expect(Math.min(...republishers)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...republishers)).toBeLessThanOrEqual(2);
    expect(net.messages).toBeGreaterThan(before);
  });

  it('forgets every record 72 h after its issue time unless refreshed', () => {
    const { net, users, records } = build();
    const lastIssued = Math.max(...[...records.values()].map((r) => r.issued));
    for (let t = net.now + HOUR; t < lastIssued + RECORD_LIFETIME_MS; t += 6 * HOUR) {
      net.now = t;
      net.maintain();
    }
    expect(users.every((u) => net.search(net.nodes[0]!, u).records.length === 1)).toBe(true);
    net.now = lastIssued + RECORD_LIFETIME_MS;
    net.maintain();
    for (const node of net.nodes) expect(node.store.size).toBe(0);
    expect(net.search(net.nodes[0]!, users[0]!).records).toEqual([]);
  });
});
