import { PartylineError } from '../errors.js';
import { isHostPort, isPort, normalizeHostPort, parseHostPort } from '../util/host-port.js';

/**
 * The host cache (HC): the supernodes this node knows, scored so that the
 * login sequence can probe the most promising ones first (DESIGN.md "Joining
 * the network"; Skype kept about 200 such entries in `shared.xml`).
 *
 * Pure state: no I/O, no timers, no clock. Every method that depends on time
 * takes `now` (epoch milliseconds). Persistence lives in `host-cache-store.ts`.
 *
 * ## Score
 *
 *     score = (0.5 + 0.5 · R · Q) · 2^(−f)
 *
 *     R = 0 if never contacted, else 2^(−age / 24 h), age = max(0, now − lastSeen)
 *     Q = 100 ms / (100 ms + rttMs)         (0.5 when no RTT has been measured)
 *     f = consecutive failures (capped at 64)
 *
 * The score lies in (0, 1]. A supernode that answered just now over a LAN
 * scores close to 1; recency and RTT together order the ones that work. An
 * entry never contacted (or contacted so long ago that R has decayed) scores
 * 0.5 — the middle. Every consecutive failure halves the score, so an entry
 * that failed once sits just below the unknown ones and one that keeps
 * failing sinks exponentially. A clock that runs behind (a Pi without RTC
 * before NTP) cannot push ages negative: a `lastSeen` in the future counts as
 * "just now". Ties are broken by fewer failures, then source (bootstrap,
 * self, mdns, supernode), then the more recent `lastSeen`, then address.
 *
 * ## Admission, eviction, pruning
 *
 * - Gossip never sets liveness: `add()` takes only the address, ports and key;
 *   `lastSeen`, `rttMs` and `failures` change only through `recordSuccess()`
 *   and `recordFailure()`, i.e. by this node's own contact.
 * - When the cache is full, a newcomer replaces the worst-scored evictable
 *   entry only if it would score better (a newcomer scores 0.5, so only
 *   entries with failures qualify) or that entry has failed
 *   `repeatedFailures` times in a row. Recently good (or merely untried)
 *   entries are never pushed out by gossip. A `bootstrap` newcomer (operator
 *   configuration) always replaces the worst evictable entry.
 * - `bootstrap` entries are never evicted or pruned, only down-scored by their
 *   failures: they are the last resort when everything else is gone (the seed
 *   paper: "if the host cache is void Skype does not work"). `seed()` hands
 *   the label back (as `supernode`) for addresses no longer in the configured
 *   list, so a changed configuration does not leave pinned leftovers.
 * - An entry with more than `maxFailures` consecutive failures that has not
 *   been seen (or, if never seen, was added) more than `pruneAfterMs` ago is
 *   removed by `recordFailure()` and `prune()`. Callers should not record
 *   failures while this node's own link is down.
 */

export type HostCacheSource = 'bootstrap' | 'supernode' | 'mdns' | 'self';

/**
 * Where an entry came from. `self` means the supernode described itself over
 * an authenticated session with this node (its own ports and key).
 */
export const HOST_CACHE_SOURCES: readonly HostCacheSource[] = ['bootstrap', 'supernode', 'mdns', 'self'];

export interface HostCacheEntry {
  /** Canonical `host:port` of the supernode's primary TCP port; the cache key. */
  readonly address: string;
  /** Extra TCP ports the supernode offers (e.g. 443, 80), without the primary port. */
  readonly altPorts: readonly number[];
  readonly udpPort?: number;
  /** The supernode's Noise static key (X25519, 32 bytes, base64), when learned. */
  readonly publicKey?: string;
  /** Epoch ms of the last successful contact; 0 = never. */
  readonly lastSeen: number;
  /** Smoothed round-trip time (EWMA, α = 1/8), when measured. */
  readonly rttMs?: number;
  /** Consecutive failures since the last success. */
  readonly failures: number;
  readonly source: HostCacheSource;
  /** Epoch ms when this node first learned of the entry. */
  readonly addedAt: number;
}

/** What `add()` accepts: descriptive fields only, never liveness. */
export interface HostCacheEntryInput {
  address: string;
  altPorts?: readonly number[];
  udpPort?: number;
  publicKey?: string;
}

