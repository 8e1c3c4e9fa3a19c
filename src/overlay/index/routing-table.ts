import { randomBytes } from 'node:crypto';
import { bucketIndex, ID_BITS, randomIdInBucket } from './node-id.js';
import type { NodeId } from './node-id.js';

/**
 * Kademlia routing table of a supernode: 256 k-buckets by XOR distance
 * (see node-id.ts for the bucket numbering).
 *
 * Pure state: no I/O, no timers, no clock. Every method that depends on time
 * takes `now` (epoch ms). Where Kademlia would send a message the table
 * returns it as an action for the caller to carry out:
 *
 * - A bucket keeps at most `bucketSize` contacts in least-recently-seen
 *   order (oldest first). A newcomer to a full bucket does not push anyone
 *   out: `add()` answers `{status: 'pending', ping}` — "ping the oldest" —
 *   and parks the newcomer in the bucket's replacement cache (newest first,
 *   at most `replacementSize`). If the oldest answers (`seen()`), it moves to
 *   the tail and the newcomer stays a replacement; if it does not
 *   (`failed()`), it is evicted and the freshest replacement takes its place.
 *   Long-lived contacts are thus preferred, as Kademlia §2.2 asks.
 * - A full bucket whose oldest contact was heard from less than `goodForMs`
 *   ago (default 10 min) needs no ping: that contact is known to be alive,
 *   so the newcomer just waits as a replacement (`queued`) — as BitTorrent's
 *   DHT treats "good" nodes (BEP 5). Without this, every request from a
 *   stranger to a busy supernode would cost a ping.
 * - While a ping of a bucket's oldest is outstanding (less than
 *   `pingTimeoutMs` old), further newcomers answer `queued`, so one full
 *   bucket never causes a ping storm.
 * - `failed()` counts consecutive failures; a contact is removed at its
 *   `maxFailures`-th, or at its first when a replacement is waiting.
 * - `closest()` skips contacts that have failed since they were last seen
 *   (unless asked otherwise), so dead supernodes are not handed out while
 *   they wait for their next ping.
 */
export interface ContactInfo {
  readonly id: NodeId;
  /** `host:port` the supernode serves on. */
  readonly address: string;
  /** Its Noise static key, base64 (its id is SHA-256 of this key). */
  readonly publicKey?: string;
}

export interface Contact extends ContactInfo {
  /** Epoch ms of the last message from it (0 = never). */
  readonly lastSeen: number;
  /** Consecutive failures since it was last seen. */
  readonly failures: number;
}

interface Entry {
  id: NodeId;
  /** Top 32 bits of the id: most distance comparisons are settled on it without bigint work. */
  h: number;
  address: string;
  publicKey?: string;
  lastSeen: number;
  failures: number;
}

interface Bucket {
  /** Least recently seen first. */
  contacts: Entry[];
  /** Most recently seen first. */
  replacements: Entry[];
  /** The contact pinged on behalf of a waiting newcomer, and when. */
  pinging?: { id: NodeId; at: number };
  /** Last time a lookup ran into this bucket's range (or it was created). */
  touched: number;
}

export type AddResult =
  /** A new contact went into its bucket. */
  | { status: 'added'; contact: Contact }
  /** A known contact was refreshed (moved to the tail, address and key updated, failures cleared). */
  | { status: 'updated'; contact: Contact }
  /** The id is this node's own. */
  | { status: 'self' }
  /** The bucket is full: ping `ping` (its oldest contact) and report `seen()` or `failed()`. */
  | { status: 'pending'; ping: Contact }
  /** The bucket is full and its oldest is being pinged already or was heard from lately; the newcomer waits as a replacement. */
  | { status: 'queued' };

export interface RemoveResult {
  removed?: Contact;
  /** A replacement that took the freed place. */
  promoted?: Contact;
}

