import { ipToBytes } from './address.js';

/**
 * Per-source token buckets for the STUN responder: a source may send
 * `burst` requests at once and `perSecond` on average. Pure: the time is
 * passed to every call.
 *
 * Sources are counted per IPv4 address and per IPv6 /64 (one host usually
 * holds a whole /64). Memory is bounded: at most `maxSources` buckets, the
 * least recently used is dropped first — a dropped source simply starts
 * again with a full bucket.
 */
export interface SourceRateLimitOptions {
  burst: number;
  perSecond: number;
  maxSources: number;
}

/**
 * Defaults sized for a phone's media socket, which also answers the peer's
 * connectivity checks (ICE paces them at one per 50 ms per pair): 40 at
 * once, 20 a second.
 */
export const DEFAULT_SOURCE_RATE_LIMIT: Readonly<SourceRateLimitOptions> = Object.freeze({
  burst: 40,
  perSecond: 20,
  maxSources: 10_000,
});

interface Bucket {
  tokens: number;
  at: number;
}

export class SourceRateLimiter {
  readonly #options: SourceRateLimitOptions;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: Partial<SourceRateLimitOptions> = {}) {
    this.#options = { ...DEFAULT_SOURCE_RATE_LIMIT, ...options };
    const { burst, perSecond, maxSources } = this.#options;
    if (!(burst >= 1) || !(perSecond > 0) || !Number.isInteger(maxSources) || maxSources < 1) {
      throw new RangeError(`STUN rate limit: burst ${burst} (>= 1), perSecond ${perSecond} (> 0), maxSources ${maxSources} (integer >= 1)`);
    }
  }

  /** Take a token for `address` at time `now` (ms); false when the source is over its rate. */
  take(address: string, now: number): boolean {
    const key = sourceKey(address);
    const { burst, perSecond, maxSources } = this.#options;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: burst, at: now };
      if (this.#buckets.size >= maxSources) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
    } else {
      this.#buckets.delete(key); // re-inserted below: Map order = least recently used first
      bucket.tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) * perSecond) / 1000);
      bucket.at = now;
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Buckets held, for tests and metrics. */
  get size(): number {
    return this.#buckets.size;
  }
}

function sourceKey(address: string): string {
  const bytes = ipToBytes(address);
  if (bytes === undefined) return address.slice(0, 64);
  return bytes.length === 16 ? bytes.subarray(0, 8).toString('hex') : bytes.toString('hex');
}