export interface HostCacheOptions {
  /** Most entries kept (default 200). */
  capacity?: number;
  /** Prune after more than this many consecutive failures (default 10)... */
  maxFailures?: number;
  /** ...and no contact for this long (default 7 days). */
  pruneAfterMs?: number;
  /** A full cache lets a newcomer replace an entry with this many failures (default 3). */
  repeatedFailures?: number;
}

export type HostCacheAddResult =
  | { status: 'added'; address: string; evicted?: HostCacheEntry }
  | { status: 'updated'; address: string }
  | { status: 'rejected'; address: string; reason: 'full' };

export type HostCacheFailureResult = 'recorded' | 'pruned' | 'unknown';

export interface HostCacheJson {
  version: 1;
  entries: HostCacheEntry[];
}

export interface HostCacheFromJsonOptions extends HostCacheOptions {
  /** Used to choose which entries to keep when the file holds more than `capacity`. */
  now: number;
}

export interface HostCacheFromJsonResult {
  cache: HostCache;
  /** One line per dropped entry or field problem; empty when the file was clean. */
  warnings: string[];
}

export const HOST_CACHE_VERSION = 1;
export const DEFAULT_HOST_CACHE_CAPACITY = 200;
export const DEFAULT_MAX_FAILURES = 10;
export const DEFAULT_PRUNE_AFTER_MS = 7 * 24 * 60 * 60 * 1000;
export const DEFAULT_REPEATED_FAILURES = 3;
/** Half-life of the recency term R. */
export const RECENCY_HALF_LIFE_MS = 24 * 60 * 60 * 1000;
/** RTT at which the RTT term Q is 0.5. */
export const RTT_REFERENCE_MS = 100;
/** At most this many alternative ports are kept per entry. */
export const MAX_ALT_PORTS = 8;
/** EWMA gain for the smoothed RTT (RFC 6298 α). */
export const RTT_ALPHA = 1 / 8;

