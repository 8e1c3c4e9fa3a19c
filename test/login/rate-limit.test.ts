import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { addressKey, LoginRateLimiter, userKey } from '../../src/login/rate-limit.js';
import type { RateLimitDecision, RateLimitOptions } from '../../src/login/rate-limit.js';

const S = 1000;
const MIN = 60 * S;

type Step =
  | { at: number; fail: [string, string]; times?: number }
  | { at: number; ok: [string, string] }
  | { at: number; check: [string, string]; expect: RateLimitDecision };

const allowed: RateLimitDecision = { allowed: true };
const refused = (reason: 'user' | 'address', retryAfterMs: number): RateLimitDecision => ({ allowed: false, reason, retryAfterMs });

function run(steps: Step[], options: Partial<RateLimitOptions> = {}): LoginRateLimiter {
  const limiter = new LoginRateLimiter(options);
  steps.forEach((step, i) => {
    if ('fail' in step) {
      for (let n = 0; n < (step.times ?? 1); n++) limiter.recordFailure(step.fail[0], step.fail[1], step.at);
    } else if ('ok' in step) {
      limiter.recordSuccess(step.ok[0], step.ok[1], step.at);
    } else {
      expect(limiter.check(step.check[0], step.check[1], step.at), `step ${i} at ${step.at}`).toEqual(step.expect);
    }
  });
  return limiter;
}

const A = '192.0.2.1';
const B = '198.51.100.2';

