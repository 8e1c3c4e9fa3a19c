import { describe, expect, it } from 'vitest';
import { Lookup } from '../../../src/overlay/index/lookup.js';
import { userKey } from '../../../src/overlay/index/node-id.js';
import type { NodeId } from '../../../src/overlay/index/node-id.js';
import { recordVerifier } from '../../../src/overlay/index/record.js';
import type { ContactInfo } from '../../../src/overlay/index/routing-table.js';
import { loginServer, makeDevice, makeRecord, NETWORK, T0 } from './fixtures.js';
import { MemNetwork } from './mem-network.js';

const c = (id: number): ContactInfo => ({ id: BigInt(id), address: `10.0.0.${id}:4000` });
const ids = (list: ContactInfo[]): number[] => list.map((x) => Number(x.id));

describe('lookup state machine', () => {
  it('asks the closest seeds first, never more than alpha at once', () => {
    const lookup = new Lookup(0n, { seeds: [c(9), c(1), c(5), c(3), c(7)], alpha: 2, k: 3 });
    expect(ids(lookup.next(T0))).toEqual([1, 3]);
    expect(lookup.next(T0)).toEqual([]);
    expect(lookup.inFlight).toBe(2);
    lookup.onResponse(1n, { closer: [c(2)] });
    // 2 is now among the closest not yet asked.
    expect(ids(lookup.next(T0))).toEqual([2]);
    expect(lookup.inFlight).toBe(2);
  });

  it.each([
    {
      name: 'FIND_NODE ends when the k closest have answered',
      mode: 'node' as const,
      script: [['answer', 1, [2, 4]], ['answer', 2, []], ['answer', 3, []]],
      done: true,
      closest: [1, 2, 3],
    },
    {
      name: 'a failed contact is replaced by the next closest',
      mode: 'node' as const,
      script: [['fail', 1, []], ['answer', 3, []], ['answer', 5, []], ['answer', 7, []]],
      done: true,
      closest: [3, 5, 7],
    },
    {
      name: 'FIND_VALUE ends at the first value',
      mode: 'value' as const,
      script: [['answer', 1, [2]], ['value', 3, []]],
      done: true,
      closest: [1, 3],
    },
    {
      name: 'FIND_VALUE without any value ends like FIND_NODE',
      mode: 'value' as const,
      script: [['answer', 1, []], ['answer', 3, []], ['answer', 5, []]],
      done: true,
      closest: [1, 3, 5],
    },
    {
      name: 'answers from contacts not asked are ignored',
      mode: 'node' as const,
      script: [['answer', 9, [2]], ['answer', 1, []]],
      done: false,
      closest: [1],
    },
  ])('$name', ({ mode, script, done, closest }) => {
    const lookup = new Lookup<string>(0n, { seeds: [c(1), c(3), c(5), c(7), c(9)], alpha: 3, k: 3, mode });
    let now = T0;
    lookup.next(now);
    for (const [what, id, closer] of script as Array<[string, number, number[]]>) {
      now += 10;
      if (what === 'fail') lookup.onFailure(BigInt(id));
      else lookup.onResponse(BigInt(id), { closer: closer.map(c), ...(what === 'value' ? { value: `found at ${id}` } : {}) });
      lookup.next(now);
    }
    expect(lookup.done).toBe(done);
    expect(ids(lookup.result.closest)).toEqual(closest);
    if (mode === 'value' && script.some(([w]) => w === 'value')) expect(lookup.result.value).toBe('found at 3');
  });

  it('with a quorum, FIND_VALUE collects that many values before it ends', () => {
    const lookup = new Lookup<string>(0n, { seeds: [c(1), c(3), c(5), c(7)], alpha: 2, k: 3, mode: 'value', quorum: 2 });
    lookup.next(T0);
    lookup.onResponse(1n, { closer: [], value: 'old' });
    expect(lookup.done).toBe(false);
    expect(ids(lookup.next(T0))).toEqual([5]);
    lookup.onResponse(3n, { closer: [] });
    lookup.onResponse(5n, { closer: [], value: 'new' });
    expect(lookup.done).toBe(true);
    expect(lookup.result.values.map((v) => [v.value, Number(v.from.id)])).toEqual([['old', 1], ['new', 5]]);
    expect(lookup.result.value).toBe('old');
  });

  it('with a quorum, FIND_VALUE still ends when the k closest answered with fewer values', () => {
    const lookup = new Lookup<string>(0n, { seeds: [c(1), c(3), c(5), c(7)], alpha: 3, k: 3, mode: 'value', quorum: 2 });
    lookup.next(T0);
    lookup.onResponse(1n, { closer: [], value: 'only' });
    lookup.onResponse(3n, { closer: [] });
    lookup.onResponse(5n, { closer: [] });
    expect(lookup.done).toBe(true);
    expect(lookup.result.values).toHaveLength(1);
  });

  it('times requests out on the fake clock', () => {
    const lookup = new Lookup(0n, { seeds: [c(1), c(2)], alpha: 2, k: 2, timeoutMs: 1_000 });
    lookup.next(T0);
    expect(lookup.deadline()).toBe(T0 + 1_000);
    expect(lookup.checkTimeouts(T0 + 999)).toEqual([]);
    lookup.onResponse(2n, { closer: [] });
    expect(ids(lookup.checkTimeouts(T0 + 1_000))).toEqual([1]);
    // A late answer changes nothing.
    lookup.onResponse(1n, { closer: [c(0)] });
    expect(lookup.done).toBe(true);
    expect(lookup.result).toMatchObject({ contacted: 2, responded: 1, failed: 1 });
    expect(ids(lookup.result.closest)).toEqual([2]);
  });

  it('never asks itself, asks each contact once, and stops at maxContacts', () => {
    const lookup = new Lookup(0n, { seeds: [c(4), c(5)], self: 4n, alpha: 1, k: 20, maxContacts: 3 });
    let asked: number[] = [];
    for (let round = 0; round < 10 && !lookup.done; round++) {
      const next = lookup.next(T0);
      asked = asked.concat(ids(next));
      for (const to of next) lookup.onResponse(to.id, { closer: [c(4), c(5), c(10 + round), c(11 + round)] });
    }
    expect(asked).not.toContain(4);
    expect(new Set(asked).size).toBe(asked.length);
    expect(asked).toHaveLength(3);
    expect(lookup.done).toBe(true);
  });

  it('is done at once without seeds, and counts the bytes it is told of', () => {
    const lookup = new Lookup(0n, { seeds: [] });
    expect(lookup.done).toBe(true);
    lookup.recordBytes(100, 250);
    expect(lookup.result).toMatchObject({ contacted: 0, bytesSent: 100, bytesReceived: 250 });
  });
});