export interface RoutingTableOptions {
  self: NodeId;
  /** K, contacts per bucket (default 16). */
  bucketSize?: number;
  /** Waiting newcomers kept per bucket (default = bucketSize). */
  replacementSize?: number;
  /** Consecutive failures that remove a contact when no replacement is waiting (default 2). */
  maxFailures?: number;
  /** After this long an unanswered eviction ping no longer holds back new ones (default 10 s). */
  pingTimeoutMs?: number;
  /** A contact heard from this recently is alive: no eviction ping for it (default 10 min). */
  goodForMs?: number;
}

export const DEFAULT_BUCKET_SIZE = 16;

export class RoutingTable {
  readonly self: NodeId;
  readonly bucketSize: number;
  #replacementSize: number;
  #maxFailures: number;
  #pingTimeoutMs: number;
  #goodForMs: number;
  #buckets: Array<Bucket | undefined> = new Array<Bucket | undefined>(ID_BITS).fill(undefined);
  #index = new Map<NodeId, Entry>();
  /** Indexes of buckets that hold contacts, ascending. */
  #used: number[] = [];
  /** Bumped on every change of membership: lets callers tell cheaply whether anything moved. */
  #version = 0;

  constructor(options: RoutingTableOptions) {
    this.self = options.self;
    this.bucketSize = options.bucketSize ?? DEFAULT_BUCKET_SIZE;
    this.#replacementSize = options.replacementSize ?? this.bucketSize;
    this.#maxFailures = options.maxFailures ?? 2;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
    this.#goodForMs = options.goodForMs ?? 10 * 60_000;
    if (!Number.isInteger(this.bucketSize) || this.bucketSize < 1) throw new RangeError(`bucketSize ${this.bucketSize}: expected a positive integer`);
  }

  /** Number of contacts (replacements not counted). */
  get size(): number {
    return this.#index.size;
  }

  /** Changes whenever a contact is added or removed. */
  get version(): number {
    return this.#version;
  }

  get(id: NodeId): Contact | undefined {
    return this.#index.get(id);
  }

  has(id: NodeId): boolean {
    return this.#index.has(id);
  }