const MAX_SCORED_FAILURES = 64;
const SOURCE_RANK: Record<HostCacheSource, number> = { bootstrap: 3, self: 2, mdns: 1, supernode: 0 };
const ENTRY_FIELDS = new Set(['address', 'altPorts', 'udpPort', 'publicKey', 'lastSeen', 'rttMs', 'failures', 'source', 'addedAt']);
const NOISE_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** The host cache file or an argument is invalid. */
export class HostCacheError extends PartylineError {
  constructor(code: `ERR_HOST_CACHE_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

type MutableEntry = { -readonly [K in keyof HostCacheEntry]: HostCacheEntry[K] } & { altPorts: number[] };

/** The score formula documented above, as a pure function. */
export function scoreHostCacheEntry(entry: HostCacheEntry, now: number): number {
  const recency = entry.lastSeen === 0 ? 0 : 2 ** (-Math.max(0, now - entry.lastSeen) / RECENCY_HALF_LIFE_MS);
  const quality = entry.rttMs === undefined ? 0.5 : RTT_REFERENCE_MS / (RTT_REFERENCE_MS + entry.rttMs);
  return (0.5 + 0.5 * recency * quality) * 2 ** -Math.min(entry.failures, MAX_SCORED_FAILURES);
}

export class HostCache {
  readonly #entries = new Map<string, MutableEntry>();
  readonly #capacity: number;
  readonly #maxFailures: number;
  readonly #pruneAfterMs: number;
  readonly #repeatedFailures: number;

  constructor(options: HostCacheOptions = {}) {
    this.#capacity = option(options.capacity, DEFAULT_HOST_CACHE_CAPACITY, 'capacity', 1);
    this.#maxFailures = option(options.maxFailures, DEFAULT_MAX_FAILURES, 'maxFailures', 0);
    this.#pruneAfterMs = option(options.pruneAfterMs, DEFAULT_PRUNE_AFTER_MS, 'pruneAfterMs', 0);
    this.#repeatedFailures = option(options.repeatedFailures, DEFAULT_REPEATED_FAILURES, 'repeatedFailures', 1);
  }

  get size(): number {
    return this.#entries.size;
  }

  get capacity(): number {
    return this.#capacity;
  }

  has(address: string): boolean {
    return isHostPort(address) && this.#entries.has(normalizeHostPort(address));
  }

  get(address: string): HostCacheEntry | undefined {
    if (!isHostPort(address)) return undefined;
    const entry = this.#entries.get(normalizeHostPort(address));
    return entry && copy(entry);
  }

  /** All entries (copies), in the order they were added. */
  entries(): HostCacheEntry[] {
    return [...this.#entries.values()].map(copy);
  }

  /** See the module comment for the formula. */
  score(entry: HostCacheEntry, now: number): number {
    return scoreHostCacheEntry(entry, now);
  }

  /**
   * Add a supernode or merge what is learned about a known one. Throws
   * `HostPortError` for a bad address and `HostCacheError`
   * (`ERR_HOST_CACHE_INVALID`) for bad ports or key, before changing anything.
   *
   * Merging: the source becomes the more trusted of the two (bootstrap > self
   * > mdns > supernode); `self` and `bootstrap` information replaces the UDP
   * port, key and alternative ports, other sources only fill what is unknown
   * (alternative ports are added up to {@link MAX_ALT_PORTS}).
   */
  add(input: string | HostCacheEntryInput, source: HostCacheSource, now: number): HostCacheAddResult {
    checkTime(now, 'now');
    checkSource(source);
    const info = checkInput(typeof input === 'string' ? { address: input } : input);
    const existing = this.#entries.get(info.address);
    if (existing) {
      merge(existing, info, source);
      return { status: 'updated', address: info.address };
    }
    const entry: MutableEntry = { address: info.address, altPorts: info.altPorts ?? [], lastSeen: 0, failures: 0, source, addedAt: now };
    if (info.udpPort !== undefined) entry.udpPort = info.udpPort;
    if (info.publicKey !== undefined) entry.publicKey = info.publicKey;

    let evicted: HostCacheEntry | undefined;
    if (this.#entries.size >= this.#capacity) {
      const victim = this.#worstEvictable(now);
      if (!victim || !this.#mayReplace(victim, entry, now)) return { status: 'rejected', address: info.address, reason: 'full' };
      this.#entries.delete(victim.address);
      evicted = copy(victim);
    }
    this.#entries.set(entry.address, entry);
    return evicted ? { status: 'added', address: entry.address, evicted } : { status: 'added', address: entry.address };
  }

  /** A handshake with the supernode completed. Returns false for an unknown address. */
  recordSuccess(address: string, rttMs: number | undefined, now: number): boolean {
    checkTime(now, 'now');
    if (rttMs !== undefined && !(Number.isFinite(rttMs) && rttMs >= 0)) {
      throw new HostCacheError('ERR_HOST_CACHE_INVALID', `rttMs: expected a finite number >= 0, got ${String(rttMs)}`);
    }
    const entry = this.#lookup(address);
    if (!entry) return false;
    entry.failures = 0;
    entry.lastSeen = now;
    if (rttMs !== undefined) entry.rttMs = entry.rttMs === undefined ? rttMs : entry.rttMs + RTT_ALPHA * (rttMs - entry.rttMs);
    return true;
  }

  /** An attempt to reach the supernode failed; may prune the entry. */
  recordFailure(address: string, now: number): HostCacheFailureResult {
    checkTime(now, 'now');
    const entry = this.#lookup(address);
    if (!entry) return 'unknown';
    entry.failures += 1;
    if (this.#isStale(entry, now)) {
      this.#entries.delete(entry.address);
      return 'pruned';
    }
    return 'recorded';
  }

  remove(address: string): boolean {
    return isHostPort(address) && this.#entries.delete(normalizeHostPort(address));
  }

  /** Remove every stale entry (see the module comment); returns what was removed. */
  prune(now: number): HostCacheEntry[] {
    checkTime(now, 'now');
    const removed: HostCacheEntry[] = [];
    for (const entry of [...this.#entries.values()]) {
      if (this.#isStale(entry, now)) {
        this.#entries.delete(entry.address);
        removed.push(copy(entry));
      }
    }
    return removed;
  }

  /** Up to `n` entries, best first, skipping the `exclude`d addresses. */
  best(n: number, now: number, options: { exclude?: Iterable<string> } = {}): HostCacheEntry[] {
    checkTime(now, 'now');
    if (!(Number.isInteger(n) && n >= 0)) throw new HostCacheError('ERR_HOST_CACHE_INVALID', `n: expected an integer >= 0, got ${String(n)}`);
    const excluded = new Set<string>();
    for (const address of options.exclude ?? []) if (isHostPort(address)) excluded.add(normalizeHostPort(address));
    return this.#ranked(now)
      .filter((entry) => !excluded.has(entry.address))
      .slice(0, n)
      .map(copy);
  }

  /**
   * Make the configured bootstrap list present: missing addresses are added
   * (source `bootstrap`), present ones are relabelled `bootstrap`, and entries
   * labelled `bootstrap` that are no longer in the list become `supernode`.
   * Throws before changing anything if any address is invalid. Returns the
   * canonical addresses that were added.
   */
  seed(bootstrap: readonly string[], now: number): string[] {
    checkTime(now, 'now');
    const invalid = bootstrap.filter((address) => !isHostPort(address));
    if (invalid.length > 0) {
      throw new HostCacheError('ERR_HOST_CACHE_INVALID', `bootstrap: expected "host:port" addresses, got ${invalid.map((a) => JSON.stringify(a)).join(', ')}`);
    }
    const wanted = new Set(bootstrap.map(normalizeHostPort));
    for (const entry of this.#entries.values()) {
      if (entry.source === 'bootstrap' && !wanted.has(entry.address)) entry.source = 'supernode';
    }
    const added: string[] = [];
    for (const address of wanted) {
      const result = this.add(address, 'bootstrap', now);
      if (result.status === 'added') added.push(address);
    }
    return added;
  }

  toJSON(): HostCacheJson {
    return { version: HOST_CACHE_VERSION, entries: this.entries() };
  }

  /**
   * Rebuild a cache from `toJSON()` output. A value of the wrong shape or
   * version throws `HostCacheError` (`ERR_HOST_CACHE_FORMAT`,
   * `ERR_HOST_CACHE_VERSION`); a malformed or duplicate entry is dropped and
   * reported in `warnings`. Over capacity, the best-scored entries are kept.
   */
  static fromJSON(value: unknown, options: HostCacheFromJsonOptions): HostCacheFromJsonResult {
    checkTime(options.now, 'now');
    if (!isRecord(value)) throw new HostCacheError('ERR_HOST_CACHE_FORMAT', `host cache: expected an object, got ${describe(value)}`);
    if (value['version'] !== HOST_CACHE_VERSION) {
      const code = typeof value['version'] === 'number' ? 'ERR_HOST_CACHE_VERSION' : 'ERR_HOST_CACHE_FORMAT';
      throw new HostCacheError(code, `host cache: field "version": expected ${HOST_CACHE_VERSION}, got ${describe(value['version'])}`);
    }
    const list = value['entries'];
    if (!Array.isArray(list)) throw new HostCacheError('ERR_HOST_CACHE_FORMAT', `host cache: field "entries": expected an array, got ${describe(list)}`);
    const unknownTop = Object.keys(value).filter((key) => key !== 'version' && key !== 'entries');
    if (unknownTop.length > 0) throw new HostCacheError('ERR_HOST_CACHE_FORMAT', `host cache: unknown fields ${unknownTop.map((k) => JSON.stringify(k)).join(', ')}`);

    const cache = new HostCache(options);
    const warnings: string[] = [];
    const valid: MutableEntry[] = [];
    const seen = new Set<string>();
    list.forEach((item: unknown, index) => {
      const entry = parseEntry(item);
      if (typeof entry === 'string') {
        warnings.push(`entries[${index}]: ${entry}; entry dropped`);
      } else if (seen.has(entry.address)) {
        warnings.push(`entries[${index}]: duplicate address "${entry.address}"; entry dropped`);
      } else {
        seen.add(entry.address);
        valid.push(entry);
      }
    });
    let kept = valid;
    if (valid.length > cache.#capacity) {
      const ranked = [...valid].sort((a, b) => Number(b.source === 'bootstrap') - Number(a.source === 'bootstrap') || compareEntries(a, b, options.now));
      const keep = new Set(ranked.slice(0, cache.#capacity));
      kept = valid.filter((entry) => keep.has(entry));
      warnings.push(`${valid.length - kept.length} entries over capacity ${cache.#capacity} dropped (lowest scores)`);
    }
    for (const entry of kept) cache.#entries.set(entry.address, entry);
    return { cache, warnings };
  }

