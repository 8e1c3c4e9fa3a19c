import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../errors.js';
import { normaliseUserName } from './user-name.js';

/**
 * Failed-login limiter for the login server. Pure: no timers, the time is
 * passed to every call.
 *
 * Failures are counted per user name and per source address, each in a
 * window that opens at the first failure. When a counter reaches its limit,
 * further attempts for that name (or from that address) are refused for a
 * block period: `baseBlockMs` the first time, doubling with every further
 * block, at most `maxBlockMs`. A successful login clears the user's counter
 * and back-off; it does not clear the address's (one good account must not
 * launder guesses against others). An entry with no failure for
 * `forgetAfterMs` is forgotten, back-off included.
 *
 * Memory is bounded: each map holds at most `maxEntries` entries (oldest
 * failure evicted first) and every key is cut to 64 characters. IPv6
 * addresses count per /64, since one host usually holds a whole /64.
 *
 * Trade-off: the per-user limit lets anybody lock a user out for up to
 * `maxBlockMs` by guessing; the per-address limit bounds how fast one
 * source can do that to many users.
 */
export interface RateLimitRule {
  /** Failures within `windowMs` that trigger a block. */
  maxFailures: number;
  windowMs: number;
}

export interface RateLimitOptions {
  user: RateLimitRule;
  address: RateLimitRule;
  /** First block period. */
  baseBlockMs: number;
  /** Longest block period. */
  maxBlockMs: number;
  /** An entry idle this long is dropped. At least `maxBlockMs` and each `windowMs`. */
  forgetAfterMs: number;
  /** Cap on the entries of each map (users, addresses). */
  maxEntries: number;
}

export const DEFAULT_RATE_LIMIT_OPTIONS: Readonly<RateLimitOptions> = Object.freeze({
  user: { maxFailures: 5, windowMs: 5 * 60_000 },
  address: { maxFailures: 20, windowMs: 5 * 60_000 },
  baseBlockMs: 60_000,
  maxBlockMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
  maxEntries: 100_000,
});

export type RateLimitDecision =
  | { allowed: true }
  | { allowed: false; retryAfterMs: number; reason: 'user' | 'address' };

interface Entry {
  windowStart: number;
  failures: number;
  blockedUntil: number;
  /** How many blocks so far: the next lasts baseBlockMs · 2^strikes. */
  strikes: number;
  lastFailureAt: number;
}

const KEY_LIMIT = 64;
/** Expired entries dropped per recorded failure, so memory shrinks without a timer. */
const SWEEP_PER_CALL = 8;

export class LoginRateLimiter {
  readonly #options: RateLimitOptions;
  readonly #users = new Map<string, Entry>();
  readonly #addresses = new Map<string, Entry>();