  /** All contacts, bucket by bucket (nearest bucket first), oldest first within a bucket. */
  contacts(): Contact[] {
    const out: Contact[] = [];
    for (const bucket of this.#buckets) if (bucket) out.push(...bucket.contacts);
    return out;
  }

  /** Buckets in use, for inspection and tests. */
  buckets(): Array<{ index: number; contacts: Contact[]; replacements: Contact[] }> {
    const out: Array<{ index: number; contacts: Contact[]; replacements: Contact[] }> = [];
    this.#buckets.forEach((bucket, index) => {
      if (bucket && (bucket.contacts.length > 0 || bucket.replacements.length > 0)) {
        out.push({ index, contacts: [...bucket.contacts], replacements: [...bucket.replacements] });
      }
    });
    return out;
  }

  /**
   * A supernode was heard from (it sent a request or answered one): insert
   * it or refresh it. See the class comment for the full-bucket case.
   */
  add(info: ContactInfo, now: number): AddResult {
    const index = bucketIndex(this.self, info.id);
    if (index < 0) return { status: 'self' };
    const bucket = this.#bucket(index, now);
    const known = this.#index.get(info.id);
    if (known) {
      known.address = info.address;
      if (info.publicKey !== undefined) known.publicKey = info.publicKey;
      this.#markSeen(bucket, known, now);
      return { status: 'updated', contact: known };
    }
    const entry: Entry = { id: info.id, h: top32(info.id), address: info.address, lastSeen: now, failures: 0 };
    if (info.publicKey !== undefined) entry.publicKey = info.publicKey;
    if (bucket.contacts.length < this.bucketSize) {
      bucket.contacts.push(entry);
      if (bucket.contacts.length === 1) this.#markUsed(index, true);
      this.#index.set(entry.id, entry);
      this.#version++;
      return { status: 'added', contact: entry };
    }
    this.#addReplacement(bucket, entry);
    if (bucket.pinging && now - bucket.pinging.at < this.#pingTimeoutMs && this.#index.has(bucket.pinging.id)) return { status: 'queued' };
    const oldest = bucket.contacts[0]!;
    if (oldest.failures === 0 && now - oldest.lastSeen < this.#goodForMs) return { status: 'queued' };
    bucket.pinging = { id: oldest.id, at: now };
    return { status: 'pending', ping: oldest };
  }

  /** A known contact answered or wrote: move it to the tail, clear its failures. False when unknown. */
  seen(id: NodeId, now: number): boolean {
    const entry = this.#index.get(id);
    if (!entry) return false;
    this.#markSeen(this.#bucket(bucketIndex(this.self, id), now), entry, now);
    return true;
  }

  /** A request to a contact failed or timed out. May remove it (and promote a replacement). */
  failed(id: NodeId, _now: number): RemoveResult {
    const entry = this.#index.get(id);
    if (!entry) {
      // A waiting replacement that fails is simply forgotten.
      const bucket = this.#buckets[bucketIndex(this.self, id)];
      if (bucket) bucket.replacements = bucket.replacements.filter((r) => r.id !== id);
      return {};
    }
    entry.failures += 1;
    const bucket = this.#buckets[bucketIndex(this.self, id)]!;
    if (bucket.pinging?.id === id) bucket.pinging = undefined;
    if (bucket.replacements.length > 0 || entry.failures >= this.#maxFailures) return this.remove(id);
    return {};
  }

  /** Remove a contact (e.g. it said it is leaving); the freshest replacement takes its place. */
  remove(id: NodeId): RemoveResult {
    const entry = this.#index.get(id);
    if (!entry) return {};
    const index = bucketIndex(this.self, id);
    const bucket = this.#buckets[index]!;
    bucket.contacts.splice(bucket.contacts.indexOf(entry), 1);
    this.#index.delete(id);
    if (bucket.pinging?.id === id) bucket.pinging = undefined;
    this.#version++;
    const promoted = bucket.replacements.shift();
    if (promoted) {
      bucket.contacts.push(promoted);
      this.#index.set(promoted.id, promoted);
      return { removed: entry, promoted };
    }
    if (bucket.contacts.length === 0) this.#markUsed(index, false);
    return { removed: entry };
  }

  #markUsed(index: number, used: boolean): void {
    const at = this.#used.indexOf(index);
    if (used && at < 0) {
      this.#used.push(index);
      this.#used.sort((a, b) => a - b);
    } else if (!used && at >= 0) {
      this.#used.splice(at, 1);
    }
  }

  /**
   * Up to `n` contacts closest to `target` by XOR distance, closest first.
   * Contacts with failures are left out unless `includeFailing`.
   *
   * Walks buckets in distance order instead of sorting the whole table: with
   * b = bucketIndex(self, target), bucket b holds the nearest contacts, then
   * come all buckets below b (distances in [2^b, 2^(b+1))), then buckets
   * b+1, b+2 ... each a band of its own.
   */
  closest(target: NodeId, n: number, options: { includeFailing?: boolean; exclude?: NodeId } = {}): Contact[] {
    const out: Contact[] = [];
    if (n <= 0) return out;
    const scan: Scan = { target, th: top32(target), includeFailing: options.includeFailing === true, exclude: options.exclude, room: n, best: [], keys: [] };
    const b = bucketIndex(this.self, target);
    if (b >= 0) {
      const own = this.#buckets[b];
      if (own) for (const e of own.contacts) consider(scan, e);
      flush(scan, out);
      if (out.length >= n) return out;
      scan.room = n - out.length;
      for (const i of this.#used) {
        if (i >= b) break;
        for (const e of this.#buckets[i]!.contacts) consider(scan, e);
      }
      flush(scan, out);
    }
    for (const i of this.#used) {
      if (i <= b) continue;
      if (out.length >= n) break;
      scan.room = n - out.length;
      for (const e of this.#buckets[i]!.contacts) consider(scan, e);
      flush(scan, out);
    }
    return out;
  }

  /** Contacts to ping: those not seen for `maxAgeMs`, and those with failures. */
  staleContacts(now: number, maxAgeMs: number): Contact[] {
    const out: Contact[] = [];
    for (const entry of this.#index.values()) {
      if (entry.failures > 0 || now - entry.lastSeen >= maxAgeMs) out.push(entry);
    }
    return out;
  }

  /** Note that a lookup for `target` ran: its bucket counts as refreshed. */
  touch(target: NodeId, now: number): void {
    const index = bucketIndex(this.self, target);
    if (index >= 0) this.#bucket(index, now).touched = now;
  }

  /**
   * Kademlia bucket refresh: one random target in each bucket in use that no
   * lookup has touched for `intervalMs`. Look them up, then `touch()` them.
   */
  refreshTargets(now: number, intervalMs: number, random: (n: number) => Uint8Array = randomBytes): NodeId[] {
    const out: NodeId[] = [];
    this.#buckets.forEach((bucket, index) => {
      if (bucket && bucket.contacts.length > 0 && now - bucket.touched >= intervalMs) out.push(randomIdInBucket(this.self, index, random));
    });
    return out;
  }

  /**
   * After joining: one random target in every bucket farther than the
   * closest neighbour's (Kademlia §2.3), so the new node fills its table and
   * is made known to nodes in every part of the space.
   */
  joinRefreshTargets(random: (n: number) => Uint8Array = randomBytes): NodeId[] {
    const nearest = this.closest(this.self, 1)[0];
    const from = nearest ? bucketIndex(this.self, nearest.id) + 1 : 0;
    const out: NodeId[] = [];
    for (let i = from; i < ID_BITS; i++) out.push(randomIdInBucket(this.self, i, random));
    return out;
  }

  #bucket(index: number, now: number): Bucket {
    let bucket = this.#buckets[index];
    if (!bucket) {
      bucket = { contacts: [], replacements: [], touched: now };
      this.#buckets[index] = bucket;
    }
    return bucket;
  }

  #markSeen(bucket: Bucket, entry: Entry, now: number): void {
    entry.lastSeen = Math.max(entry.lastSeen, now);
    entry.failures = 0;
    const at = bucket.contacts.indexOf(entry);
    if (at >= 0 && at !== bucket.contacts.length - 1) {
      bucket.contacts.splice(at, 1);
      bucket.contacts.push(entry);
    }
    if (bucket.pinging?.id === entry.id) bucket.pinging = undefined;
  }

  #addReplacement(bucket: Bucket, entry: Entry): void {
    const list = bucket.replacements;
    for (let i = 0; i < list.length; i++) {
      if (list[i]!.h === entry.h && list[i]!.id === entry.id) {
        list.splice(i, 1);
        break;
      }
    }
    list.unshift(entry);
    if (list.length > this.#replacementSize) list.length = this.#replacementSize;
  }
}

