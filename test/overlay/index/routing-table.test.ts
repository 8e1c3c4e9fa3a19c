import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bucketIndex, idFromBytes } from '../../../src/overlay/index/node-id.js';
import type { NodeId } from '../../../src/overlay/index/node-id.js';
import { RoutingTable } from '../../../src/overlay/index/routing-table.js';
import type { ContactInfo } from '../../../src/overlay/index/routing-table.js';

const T0 = 1_800_000_000_000;
const self = 0n;
/** A contact in bucket `bucket` of node 0 (its top bit is `bucket`), told apart by `n`. */
const inBucket = (bucket: number, n: number): ContactInfo => ({ id: (1n << BigInt(bucket)) | BigInt(n), address: `10.0.${bucket}.${n}:4000` });
const ids = (list: Array<{ id: NodeId }>): NodeId[] => list.map((c) => c.id);

describe('routing table', () => {
  it.each([
    { id: 1n, bucket: 0 },
    { id: 2n, bucket: 1 },
    { id: 3n, bucket: 1 },
    { id: 4n, bucket: 2 },
    { id: 7n, bucket: 2 },
    { id: 1n << 255n, bucket: 255 },
    { id: (1n << 256n) - 1n, bucket: 255 },
    { id: (1n << 128n) + 12345n, bucket: 128 },
  ])('places id $id in bucket $bucket', ({ id, bucket }) => {
    const table = new RoutingTable({ self });
    expect(table.add({ id, address: 'h:1' }, T0).status).toBe('added');
    expect(table.buckets()).toEqual([{ index: bucket, contacts: [expect.objectContaining({ id })], replacements: [] }]);
  });

  it('ignores its own id', () => {
    const table = new RoutingTable({ self: 42n });
    expect(table.add({ id: 42n, address: 'h:1' }, T0)).toEqual({ status: 'self' });
    expect(table.size).toBe(0);
  });

  it('keeps each bucket in least-recently-seen order', () => {
    const table = new RoutingTable({ self, bucketSize: 3 });
    const [a, b, c] = [inBucket(10, 1), inBucket(10, 2), inBucket(10, 3)];
    table.add(a, T0);
    table.add(b, T0 + 1);
    table.add(c, T0 + 2);
    expect(ids(table.buckets()[0]!.contacts)).toEqual([a.id, b.id, c.id]);
    // Hearing from a again (a request, or add() of a known contact) moves it to the tail.
    expect(table.seen(a.id, T0 + 3)).toBe(true);
    expect(ids(table.buckets()[0]!.contacts)).toEqual([b.id, c.id, a.id]);
    expect(table.add({ ...b, address: '10.9.9.9:5000' }, T0 + 4).status).toBe('updated');
    expect(ids(table.buckets()[0]!.contacts)).toEqual([c.id, a.id, b.id]);
    expect(table.get(b.id)).toMatchObject({ address: '10.9.9.9:5000', lastSeen: T0 + 4, failures: 0 });
    expect(table.seen(inBucket(10, 9).id, T0)).toBe(false);
  });

  describe('full bucket: ping the oldest before evicting', () => {
    const full = (): RoutingTable => {
      const table = new RoutingTable({ self, bucketSize: 2, pingTimeoutMs: 5_000, goodForMs: 5 });
      table.add(inBucket(20, 1), T0);
      table.add(inBucket(20, 2), T0 + 1);
      return table;
    };

    it.each([
      {
        name: 'oldest answers: it stays (moved to the tail), the newcomer waits as a replacement',
        outcome: (t: RoutingTable) => t.seen(inBucket(20, 1).id, T0 + 20),
        contacts: [inBucket(20, 2).id, inBucket(20, 1).id],
        replacements: [inBucket(20, 3).id],
      },
      {
        name: 'oldest fails: it is evicted and the newcomer takes its place',
        outcome: (t: RoutingTable) => t.failed(inBucket(20, 1).id, T0 + 20),
        contacts: [inBucket(20, 2).id, inBucket(20, 3).id],
        replacements: [],
      },
    ])('$name', ({ outcome, contacts, replacements }) => {
      const table = full();
      const result = table.add(inBucket(20, 3), T0 + 10);
      expect(result).toEqual({ status: 'pending', ping: expect.objectContaining({ id: inBucket(20, 1).id }) });
      expect(table.has(inBucket(20, 3).id)).toBe(false);
      outcome(table);
      expect(ids(table.buckets()[0]!.contacts)).toEqual(contacts);
      expect(ids(table.buckets()[0]!.replacements)).toEqual(replacements);
    });

    it('does not ping again while a ping is outstanding, but does after the ping timeout', () => {
      const table = full();
      expect(table.add(inBucket(20, 3), T0 + 10).status).toBe('pending');
      expect(table.add(inBucket(20, 4), T0 + 11)).toEqual({ status: 'queued' });
      expect(table.add(inBucket(20, 5), T0 + 10 + 5_000)).toEqual({ status: 'pending', ping: expect.objectContaining({ id: inBucket(20, 1).id }) });
      // Newest replacement first, and the freshest one is promoted on eviction.
      expect(ids(table.buckets()[0]!.replacements)).toEqual([inBucket(20, 5).id, inBucket(20, 4).id, inBucket(20, 3).id].slice(0, 2));
      expect(table.failed(inBucket(20, 1).id, T0 + 20_000).promoted?.id).toBe(inBucket(20, 5).id);
    });

    it('needs no ping while the oldest was heard from within goodForMs', () => {
      const table = full();
      expect(table.add(inBucket(20, 3), T0 + 4)).toEqual({ status: 'queued' });
      expect(ids(table.buckets()[0]!.replacements)).toEqual([inBucket(20, 3).id]);
      expect(table.add(inBucket(20, 4), T0 + 5).status).toBe('pending');
    });

    it('does not touch other buckets', () => {
      const table = full();
      expect(table.add(inBucket(21, 1), T0 + 10).status).toBe('added');
      expect(table.size).toBe(3);
    });
  });

  it.each([
    { maxFailures: 1, failuresToRemove: 1 },
    { maxFailures: 2, failuresToRemove: 2 },
    { maxFailures: 3, failuresToRemove: 3 },
  ])('removes a contact after $maxFailures consecutive failures when no replacement waits', ({ maxFailures, failuresToRemove }) => {
    const table = new RoutingTable({ self, maxFailures });
    const a = inBucket(30, 1);
    table.add(a, T0);
    for (let i = 1; i < failuresToRemove; i++) {
      expect(table.failed(a.id, T0 + i)).toEqual({});
      expect(table.get(a.id)?.failures).toBe(i);
    }
    expect(table.failed(a.id, T0 + 10).removed?.id).toBe(a.id);
    expect(table.has(a.id)).toBe(false);
  });

  it('clears failures when the contact is heard from, and hides failing contacts from closest()', () => {
    const table = new RoutingTable({ self, maxFailures: 3 });
    const a = inBucket(5, 1);
    const b = inBucket(6, 1);
    table.add(a, T0);
    table.add(b, T0);
    table.failed(a.id, T0 + 1);
    expect(ids(table.closest(0n, 5))).toEqual([b.id]);
    expect(ids(table.closest(0n, 5, { includeFailing: true }))).toEqual([a.id, b.id]);
    expect(ids(table.staleContacts(T0 + 2, 60_000))).toEqual([a.id]);
    table.seen(a.id, T0 + 2);
    expect(table.get(a.id)?.failures).toBe(0);
    expect(ids(table.closest(0n, 5))).toEqual([a.id, b.id]);
  });

  it('closest() matches a brute-force sort by XOR distance', () => {
    const random = (): NodeId => idFromBytes(randomBytes(32));
    const me = random();
    const table = new RoutingTable({ self: me, bucketSize: 4 });
    const all: NodeId[] = [];
    for (let i = 0; i < 2_000; i++) {
      const id = random();
      if (table.add({ id, address: 'h:1' }, T0).status === 'added') all.push(id);
    }
    // Also ids near self, so that low buckets are populated.
    for (let bit = 0; bit < 40; bit++) {
      const id = me ^ (1n << BigInt(bit));
      if (table.add({ id, address: 'h:1' }, T0).status === 'added') all.push(id);
    }
    expect(table.size).toBe(all.length);
    for (const target of [me, random(), random(), me ^ 1n, me ^ (1n << 255n), all[3]!]) {
      for (const n of [1, 3, 8, 20, 1_000]) {
        const expected = [...all].sort((a, b) => ((a ^ target) < (b ^ target) ? -1 : 1)).slice(0, n);
        expect(ids(table.closest(target, n))).toEqual(expected);
      }
    }
    expect(table.closest(me, 0)).toEqual([]);
    expect(ids(table.closest(all[0]!, 2, { exclude: all[0]! }))).not.toContain(all[0]);
  });

  it('gives refresh targets for idle buckets and join targets beyond the nearest neighbour', () => {
    const table = new RoutingTable({ self });
    table.add(inBucket(250, 1), T0);
    table.add(inBucket(200, 1), T0);
    expect(table.refreshTargets(T0 + 1_000, 3_600_000)).toEqual([]);
    table.touch(inBucket(250, 7).id, T0 + 3_000_000);
    const due = table.refreshTargets(T0 + 3_600_000, 3_600_000);
    expect(due.map((id) => bucketIndex(self, id))).toEqual([200]);
    expect(table.joinRefreshTargets().map((id) => bucketIndex(self, id))).toEqual(Array.from({ length: 55 }, (_, i) => 201 + i));
  });
});