  #lookup(address: string): MutableEntry | undefined {
    return isHostPort(address) ? this.#entries.get(normalizeHostPort(address)) : undefined;
  }

  #ranked(now: number): MutableEntry[] {
    return [...this.#entries.values()].sort((a, b) => compareEntries(a, b, now));
  }

  #worstEvictable(now: number): MutableEntry | undefined {
    let worst: MutableEntry | undefined;
    for (const entry of this.#entries.values()) {
      if (entry.source !== 'bootstrap' && (!worst || compareEntries(entry, worst, now) > 0)) worst = entry;
    }
    return worst;
  }

  #mayReplace(victim: HostCacheEntry, newcomer: HostCacheEntry, now: number): boolean {
    return newcomer.source === 'bootstrap'
      || victim.failures >= this.#repeatedFailures
      || scoreHostCacheEntry(newcomer, now) > scoreHostCacheEntry(victim, now);
  }

  #isStale(entry: HostCacheEntry, now: number): boolean {
    const since = entry.lastSeen === 0 ? entry.addedAt : entry.lastSeen;
    return entry.source !== 'bootstrap' && entry.failures > this.#maxFailures && now - since > this.#pruneAfterMs;
  }
}

/** Best first: score, fewer failures, more trusted source, more recent contact, address. */
function compareEntries(a: HostCacheEntry, b: HostCacheEntry, now: number): number {
  return scoreHostCacheEntry(b, now) - scoreHostCacheEntry(a, now)
    || a.failures - b.failures
    || SOURCE_RANK[b.source] - SOURCE_RANK[a.source]
    || b.lastSeen - a.lastSeen
    || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);
}

