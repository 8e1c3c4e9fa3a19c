import { describe, expect, it } from 'vitest';
import { HostCache, HostCacheError, scoreHostCacheEntry } from '../../src/overlay/host-cache.js';
import type { HostCacheEntry } from '../../src/overlay/host-cache.js';
import { HostPortError } from '../../src/util/host-port.js';

const T0 = Date.UTC(2025, 0, 1);
const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

/** A fake clock: tests advance time explicitly. */
function fakeClock(start = T0): { now: () => number; advance: (ms: number) => number } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function addr(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:4000`;
}

function entry(fields: Partial<HostCacheEntry> = {}): HostCacheEntry {
  return { address: '10.0.0.1:4000', altPorts: [], lastSeen: 0, failures: 0, source: 'supernode', addedAt: T0, ...fields };
}

describe('HostCache capacity and eviction', () => {
  it('never holds more than 200 entries, however many are added', () => {
    const clock = fakeClock();
    const cache = new HostCache();
    const statuses = new Map<string, number>();
    for (let i = 1; i <= 500; i += 1) {
      const result = cache.add(addr(i), 'supernode', clock.advance(SECOND));
      statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1);
      expect(cache.size).toBeLessThanOrEqual(200);
    }
    expect(cache.size).toBe(200);
    expect(cache.capacity).toBe(200);
    // Untried newcomers do not push out untried entries: the first 200 stay.
    expect(statuses.get('added')).toBe(200);
    expect(statuses.get('rejected')).toBe(300);
    expect(cache.has(addr(1))).toBe(true);
    expect(cache.has(addr(201))).toBe(false);
  });

  it('accepts 500 newcomers over time as older entries fail', () => {
    const clock = fakeClock();
    const cache = new HostCache();
    for (let i = 1; i <= 500; i += 1) {
      const now = clock.advance(SECOND);
      if (cache.size === 200) {
        const [oldest] = cache.entries();
        if (oldest) cache.recordFailure(oldest.address, now);
      }
      cache.add(addr(i), 'supernode', now);
      expect(cache.size).toBeLessThanOrEqual(200);
    }
    expect(cache.size).toBe(200);
    expect(cache.has(addr(500))).toBe(true);
    expect(cache.has(addr(1))).toBe(false);
  });

  it('capacity is configurable and validated', () => {
    const cache = new HostCache({ capacity: 3 });
    for (let i = 1; i <= 10; i += 1) cache.add(addr(i), 'supernode', T0);
    expect(cache.size).toBe(3);
    expect(() => new HostCache({ capacity: 0 })).toThrow(HostCacheError);
    expect(() => new HostCache({ capacity: 1.5 })).toThrow(HostCacheError);
  });

  it('a gossiped newcomer never evicts a recently good entry', () => {
    const clock = fakeClock();
    const cache = new HostCache({ capacity: 3 });
    for (let i = 1; i <= 3; i += 1) {
      cache.add(addr(i), 'supernode', clock.now());
      cache.recordSuccess(addr(i), 40 + i, clock.now());
    }
    clock.advance(10 * DAY); // even old successes beat an untried newcomer
    const result = cache.add('192.0.2.9:4000', 'supernode', clock.now());
    expect(result).toEqual({ status: 'rejected', address: '192.0.2.9:4000', reason: 'full' });
    expect(cache.entries().map((e) => e.address)).toEqual([addr(1), addr(2), addr(3)]);
  });

  it('evicts the worst-scored entry: failed before untried before good', () => {
    const clock = fakeClock();
    const cache = new HostCache({ capacity: 4 });
    cache.add('10.0.0.1:4000', 'supernode', clock.now()); // will be good
    cache.add('10.0.0.2:4000', 'supernode', clock.now()); // untried
    cache.add('10.0.0.3:4000', 'supernode', clock.now()); // one failure
    cache.add('10.0.0.4:4000', 'supernode', clock.now()); // two failures
    cache.recordSuccess('10.0.0.1:4000', 20, clock.now());
    cache.recordFailure('10.0.0.3:4000', clock.now());
    cache.recordFailure('10.0.0.4:4000', clock.now());
    cache.recordFailure('10.0.0.4:4000', clock.now());

    const first = cache.add('10.0.1.1:4000', 'supernode', clock.advance(SECOND));
    expect(first.status).toBe('added');
    expect(first.status === 'added' && first.evicted?.address).toBe('10.0.0.4:4000');
    const second = cache.add('10.0.1.2:4000', 'mdns', clock.advance(SECOND));
    expect(second.status === 'added' && second.evicted?.address).toBe('10.0.0.3:4000');
    // Now only the good entry and untried ones remain: a newcomer is refused.
    expect(cache.add('10.0.1.3:4000', 'supernode', clock.advance(SECOND)).status).toBe('rejected');
    expect(cache.has('10.0.0.1:4000')).toBe(true);
    expect(cache.has('10.0.0.2:4000')).toBe(true);
  });

  it('evicts an entry that has failed repeatedly even if it once was good', () => {
    const clock = fakeClock();
    const cache = new HostCache({ capacity: 2, repeatedFailures: 3 });
    cache.add('10.0.0.1:4000', 'supernode', clock.now());
    cache.add('10.0.0.2:4000', 'supernode', clock.now());
    cache.recordSuccess('10.0.0.1:4000', 10, clock.now());
    cache.recordSuccess('10.0.0.2:4000', 10, clock.now());
    for (let i = 0; i < 3; i += 1) cache.recordFailure('10.0.0.2:4000', clock.advance(SECOND));
    const result = cache.add('10.0.0.3:4000', 'supernode', clock.now());
    expect(result.status === 'added' && result.evicted?.address).toBe('10.0.0.2:4000');
  });

  it('bootstrap entries are never evicted; a bootstrap newcomer replaces the worst other entry', () => {
    const cache = new HostCache({ capacity: 2 });
    cache.add('10.0.0.1:4000', 'bootstrap', T0);
    cache.add('10.0.0.2:4000', 'supernode', T0);
    cache.recordSuccess('10.0.0.2:4000', 5, T0);
    for (let i = 0; i < 20; i += 1) cache.recordFailure('10.0.0.1:4000', T0 + i);
    expect(cache.has('10.0.0.1:4000')).toBe(true);
    expect(cache.add('10.0.0.3:4000', 'supernode', T0 + DAY).status).toBe('rejected');

    const result = cache.add('10.0.0.4:4000', 'bootstrap', T0 + DAY);
    expect(result.status === 'added' && result.evicted?.address).toBe('10.0.0.2:4000');
    expect(cache.add('10.0.0.5:4000', 'bootstrap', T0 + DAY).status).toBe('rejected');
    expect(cache.entries().map((e) => e.address)).toEqual(['10.0.0.1:4000', '10.0.0.4:4000']);
  });
});

describe('HostCache scoring', () => {
  const now = T0 + 30 * DAY;
  // Best first. Each row: name, lastSeen age (undefined = never), rttMs, failures.
  const table: [string, number | undefined, number | undefined, number][] = [
    ['just now, LAN rtt', 0, 2, 0],
    ['1 h ago, LAN rtt', HOUR, 2, 0],
    ['just now, 80 ms', 0, 80, 0],
    ['1 day ago, 20 ms', DAY, 20, 0],
    ['just now, 600 ms', 0, 600, 0],
    ['5 days ago, 20 ms', 5 * DAY, 20, 0],
    ['never contacted', undefined, undefined, 0],
    ['just now LAN, then 1 failure', 0, 2, 1],
    ['never contacted, 1 failure', undefined, undefined, 1],
    ['1 day ago, 2 failures', DAY, 20, 2],
    ['never contacted, 3 failures', undefined, undefined, 3],
    ['just now LAN, then 10 failures', 0, 2, 10],
  ];

  it('orders entries best first', () => {
    const cache = new HostCache();
    const entries = table.map(([name, age, rttMs, failures], i) => {
      cache.add(addr(i + 1), 'supernode', T0);
      for (let f = 0; f < failures; f += 1) cache.recordFailure(addr(i + 1), T0);
      if (age !== undefined) {
        cache.recordSuccess(addr(i + 1), rttMs, now - age);
        for (let f = 0; f < failures; f += 1) cache.recordFailure(addr(i + 1), now);
      }
      return { name, address: addr(i + 1) };
    });
    const ranked = cache.best(table.length, now).map((e) => entries.find((x) => x.address === e.address)?.name);
    expect(ranked).toEqual(table.map(([name]) => name));
  });

  it.each([
    ['never contacted scores exactly the middle', entry(), 0.5],
    ['just seen, no RTT measured', entry({ lastSeen: T0 }), 0.75],
    ['just seen at the reference RTT', entry({ lastSeen: T0, rttMs: 100 }), 0.75],
    ['just seen at 0 ms', entry({ lastSeen: T0, rttMs: 0 }), 1],
    ['one day old, 0 ms: recency halves', entry({ lastSeen: T0 - DAY, rttMs: 0 }), 0.75],
    ['never contacted, 1 failure', entry({ failures: 1 }), 0.25],
    ['never contacted, 3 failures', entry({ failures: 3 }), 0.0625],
    ['future lastSeen counts as now', entry({ lastSeen: T0 + DAY, rttMs: 0 }), 1],
  ])('%s', (_name, value, expected) => {
    expect(scoreHostCacheEntry(value, T0)).toBeCloseTo(expected, 10);
    expect(new HostCache().score(value, T0)).toBeCloseTo(expected, 10);
  });

  it('stays positive and finite for huge failure counts', () => {
    const score = scoreHostCacheEntry(entry({ failures: 1_000_000 }), T0);
    expect(score).toBeGreaterThan(0);
    expect(Number.isFinite(score)).toBe(true);
  });
});

describe('HostCache bookkeeping', () => {
  it('recordSuccess resets failures, sets lastSeen and smooths RTT with α = 1/8', () => {
    const clock = fakeClock();
    const cache = new HostCache();
    cache.add('10.0.0.1:4000', 'supernode', clock.now());
    cache.recordFailure('10.0.0.1:4000', clock.advance(SECOND));
    cache.recordFailure('10.0.0.1:4000', clock.advance(SECOND));
    expect(cache.get('10.0.0.1:4000')).toMatchObject({ failures: 2, lastSeen: 0 });
    expect(cache.get('10.0.0.1:4000')?.rttMs).toBeUndefined();

    expect(cache.recordSuccess('10.0.0.1:4000', 100, clock.advance(SECOND))).toBe(true);
    expect(cache.get('10.0.0.1:4000')).toMatchObject({ failures: 0, lastSeen: T0 + 3 * SECOND, rttMs: 100 });

    cache.recordSuccess('10.0.0.1:4000', 20, clock.advance(SECOND));
    expect(cache.get('10.0.0.1:4000')?.rttMs).toBeCloseTo(90, 10); // 100 + (20 - 100) / 8
    cache.recordSuccess('10.0.0.1:4000', 170, clock.advance(SECOND));
    expect(cache.get('10.0.0.1:4000')?.rttMs).toBeCloseTo(100, 10); // 90 + (170 - 90) / 8
    cache.recordSuccess('10.0.0.1:4000', undefined, clock.advance(SECOND));
    expect(cache.get('10.0.0.1:4000')).toMatchObject({ rttMs: 100, lastSeen: T0 + 6 * SECOND });
  });

  it('unknown addresses are reported, not added', () => {
    const cache = new HostCache();
    expect(cache.recordSuccess('10.0.0.9:4000', 5, T0)).toBe(false);
    expect(cache.recordFailure('10.0.0.9:4000', T0)).toBe('unknown');
    expect(cache.recordFailure('not an address', T0)).toBe('unknown');
    expect(cache.size).toBe(0);
  });

  it('rejects bad times and RTTs', () => {
    const cache = new HostCache();
    cache.add('10.0.0.1:4000', 'supernode', T0);
    expect(() => cache.recordSuccess('10.0.0.1:4000', -1, T0)).toThrow(HostCacheError);
    expect(() => cache.recordSuccess('10.0.0.1:4000', Number.NaN, T0)).toThrow(HostCacheError);
    expect(() => cache.add('10.0.0.2:4000', 'supernode', Number.NaN)).toThrow(HostCacheError);
    expect(cache.get('10.0.0.1:4000')).toMatchObject({ failures: 0, lastSeen: 0 });
  });

  it('prunes entries with many failures that were not seen for long, never bootstrap ones', () => {
    const clock = fakeClock();
    const cache = new HostCache({ maxFailures: 10, pruneAfterMs: 7 * DAY });
    cache.add('10.0.0.1:4000', 'supernode', clock.now()); // seen recently: kept
    cache.add('10.0.0.2:4000', 'supernode', clock.now()); // seen long ago: pruned
    cache.add('10.0.0.3:4000', 'bootstrap', clock.now()); // bootstrap: kept
    cache.add('10.0.0.4:4000', 'supernode', clock.now()); // never seen, added long ago: pruned
    cache.recordSuccess('10.0.0.2:4000', 10, clock.now());
    clock.advance(8 * DAY);
    cache.recordSuccess('10.0.0.1:4000', 10, clock.now());
    const results = new Map<string, string[]>();
    for (let i = 0; i < 11; i += 1) {
      for (const a of ['10.0.0.1:4000', '10.0.0.2:4000', '10.0.0.3:4000', '10.0.0.4:4000']) {
        const list = results.get(a) ?? [];
        list.push(cache.recordFailure(a, clock.advance(SECOND)));
        results.set(a, list);
      }
    }
    expect(results.get('10.0.0.2:4000')?.at(-1)).toBe('pruned');
    expect(results.get('10.0.0.2:4000')?.slice(0, 10).every((r) => r === 'recorded')).toBe(true);
    expect(results.get('10.0.0.4:4000')?.at(-1)).toBe('pruned');
    expect(cache.entries().map((e) => e.address)).toEqual(['10.0.0.1:4000', '10.0.0.3:4000']);
    expect(cache.get('10.0.0.1:4000')?.failures).toBe(11);

    expect(cache.prune(clock.advance(7 * DAY)).map((e) => e.address)).toEqual(['10.0.0.1:4000']);
    expect(cache.entries().map((e) => e.address)).toEqual(['10.0.0.3:4000']);
  });

  it('remove() takes any entry, by any spelling of its address', () => {
    const cache = new HostCache();
    cache.add('[0:0:0:0:0:0:0:1]:4000', 'bootstrap', T0);
    expect(cache.has('[::1]:4000')).toBe(true);
    expect(cache.remove('[::1]:4000')).toBe(true);
    expect(cache.remove('[::1]:4000')).toBe(false);
    expect(cache.remove('garbage')).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('entries() and best() return copies', () => {
    const cache = new HostCache();
    cache.add({ address: '10.0.0.1:4000', altPorts: [443] }, 'supernode', T0);
    const [copy] = cache.entries();
    (copy?.altPorts as number[]).push(80);
    (copy as { failures: number }).failures = 99;
    expect(cache.get('10.0.0.1:4000')).toMatchObject({ altPorts: [443], failures: 0 });
  });
});

describe('HostCache add and merge', () => {
  it('normalizes the address and drops the primary port from altPorts', () => {
    const cache = new HostCache();
    const result = cache.add({ address: 'SN1.Example.org:4000', altPorts: [4000, 443, 80], udpPort: 4000, publicKey: KEY_A }, 'self', T0);
    expect(result).toEqual({ status: 'added', address: 'sn1.example.org:4000' });
    expect(cache.get('sn1.example.org:4000')).toEqual({
      address: 'sn1.example.org:4000', altPorts: [443, 80], udpPort: 4000, publicKey: KEY_A,
      lastSeen: 0, failures: 0, source: 'self', addedAt: T0,
    });
  });

  it('gossip fills gaps but does not overwrite what the supernode said of itself', () => {
    const cache = new HostCache();
    cache.add({ address: '10.0.0.1:4000', altPorts: [443], udpPort: 4001, publicKey: KEY_A }, 'self', T0);
    cache.recordSuccess('10.0.0.1:4000', 30, T0);
    const result = cache.add({ address: '10.0.0.1:4000', altPorts: [80], udpPort: 5000, publicKey: KEY_B }, 'supernode', T0 + DAY);
    expect(result).toEqual({ status: 'updated', address: '10.0.0.1:4000' });
    expect(cache.get('10.0.0.1:4000')).toEqual({
      address: '10.0.0.1:4000', altPorts: [443, 80], udpPort: 4001, publicKey: KEY_A,
      lastSeen: T0, rttMs: 30, failures: 0, source: 'self', addedAt: T0,
    });
    // The supernode itself is authoritative for its ports and key.
    cache.add({ address: '10.0.0.1:4000', altPorts: [8443], udpPort: 4002, publicKey: KEY_B }, 'self', T0 + DAY);
    expect(cache.get('10.0.0.1:4000')).toMatchObject({ altPorts: [8443], udpPort: 4002, publicKey: KEY_B });
  });

  it('gossip fills an unknown key and upgrades to a more trusted source only', () => {
    const cache = new HostCache();
    cache.add('10.0.0.1:4000', 'supernode', T0);
    cache.add({ address: '10.0.0.1:4000', publicKey: KEY_A, udpPort: 4000 }, 'supernode', T0);
    expect(cache.get('10.0.0.1:4000')).toMatchObject({ publicKey: KEY_A, udpPort: 4000, source: 'supernode' });
    cache.add('10.0.0.1:4000', 'mdns', T0);
    expect(cache.get('10.0.0.1:4000')?.source).toBe('mdns');
    cache.add('10.0.0.1:4000', 'supernode', T0);
    expect(cache.get('10.0.0.1:4000')?.source).toBe('mdns');
  });

  it.each([
    [{ address: '10.0.0.1' }, HostPortError],
    [{ address: '10.0.0.1:4000', altPorts: [0] }, HostCacheError],
    [{ address: '10.0.0.1:4000', altPorts: [443, 443] }, HostCacheError],
    [{ address: '10.0.0.1:4000', altPorts: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, HostCacheError],
    [{ address: '10.0.0.1:4000', udpPort: 70000 }, HostCacheError],
    [{ address: '10.0.0.1:4000', publicKey: 'not base64' }, HostCacheError],
    [{ address: '10.0.0.1:4000', publicKey: Buffer.alloc(31).toString('base64') }, HostCacheError],
  ])('rejects %j without changing anything', (input, errorClass) => {
    const cache = new HostCache();
    cache.add('10.0.0.1:4000', 'supernode', T0);
    expect(() => cache.add(input, 'supernode', T0 + 1)).toThrow(errorClass);
    expect(cache.entries()).toEqual([entry({ address: '10.0.0.1:4000' })]);
  });

  it('rejects an unknown source', () => {
    const cache = new HostCache();
    expect(() => cache.add('10.0.0.1:4000', 'dht' as never, T0)).toThrow(expect.objectContaining({ code: 'ERR_HOST_CACHE_INVALID' }));
  });
});

describe('HostCache.best', () => {
  it('returns up to n entries best first, skipping excluded addresses in any spelling', () => {
    const cache = new HostCache();
    for (let i = 1; i <= 5; i += 1) {
      cache.add(addr(i), 'supernode', T0);
      cache.recordSuccess(addr(i), i * 10, T0);
    }
    expect(cache.best(3, T0).map((e) => e.address)).toEqual([addr(1), addr(2), addr(3)]);
    expect(cache.best(3, T0, { exclude: [addr(1), '010.0.0.3:4000', 'garbage', addr(2).toUpperCase()] }).map((e) => e.address))
      .toEqual([addr(3), addr(4), addr(5)]);
    expect(cache.best(10, T0, { exclude: new Set([addr(2), addr(4)]) }).map((e) => e.address)).toEqual([addr(1), addr(3), addr(5)]);
    expect(cache.best(0, T0)).toEqual([]);
    expect(() => cache.best(-1, T0)).toThrow(HostCacheError);
  });

  it('breaks ties between untried entries by source trust', () => {
    const cache = new HostCache();
    cache.add('10.0.0.1:4000', 'supernode', T0);
    cache.add('10.0.0.2:4000', 'mdns', T0);
    cache.add('10.0.0.3:4000', 'bootstrap', T0);
    cache.add('10.0.0.4:4000', 'self', T0);
    expect(cache.best(4, T0).map((e) => e.source)).toEqual(['bootstrap', 'self', 'mdns', 'supernode']);
  });
});

describe('HostCache.seed', () => {
  it('fills an empty cache from the bootstrap list', () => {
    const cache = new HostCache();
    expect(cache.seed(['sn1.example.org:4000', '[::1]:4000', 'SN1.example.org:4000'], T0)).toEqual(['sn1.example.org:4000', '[::1]:4000']);
    expect(cache.entries().map((e) => [e.address, e.source, e.addedAt])).toEqual([
      ['sn1.example.org:4000', 'bootstrap', T0],
      ['[::1]:4000', 'bootstrap', T0],
    ]);
  });

  it('adds only missing addresses, relabels known ones and releases dropped ones', () => {
    const cache = new HostCache();
    cache.seed(['10.0.0.1:4000', '10.0.0.2:4000'], T0);
    cache.add('10.0.0.3:4000', 'supernode', T0);
    cache.recordSuccess('10.0.0.3:4000', 12, T0);
    expect(cache.seed(['10.0.0.2:4000', '10.0.0.3:4000', '10.0.0.4:4000'], T0 + DAY)).toEqual(['10.0.0.4:4000']);
    expect(cache.entries().map((e) => [e.address, e.source])).toEqual([
      ['10.0.0.1:4000', 'supernode'],
      ['10.0.0.2:4000', 'bootstrap'],
      ['10.0.0.3:4000', 'bootstrap'],
      ['10.0.0.4:4000', 'bootstrap'],
    ]);
    expect(cache.get('10.0.0.3:4000')).toMatchObject({ lastSeen: T0, rttMs: 12 });
    expect(cache.seed(['10.0.0.2:4000', '10.0.0.3:4000', '10.0.0.4:4000'], T0 + DAY)).toEqual([]);
  });

  it('gets bootstrap entries into a full cache', () => {
    const cache = new HostCache({ capacity: 2 });
    for (let i = 1; i <= 2; i += 1) {
      cache.add(addr(i), 'supernode', T0);
      cache.recordSuccess(addr(i), 10, T0);
    }
    expect(cache.seed(['192.0.2.1:4000'], T0)).toEqual(['192.0.2.1:4000']);
    expect(cache.size).toBe(2);
    expect(cache.has('192.0.2.1:4000')).toBe(true);
  });

  it('throws before changing anything when an address is invalid', () => {
    const cache = new HostCache();
    expect(() => cache.seed(['10.0.0.1:4000', 'nope', '10.0.0.2'], T0)).toThrow(/"nope", "10\.0\.0\.2"/);
    expect(cache.size).toBe(0);
  });
});

describe('HostCache JSON', () => {
  function populated(): HostCache {
    const cache = new HostCache();
    cache.add({ address: '10.0.0.1:4000', altPorts: [443, 80], udpPort: 4000, publicKey: KEY_A }, 'self', T0);
    cache.recordSuccess('10.0.0.1:4000', 33.5, T0 + SECOND);
    cache.add('[2001:db8::1]:4000', 'bootstrap', T0);
    cache.recordFailure('[2001:db8::1]:4000', T0 + 2 * SECOND);
    cache.add('phone-box.local:5000', 'mdns', T0 + 3 * SECOND);
    return cache;
  }

  it('round-trips through toJSON / JSON text / fromJSON', () => {
    const cache = populated();
    const json = cache.toJSON();
    expect(json.version).toBe(1);
    const { cache: restored, warnings } = HostCache.fromJSON(JSON.parse(JSON.stringify(json)), { now: T0 });
    expect(warnings).toEqual([]);
    expect(restored.entries()).toEqual(cache.entries());
    expect(restored.toJSON()).toEqual(json);
  });

  it('drops malformed entries with a reason and keeps the rest', () => {
    const good = populated().toJSON().entries;
    const value = {
      version: 1,
      entries: [
        good[0],
        'nonsense',
        { ...good[1], address: 'no-port' },
        { ...good[1], udpPort: 0 },
        { ...good[1], altPorts: [443, 443] },
        { ...good[1], publicKey: 'AAAA' },
        { ...good[1], lastSeen: -5 },
        { ...good[1], failures: 1.5 },
        { ...good[1], source: 'dht' },
        { ...good[1], rttMs: 'fast' },
        { ...good[1], addedAt: undefined },
        { ...good[1], extra: true },
        null,
        good[2],
        { ...good[0], address: '10.0.0.1:4000' },
      ],
    };
    const { cache, warnings } = HostCache.fromJSON(value, { now: T0 });
    expect(cache.entries()).toEqual([good[0], good[2]]);
    expect(warnings).toEqual([
      'entries[1]: expected an object, got "nonsense"; entry dropped',
      'entries[2]: field "address": expected "host:port", got "no-port"; entry dropped',
      'entries[3]: field "udpPort": expected an integer 1..65535, got 0; entry dropped',
      'entries[4]: field "altPorts": duplicate ports; entry dropped',
      'entries[5]: field "publicKey": expected 32 bytes in base64, got "AAAA"; entry dropped',
      'entries[6]: field "lastSeen": expected epoch ms (integer >= 0), got -5; entry dropped',
      'entries[7]: field "failures": expected an integer >= 0, got 1.5; entry dropped',
      'entries[8]: field "source": expected one of bootstrap, supernode, mdns, self, got "dht"; entry dropped',
      'entries[9]: field "rttMs": expected a number >= 0, got "fast"; entry dropped',
      'entries[10]: field "addedAt": expected epoch ms (integer >= 0), got nothing; entry dropped',
      'entries[11]: unknown field "extra"; entry dropped',
      'entries[12]: expected an object, got null; entry dropped',
      'entries[14]: duplicate address "10.0.0.1:4000"; entry dropped',
    ]);
  });

  it.each([
    [null, 'ERR_HOST_CACHE_FORMAT'],
    [[], 'ERR_HOST_CACHE_FORMAT'],
    ['{}', 'ERR_HOST_CACHE_FORMAT'],
    [{ entries: [] }, 'ERR_HOST_CACHE_FORMAT'],
    [{ version: '1', entries: [] }, 'ERR_HOST_CACHE_FORMAT'],
    [{ version: 2, entries: [] }, 'ERR_HOST_CACHE_VERSION'],
    [{ version: 1, entries: {} }, 'ERR_HOST_CACHE_FORMAT'],
    [{ version: 1, entries: [], hosts: [] }, 'ERR_HOST_CACHE_FORMAT'],
  ])('throws a typed error for the wrong shape %j', (value, code) => {
    expect(() => HostCache.fromJSON(value, { now: T0 })).toThrow(expect.objectContaining({ name: 'HostCacheError', code }));
  });

  it('keeps the best entries (and every bootstrap one) when the file exceeds the capacity', () => {
    const big = new HostCache({ capacity: 10 });
    for (let i = 1; i <= 10; i += 1) big.add(addr(i), i === 10 ? 'bootstrap' : 'supernode', T0);
    for (let i = 1; i <= 10; i += 1) if (i % 2 === 0) big.recordSuccess(addr(i), i, T0);
    big.recordFailure(addr(10), T0);
    const { cache, warnings } = HostCache.fromJSON(big.toJSON(), { now: T0, capacity: 5 });
    expect(cache.entries().map((e) => e.address)).toEqual([addr(2), addr(4), addr(6), addr(8), addr(10)]);
    expect(warnings).toEqual(['5 entries over capacity 5 dropped (lowest scores)']);
  });
});