describe('lookups on a 50-supernode network', () => {
  const verify = recordVerifier({ loginServerKey: loginServer.publicKey, network: NETWORK });
  const k = 4;
  const alpha = 3;
  const net = new MemNetwork({ verify, k, alpha, bucketSize: 8, now: T0 + 120_000, seed: 7 });
  for (let i = 0; i < 50; i++) net.addNode();
  const users = Array.from({ length: 30 }, (_, i) => `user${i}`);
  const devices = new Map(users.map((u) => [u, makeDevice(u)]));
  for (const user of users) {
    const origin = net.nodes[Math.floor(net.random() * net.nodes.length)]!;
    net.publish(origin, [makeRecord(user, devices.get(user)!)]);
  }

  it('fills routing tables through joins', () => {
    for (const node of net.nodes) expect(node.table.size).toBeGreaterThanOrEqual(8);
  });

  it('stores each record on the k supernodes closest to the user key', () => {
    for (const user of users) {
      expect(net.holders(user).map((n) => n.id).sort()).toEqual(net.closestLive(user, k).map((n) => n.id).sort());
    }
  });

  it('FIND_NODE finds the true k closest supernodes', () => {
    for (let i = 0; i < 20; i++) {
      const target: NodeId = userKey(`target${i}`);
      const origin = net.nodes[i]!;
      const lookup = net.runLookup(origin, origin.findNode(target, net.now));
      const truth = net.nodes.filter((n) => n !== origin).sort((a, b) => ((a.id ^ target) < (b.id ^ target) ? -1 : 1)).slice(0, k);
      expect(lookup.result.closest.map((x) => x.id)).toEqual(truth.map((n) => n.id));
    }
  });

  it('finds every stored value from every supernode, with at most alpha requests in flight', () => {
    net.maxInFlight = 0;
    let found = 0;
    for (const origin of net.nodes) {
      for (const user of users) {
        const { records } = net.search(origin, user);
        expect(records.map((r) => r.device.deviceId)).toEqual([devices.get(user)!.identity.deviceId]);
        found++;
      }
    }
    expect(found).toBe(50 * users.length);
    expect(net.maxInFlight).toBe(alpha);
  });

  it('answers no value for a user nobody published', () => {
    const { records, contacted } = net.search(net.nodes[0]!, 'nobody-here');
    expect(records).toEqual([]);
    expect(contacted).toBeGreaterThanOrEqual(k);
  });
});