/** Scratch state of one closest() call: a partial selection of the `room` nearest entries, sorted. */
interface Scan {
  target: NodeId;
  th: number;
  includeFailing: boolean;
  exclude: NodeId | undefined;
  room: number;
  best: Entry[];
  keys: number[];
}

function nearer(scan: Scan, a: Entry, ka: number, b: Entry, kb: number): boolean {
  return ka !== kb ? ka < kb : (a.id ^ scan.target) < (b.id ^ scan.target);
}

function consider(scan: Scan, e: Entry): void {
  if ((e.failures > 0 && !scan.includeFailing) || e.id === scan.exclude) return;
  const key = (e.h ^ scan.th) >>> 0;
  const { best, keys } = scan;
  let at = best.length;
  if (at >= scan.room && !nearer(scan, e, key, best[at - 1]!, keys[at - 1]!)) return;
  while (at > 0 && nearer(scan, e, key, best[at - 1]!, keys[at - 1]!)) at--;
  best.splice(at, 0, e);
  keys.splice(at, 0, key);
  if (best.length > scan.room) {
    best.pop();
    keys.pop();
  }
}

function flush(scan: Scan, out: Contact[]): void {
  for (const e of scan.best) out.push(e);
  scan.best.length = 0;
  scan.keys.length = 0;
}

function top32(id: NodeId): number {
  return Number(id >> 224n) >>> 0;
}
