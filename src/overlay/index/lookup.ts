import type { NodeId } from './node-id.js';
import type { ContactInfo } from './routing-table.js';

/**
 * Kademlia iterative lookup as a pure state machine (no I/O, time passed in).
 *
 *     const lookup = new Lookup(target, {seeds: table.closest(target, k), self});
 *     for (;;) {
 *       for (const c of lookup.next(now)) send FIND_NODE / FIND_VALUE to c;
 *       if (lookup.done) break;
 *       ...wait for an answer, a failure or lookup.deadline()...
 *       lookup.onResponse(id, {closer, value}) | lookup.onFailure(id) | lookup.checkTimeouts(now);
 *     }
 *     lookup.result
 *
 * - At most `alpha` requests are in flight; `next()` always picks the
 *   closest candidates not yet asked.
 * - FIND_NODE (`mode: 'node'`) ends when the `k` closest candidates that did
 *   not fail have all answered. FIND_VALUE (`mode: 'value'`) ends when
 *   `quorum` answers (default 1) carried a value, or like FIND_NODE when
 *   fewer holders exist. Asking for 2 lets the caller pick the freshest
 *   record and repair a holder with an older one (IndexNode.readRepair).
 * - Answers from contacts not in flight (late, unknown, after the end) are
 *   ignored. A contact that fails is never asked again in this lookup.
 * - `maxContacts` caps the requests one lookup may send (default 64).
 * - The caller reports message sizes with `recordBytes()`; the result
 *   counts contacts asked, answers, failures and bytes.
 */
export type LookupMode = 'node' | 'value';

export interface LookupOptions {
  seeds: readonly ContactInfo[];
  mode?: LookupMode;
  /** Parallel requests (default 3). */
  alpha?: number;
  /** Closest contacts to converge on (default 8). */
  k?: number;
  /** This node's id: never queried, even if someone lists it. */
  self?: NodeId;
  /** A request unanswered this long counts as failed in `checkTimeouts()` (default 2 s). */
  timeoutMs?: number;
  maxContacts?: number;
  /** FIND_VALUE: answers with a value to collect before ending (default 1). */
  quorum?: number;
}

export interface LookupResponse<V> {
  closer: readonly ContactInfo[];
  value?: V;
}

export interface LookupResult<V> {
  target: NodeId;
  /** FIND_VALUE: the first value found, and who answered with it. */
  value?: V;
  valueFrom?: ContactInfo;
  /** FIND_VALUE: every value collected (at most `quorum`), in order of arrival. */
  values: Array<{ value: V; from: ContactInfo }>;
  /** Up to k contacts that answered, closest first (where to STORE after a FIND_NODE). */
  closest: ContactInfo[];
  /** Requests sent (= distinct supernodes contacted). */
  contacted: number;
  responded: number;
  failed: number;
  bytesSent: number;
  bytesReceived: number;
}

type State = 'new' | 'flight' | 'done' | 'failed';

interface Candidate {
  info: ContactInfo;
  distance: bigint;
  state: State;
  sentAt: number;
}

export class Lookup<V = unknown> {
  readonly target: NodeId;
  readonly mode: LookupMode;
  readonly alpha: number;
  readonly k: number;
  readonly timeoutMs: number;
  #self: NodeId | undefined;
  #maxContacts: number;
  /** Sorted by distance to the target, closest first. */
  #candidates: Candidate[] = [];
  #byId = new Map<NodeId, Candidate>();
  #inFlight = 0;
  #contacted = 0;
  #responded = 0;
  #failed = 0;
  #bytesSent = 0;
  #bytesReceived = 0;
  #values: Array<{ value: V; from: ContactInfo }> = [];
  #quorum: number;
  #done = false;

  constructor(target: NodeId, options: LookupOptions) {
    this.target = target;
    this.mode = options.mode ?? 'node';
    this.alpha = options.alpha ?? 3;
    this.k = options.k ?? 8;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.#self = options.self;
    this.#maxContacts = options.maxContacts ?? 64;
    this.#quorum = options.quorum ?? 1;
    if (!Number.isInteger(this.alpha) || this.alpha < 1) throw new RangeError(`alpha ${this.alpha}: expected a positive integer`);
    if (!Number.isInteger(this.k) || this.k < 1) throw new RangeError(`k ${this.k}: expected a positive integer`);
    for (const seed of options.seeds) this.#offer(seed);
    this.#settle();
  }