function merge(entry: MutableEntry, info: CheckedInput, source: HostCacheSource): void {
  const authoritative = source === 'self' || source === 'bootstrap';
  if (SOURCE_RANK[source] > SOURCE_RANK[entry.source]) entry.source = source;
  if (info.udpPort !== undefined && (authoritative || entry.udpPort === undefined)) entry.udpPort = info.udpPort;
  if (info.publicKey !== undefined && (authoritative || entry.publicKey === undefined)) entry.publicKey = info.publicKey;
  if (info.altPorts !== undefined) {
    entry.altPorts = authoritative ? info.altPorts : [...new Set([...entry.altPorts, ...info.altPorts])].slice(0, MAX_ALT_PORTS);
  }
}

interface CheckedInput {
  address: string;
  altPorts?: number[];
  udpPort?: number;
  publicKey?: string;
}

function checkInput(input: HostCacheEntryInput): CheckedInput {
  const address = normalizeHostPort(input.address);
  const primary = parseHostPort(address).port;
  const checked: CheckedInput = { address };
  if (input.altPorts !== undefined) {
    const problem = altPortsProblem(input.altPorts, false);
    if (problem) throw new HostCacheError('ERR_HOST_CACHE_INVALID', `${address}: altPorts: ${problem}`);
    checked.altPorts = input.altPorts.filter((port) => port !== primary);
  }
  if (input.udpPort !== undefined) {
    if (!isPort(input.udpPort)) throw new HostCacheError('ERR_HOST_CACHE_INVALID', `${address}: udpPort: expected an integer 1..65535, got ${describe(input.udpPort)}`);
    checked.udpPort = input.udpPort;
  }
  if (input.publicKey !== undefined) {
    if (!isNoiseKey(input.publicKey)) throw new HostCacheError('ERR_HOST_CACHE_INVALID', `${address}: publicKey: expected 32 bytes in base64, got ${describe(input.publicKey)}`);
    checked.publicKey = input.publicKey;
  }
  return checked;
}