describe('LoginRateLimiter', () => {
  const cases: [string, Step[]][] = [
    ['allows a fresh user', [{ at: 0, check: ['alice', A], expect: allowed }]],
    ['blocks a user after 5 failures in 5 minutes, for 1 minute', [
      { at: 0, fail: ['alice', A], times: 4 },
      { at: 1 * S, check: ['alice', A], expect: allowed },
      { at: 2 * S, fail: ['alice', A] },
      { at: 2 * S, check: ['alice', A], expect: refused('user', MIN) },
      { at: 3 * S, check: ['alice', B], expect: refused('user', MIN - S) },
      { at: 3 * S, check: ['bob', A], expect: allowed },
      { at: 2 * S + MIN - 1, check: ['alice', A], expect: refused('user', 1) },
      { at: 2 * S + MIN, check: ['alice', A], expect: allowed },
    ]],
    ['treats case and width variants of a name as the same user', [
      { at: 0, fail: ['alice', A], times: 2 },
      { at: 0, fail: ['ALICE', A], times: 2 },
      { at: 0, fail: [' ａｌｉｃｅ ', B] },
      { at: 0, check: ['Alice', A], expect: refused('user', MIN) },
    ]],
    ['counts failures in a window opened by the first failure', [
      { at: 0, fail: ['alice', A], times: 4 },
      { at: 5 * MIN, fail: ['alice', A], times: 4 },
      { at: 5 * MIN, check: ['alice', A], expect: allowed },
      { at: 6 * MIN, fail: ['alice', A] },
      { at: 6 * MIN, check: ['alice', A], expect: refused('user', MIN) },
    ]],
    ['blocks an address after 20 failures over any names', [
      ...Array.from({ length: 19 }, (_, i): Step => ({ at: i * S, fail: [`user${i}`, A] })),
      { at: 19 * S, check: ['someone', A], expect: allowed },
      { at: 19 * S, fail: ['user19', A] },
      { at: 20 * S, check: ['someone', A], expect: refused('address', MIN - S) },
      { at: 20 * S, check: ['someone', B], expect: allowed },
      { at: 20 * S, check: ['user3', B], expect: allowed },
    ]],
    ['reports the longer of two blocks', [
      { at: 0, fail: ['alice', A], times: 5 },
      { at: 0, fail: ['x', A], times: 5 }, // address A now at 10
      { at: MIN, fail: ['alice', A], times: 5 }, // alice: second block, 2 min; A at 15
      { at: MIN, fail: ['y', A], times: 5 }, // A at 20: first address block, 1 min
      { at: MIN, check: ['alice', A], expect: refused('user', 2 * MIN) },
      { at: MIN, check: ['bob', A], expect: refused('address', MIN) },
    ]],
    ['doubles the block each time, up to 15 minutes', [
      { at: 0, fail: ['alice', A], times: 5 },
      { at: 0, check: ['alice', A], expect: refused('user', 1 * MIN) },
      { at: 1 * MIN, fail: ['alice', B], times: 5 },
      { at: 1 * MIN, check: ['alice', A], expect: refused('user', 2 * MIN) },
      { at: 3 * MIN, fail: ['alice', A], times: 5 },
      { at: 3 * MIN, check: ['alice', A], expect: refused('user', 4 * MIN) },
      { at: 7 * MIN, fail: ['alice', B], times: 5 },
      { at: 7 * MIN, check: ['alice', A], expect: refused('user', 8 * MIN) },
      { at: 15 * MIN, fail: ['alice', A], times: 5 },
      { at: 15 * MIN, check: ['alice', A], expect: refused('user', 15 * MIN) },
      { at: 30 * MIN, fail: ['alice', B], times: 5 },
      { at: 30 * MIN, check: ['alice', A], expect: refused('user', 15 * MIN) },
    ]],
    ['does not count attempts against a user while the user is blocked', [
      { at: 0, fail: ['alice', A], times: 5 },
      { at: S, fail: ['alice', A], times: 50 }, // these do count for address A
      { at: MIN, check: ['alice', B], expect: allowed },
      { at: MIN, check: ['bob', A], expect: refused('address', S) }, // A hit 20 at 1 s
      { at: MIN, fail: ['alice', B], times: 4 },
      { at: MIN, check: ['alice', B], expect: allowed },
    ]],
    ['clears the user counter on success', [
      { at: 0, fail: ['alice', A], times: 4 },
      { at: S, ok: ['alice', A] },
      { at: 2 * S, fail: ['alice', A], times: 4 },
      { at: 2 * S, check: ['alice', A], expect: allowed },
    ]],
    ['clears the back-off on success', [
      { at: 0, fail: ['alice', A], times: 5 },
      { at: MIN, ok: ['alice', B] },
      { at: MIN, fail: ['alice', B], times: 5 },
      { at: MIN, check: ['alice', B], expect: refused('user', MIN) },
    ]],
    ['does not clear the address counter on success', [
      { at: 0, fail: ['x', A], times: 19 },
      { at: S, ok: ['alice', A] },
      { at: S, fail: ['y', A] },
      { at: S, check: ['alice', A], expect: refused('address', MIN) },
    ]],
    ['forgets back-off after an hour without failures', [
      { at: 0, fail: ['alice', A], times: 5 },
      { at: 60 * MIN + 1, fail: ['alice', A], times: 5 },
      { at: 60 * MIN + 1, check: ['alice', A], expect: refused('user', MIN) },
    ]],
    ['counts an IPv6 /64 as one address', [
      ...Array.from({ length: 20 }, (_, i): Step => ({ at: 0, fail: [`u${i}`, `2001:db8:1:2::${(i + 1).toString(16)}`] })),
      { at: 0, check: ['z', '2001:db8:1:2:ffff:ffff:ffff:ffff'], expect: refused('address', MIN) },
      { at: 0, check: ['z', '2001:db8:1:3::1'], expect: allowed },
    ]],
    ['never reports more than the longest block when the clock steps back', [
      { at: 10 * MIN, fail: ['alice', A], times: 5 },
      { at: 0, check: ['alice', A], expect: refused('user', 11 * MIN) },
      { at: -60 * MIN, check: ['alice', A], expect: refused('user', 15 * MIN) },
    ]],
  ];

  it.each(cases)('%s', (_name, steps) => {
    run(steps);
  });

  it('honours other limits', () => {
    run([
      { at: 0, fail: ['alice', A], times: 2 },
      { at: 0, check: ['alice', A], expect: refused('user', 10 * S) },
      { at: 10 * S, fail: ['alice', A], times: 2 },
      { at: 10 * S, check: ['alice', A], expect: refused('user', 15 * S) },
    ], { user: { maxFailures: 2, windowMs: MIN }, baseBlockMs: 10 * S, maxBlockMs: 15 * S });
  });

  it('keeps memory bounded under a flood of random names and addresses', () => {
    const limiter = new LoginRateLimiter({ maxEntries: 1000 });
    for (let i = 0; i < 20_000; i++) {
      limiter.recordFailure(`random${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i);
    }
    expect(limiter.size()).toEqual({ users: 1000, addresses: 1000 });
    // The newest entries are the ones kept.
    for (let n = 0; n < 4; n++) limiter.recordFailure('random19999', '10.0.78.31', 20_000);
    expect(limiter.check('random19999', '203.0.113.9', 20_000)).toEqual(refused('user', MIN));
  });

  it('bounds the length of keys', () => {
    expect(userKey('A'.repeat(1_000_000))).toBe('a'.repeat(64));
    expect(addressKey('x'.repeat(1_000_000))).toHaveLength(64);
  });

  it('drops expired entries as time passes', () => {
    const limiter = new LoginRateLimiter();
    for (let i = 0; i < 100; i++) limiter.recordFailure(`user${i}`, `192.0.2.${i}`, 0);
    expect(limiter.size()).toEqual({ users: 100, addresses: 100 });
    // Each later failure sweeps a few expired entries.
    for (let i = 0; i < 20; i++) limiter.recordFailure('late', B, 61 * MIN);
    expect(limiter.size().users).toBe(1);
    expect(limiter.size().addresses).toBeLessThan(100);
    limiter.prune(61 * MIN);
    expect(limiter.size()).toEqual({ users: 1, addresses: 1 });
    limiter.prune(200 * MIN);
    expect(limiter.size()).toEqual({ users: 0, addresses: 0 });
  });

  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['2001:DB8:0:1::1', '2001:db8:0:1::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['2001:db8:1:2:3:4:192.0.2.1', '2001:db8:1:2::/64'],
    ['unix:/run/partyline.sock', 'unix:/run/partyline.sock'],
  ])('keys address %s as %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });

  it('rejects nonsensical options with every problem named', () => {
    let caught: unknown;
    try {
      new LoginRateLimiter({ user: { maxFailures: 0, windowMs: MIN }, maxBlockMs: 1, maxEntries: 0 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues).toEqual([
      'user.maxFailures: 0, expected an integer >= 1',
      'maxBlockMs: 1, expected >= baseBlockMs (60000)',
      'maxEntries: 0, expected an integer >= 1',
    ]);
  });
});