  get done(): boolean {
    return this.#done;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Contacts to ask now (marks them in flight). Empty when done or `alpha` are in flight. */
  next(now: number): ContactInfo[] {
    const out: ContactInfo[] = [];
    if (this.#done) return out;
    // Only the k closest live candidates matter: asking farther ones cannot change the outcome.
    let live = 0;
    for (const c of this.#candidates) {
      if (this.#inFlight >= this.alpha || this.#contacted >= this.#maxContacts) break;
      if (c.state === 'failed') continue;
      if (live++ >= this.k) break;
      if (c.state !== 'new') continue;
      c.state = 'flight';
      c.sentAt = now;
      this.#inFlight++;
      this.#contacted++;
      out.push(c.info);
    }
    return out;
  }

  /** An answer from `id`: new candidates, and for FIND_VALUE maybe the value. */
  onResponse(id: NodeId, response: LookupResponse<V>): void {
    const c = this.#byId.get(id);
    if (!c || c.state !== 'flight') return;
    c.state = 'done';
    this.#inFlight--;
    this.#responded++;
    if (this.mode === 'value' && response.value !== undefined && this.#values.length < this.#quorum) this.#values.push({ value: response.value, from: c.info });
    for (const info of response.closer) this.#offer(info);
    this.#settle();
  }

  /** A request to `id` failed (error reply, closed link, timeout). */
  onFailure(id: NodeId): void {
    const c = this.#byId.get(id);
    if (!c || c.state !== 'flight') return;
    c.state = 'failed';
    this.#inFlight--;
    this.#failed++;
    this.#settle();
  }

  /** Fail requests in flight for `timeoutMs` or more; returns the contacts that timed out. */
  checkTimeouts(now: number): ContactInfo[] {
    const out: ContactInfo[] = [];
    for (const c of this.#candidates) {
      if (c.state === 'flight' && now - c.sentAt >= this.timeoutMs) out.push(c.info);
    }
    for (const info of out) this.onFailure(info.id);
    return out;
  }

  /** When the earliest request in flight times out, if any (for the caller's timer). */
  deadline(): number | undefined {
    let earliest: number | undefined;
    for (const c of this.#candidates) {
      if (c.state === 'flight' && (earliest === undefined || c.sentAt < earliest)) earliest = c.sentAt;
    }
    return earliest === undefined ? undefined : earliest + this.timeoutMs;
  }

  /** Message sizes as the caller encoded them (request bodies sent, answers received). */
  recordBytes(sent: number, received = 0): void {
    this.#bytesSent += sent;
    this.#bytesReceived += received;
  }

  get result(): LookupResult<V> {
    const closest: ContactInfo[] = [];
    for (const c of this.#candidates) {
      if (closest.length >= this.k) break;
      if (c.state === 'done') closest.push(c.info);
    }
    const result: LookupResult<V> = {
      target: this.target,
      closest,
      contacted: this.#contacted,
      responded: this.#responded,
      failed: this.#failed,
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
      values: [...this.#values],
    };
    const first = this.#values[0];
    if (first) {
      result.value = first.value;
      result.valueFrom = first.from;
    }
    return result;
  }

  #offer(info: ContactInfo): void {
    if (info.id === this.#self || this.#byId.has(info.id)) return;
    const c: Candidate = { info: { id: info.id, address: info.address, ...(info.publicKey !== undefined ? { publicKey: info.publicKey } : {}) }, distance: info.id ^ this.target, state: 'new', sentAt: 0 };
    this.#byId.set(info.id, c);
    // Binary search for the insertion point.
    let lo = 0;
    let hi = this.#candidates.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#candidates[mid]!.distance < c.distance) lo = mid + 1;
      else hi = mid;
    }
    this.#candidates.splice(lo, 0, c);
  }

  /** Decide whether the lookup is over. */
  #settle(): void {
    if (this.#done) return;
    if (this.#values.length >= this.#quorum) {
      this.#done = true;
      return;
    }
    let live = 0;
    let pending = false;
    for (const c of this.#candidates) {
      if (c.state === 'failed') continue;
      if (live++ >= this.k) break;
      if (c.state !== 'done') {
        pending = true;
        break;
      }
    }
    if (!pending) {
      this.#done = true;
      return;
    }
    // Out of budget: finish once nothing is in flight.
    if (this.#contacted >= this.#maxContacts && this.#inFlight === 0) this.#done = true;
  }
}