/** Validate one stored entry; returns the reason when it is malformed. */
function parseEntry(item: unknown): MutableEntry | string {
  if (!isRecord(item)) return `expected an object, got ${describe(item)}`;
  const unknown = Object.keys(item).find((key) => !ENTRY_FIELDS.has(key));
  if (unknown !== undefined) return `unknown field ${JSON.stringify(unknown)}`;
  const { address, altPorts, udpPort, publicKey, lastSeen, rttMs, failures, source, addedAt } = item;
  if (!isHostPort(address)) return `field "address": expected "host:port", got ${describe(address)}`;
  const altProblem = altPortsProblem(altPorts, true);
  if (altProblem) return `field "altPorts": ${altProblem}`;
  if (udpPort !== undefined && !isPort(udpPort)) return `field "udpPort": expected an integer 1..65535, got ${describe(udpPort)}`;
  if (publicKey !== undefined && !isNoiseKey(publicKey)) return `field "publicKey": expected 32 bytes in base64, got ${describe(publicKey)}`;
  if (!isTimestamp(lastSeen)) return `field "lastSeen": expected epoch ms (integer >= 0), got ${describe(lastSeen)}`;
  if (rttMs !== undefined && !(typeof rttMs === 'number' && Number.isFinite(rttMs) && rttMs >= 0)) return `field "rttMs": expected a number >= 0, got ${describe(rttMs)}`;
  if (!(typeof failures === 'number' && Number.isSafeInteger(failures) && failures >= 0)) return `field "failures": expected an integer >= 0, got ${describe(failures)}`;
  if (!isSource(source)) return `field "source": expected one of ${HOST_CACHE_SOURCES.join(', ')}, got ${describe(source)}`;
  if (!isTimestamp(addedAt)) return `field "addedAt": expected epoch ms (integer >= 0), got ${describe(addedAt)}`;
  const canonical = normalizeHostPort(address);
  const primary = parseHostPort(canonical).port;
  const entry: MutableEntry = {
    address: canonical,
    altPorts: (altPorts as number[]).filter((port) => port !== primary),
    lastSeen,
    failures,
    source,
    addedAt,
  };
  if (udpPort !== undefined) entry.udpPort = udpPort;
  if (publicKey !== undefined) entry.publicKey = publicKey as string;
  if (rttMs !== undefined) entry.rttMs = rttMs as number;
  return entry;
}

function altPortsProblem(value: unknown, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (!Array.isArray(value)) return `expected an array of ports, got ${describe(value)}`;
  if (value.length > MAX_ALT_PORTS) return `expected at most ${MAX_ALT_PORTS} ports, got ${value.length}`;
  const bad: unknown[] = value.filter((port) => !isPort(port));
  if (bad.length > 0) return `expected integers 1..65535, got ${describe(bad[0])}`;
  if (new Set(value).size !== value.length) return 'duplicate ports';
  return undefined;
}

function isNoiseKey(value: unknown): value is string {
  return typeof value === 'string' && NOISE_KEY.test(value);
}

function isTimestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isSource(value: unknown): value is HostCacheSource {
  return typeof value === 'string' && (HOST_CACHE_SOURCES as readonly string[]).includes(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkTime(value: number, name: string): void {
  if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
    throw new HostCacheError('ERR_HOST_CACHE_INVALID', `${name}: expected epoch ms (finite number >= 0), got ${describe(value)}`);
  }
}

function checkSource(source: unknown): asserts source is HostCacheSource {
  if (!isSource(source)) throw new HostCacheError('ERR_HOST_CACHE_INVALID', `source: expected one of ${HOST_CACHE_SOURCES.join(', ')}, got ${describe(source)}`);
}

function option(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isSafeInteger(value) && value >= min)) throw new HostCacheError('ERR_HOST_CACHE_INVALID', `option ${name}: expected an integer >= ${min}, got ${describe(value)}`);
  return value;
}

function copy(entry: HostCacheEntry): HostCacheEntry {
  return { ...entry, altPorts: [...entry.altPorts] };
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