  constructor(options: Partial<RateLimitOptions> = {}) {
    this.#options = { ...DEFAULT_RATE_LIMIT_OPTIONS, ...options };
    checkOptions(this.#options);
  }

  /** May this attempt go on to the password check? */
  check(user: string, address: string, now: number): RateLimitDecision {
    const byUser = this.#blockedFor(this.#users.get(userKey(user)), now);
    const byAddress = this.#blockedFor(this.#addresses.get(addressKey(address)), now);
    if (byUser === 0 && byAddress === 0) return { allowed: true };
    return byUser >= byAddress
      ? { allowed: false, retryAfterMs: byUser, reason: 'user' }
      : { allowed: false, retryAfterMs: byAddress, reason: 'address' };
  }

  /** A password check failed (or named an unknown user). */
  recordFailure(user: string, address: string, now: number): void {
    this.#fail(this.#users, userKey(user), this.#options.user, now);
    this.#fail(this.#addresses, addressKey(address), this.#options.address, now);
  }

  /** A login succeeded: forget the user's failures and back-off. */
  recordSuccess(user: string, _address: string, now: number): void {
    this.#users.delete(userKey(user));
    this.#sweep(this.#users, now);
    this.#sweep(this.#addresses, now);
  }

  /** Entries held, for tests and metrics. */
  size(): { users: number; addresses: number } {
    return { users: this.#users.size, addresses: this.#addresses.size };
  }

  /** Drop every expired entry. */
  prune(now: number): void {
    for (const map of [this.#users, this.#addresses]) {
      for (const [key, entry] of map) {
        if (this.#expired(entry, now)) map.delete(key);
      }
    }
  }

  #blockedFor(entry: Entry | undefined, now: number): number {
    if (entry === undefined || entry.blockedUntil <= now) return 0;
    // A clock that stepped back must not make a block longer than the longest.
    return Math.min(entry.blockedUntil - now, this.#options.maxBlockMs);
  }

  #fail(map: Map<string, Entry>, key: string, rule: RateLimitRule, now: number): void {
    this.#sweep(map, now);
    let entry = map.get(key);
    if (entry === undefined) {
      while (map.size >= this.#options.maxEntries) {
        const oldest = map.keys().next();
        if (oldest.done === true) break;
        map.delete(oldest.value);
      }
      entry = { windowStart: now, failures: 0, blockedUntil: 0, strikes: 0, lastFailureAt: now };
    } else {
      // Most recent failure last: the map's order is the eviction order.
      map.delete(key);
    }
    map.set(key, entry);
    if (entry.blockedUntil > now) return; // refused attempts should not get here; they do not count
    if (now - entry.windowStart >= rule.windowMs || now < entry.windowStart) {
      entry.windowStart = now;
      entry.failures = 0;
    }
    entry.failures += 1;
    entry.lastFailureAt = now;
    if (entry.failures >= rule.maxFailures) {
      const period = Math.min(this.#options.baseBlockMs * 2 ** entry.strikes, this.#options.maxBlockMs);
      entry.blockedUntil = now + period;
      entry.strikes += 1;
      entry.failures = 0;
      entry.windowStart = now;
    }
  }

  /** Drop expired entries from the old end of `map`, a few at a time. */
  #sweep(map: Map<string, Entry>, now: number): void {
    let dropped = 0;
    for (const [key, entry] of map) {
      if (dropped >= SWEEP_PER_CALL || !this.#expired(entry, now)) return;
      map.delete(key);
      dropped += 1;
    }
  }

  #expired(entry: Entry, now: number): boolean {
    return now - entry.lastFailureAt >= this.#options.forgetAfterMs && entry.blockedUntil <= now;
  }
}

/** The limiter's key for a user name: normalised like account names, bounded in length. */
export function userKey(user: string): string {
  return normaliseUserName(user.slice(0, 4 * KEY_LIMIT)).slice(0, KEY_LIMIT);
}

/**
 * The limiter's key for a source address: IPv4 as is (also when IPv4-mapped),
 * IPv6 as its /64 prefix, anything else cut to 64 characters.
 */
export function addressKey(address: string): string {
  let a = address.slice(0, 4 * KEY_LIMIT).trim().toLowerCase();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (a.startsWith('::ffff:') && isIPv4(a.slice(7))) return a.slice(7);
  if (!isIPv6(a)) return a.slice(0, KEY_LIMIT);
  return `${ipv6Groups(a).slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail reads as zeros). */
function ipv6Groups(a: string): number[] {
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? [0, 0] : [parseInt(g, 16)])));
  const gap = a.indexOf('::');
  if (gap < 0) return parse(a);
  const head = parse(a.slice(0, gap));
  const tail = parse(a.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function checkOptions(o: RateLimitOptions): void {
  const issues: string[] = [];
  for (const [name, rule] of [['user', o.user], ['address', o.address]] as const) {
    if (!Number.isInteger(rule.maxFailures) || rule.maxFailures < 1) issues.push(`${name}.maxFailures: ${rule.maxFailures}, expected an integer >= 1`);
    if (!(rule.windowMs > 0)) issues.push(`${name}.windowMs: ${rule.windowMs}, expected > 0`);
    if (o.forgetAfterMs < rule.windowMs) issues.push(`forgetAfterMs: ${o.forgetAfterMs}, expected >= ${name}.windowMs (${rule.windowMs})`);
  }
  if (!(o.baseBlockMs > 0)) issues.push(`baseBlockMs: ${o.baseBlockMs}, expected > 0`);
  if (!(o.maxBlockMs >= o.baseBlockMs)) issues.push(`maxBlockMs: ${o.maxBlockMs}, expected >= baseBlockMs (${o.baseBlockMs})`);
  if (!(o.forgetAfterMs >= o.maxBlockMs)) issues.push(`forgetAfterMs: ${o.forgetAfterMs}, expected >= maxBlockMs (${o.maxBlockMs})`);
  if (!Number.isInteger(o.maxEntries) || o.maxEntries < 1) issues.push(`maxEntries: ${o.maxEntries}, expected an integer >= 1`);
  if (issues.length > 0) throw new ConfigError(`login rate limit: ${issues.join('; ')}`, issues);
}
