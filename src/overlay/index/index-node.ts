import { randomBytes } from 'node:crypto';
import { normaliseUserName } from '../../login/user-name.js';
import { RecordError } from './errors.js';
import { Lookup } from './lookup.js';
import type { LookupMode } from './lookup.js';
import { contactFromWire, contactToWire, MAX_RECORDS_PER_MESSAGE } from './messages.js';
import type {
  FindNodeRequest, FindNodeResponse, FindValueRequest, FindValueResponse, IndexPingResponse, StoreRequest, StoreResponse, StoreStatus,
} from './messages.js';
import { idFromHex, idToHex, userKey } from './node-id.js';
import type { NodeId } from './node-id.js';
import { parseLocationRecord } from './record.js';
import type { LocationRecord, RecordVerifier } from './record.js';
import { RecordStore } from './record-store.js';
import type { RecordStoreOptions } from './record-store.js';
import { replicaSet, replicationActions, republishActions } from './replication.js';
import type { IndexAction } from './replication.js';
import { RoutingTable } from './routing-table.js';
import type { ContactInfo } from './routing-table.js';

/**
 * A supernode's part in the global index, transport-agnostic: routing table,
 * record store, the four RPC handlers, lookups, publishing and maintenance.
 * Handlers take decoded message bodies and the current time and return the
 * answer plus actions (pings, STOREs, lookups) for the caller to carry out;
 * nothing here opens a socket or reads a clock. Link wiring, and the
 * simulation in bench/index-sim.ts, drive the same object.
 *
 * Requests from supernodes pass `from` (the authenticated peer): it is
 * entered in the routing table, which is how supernodes learn of each
 * other. Requests from ordinary nodes pass `undefined`.
 */
export interface IndexNodeOptions {
  /** This supernode: id = supernodeId(Noise key), the address it serves on, its Noise key. */
  self: ContactInfo;
  /**
   * Record checks beyond shape, which IndexNode always checks itself
   * (normally `recordVerifier({loginServerKey, network})`).
   */
  verify: RecordVerifier;
  /** Replication factor and lookup width (default 8). */
  k?: number;
  /** Parallel lookup requests (default 3). */
  alpha?: number;
  /** Routing-table bucket size (default 16). */
  bucketSize?: number;
  maxFailures?: number;
  /** Lookup request timeout (default 2 s). */
  requestTimeoutMs?: number;
  /** Republish records not received or republished for this long (default 1 h). */
  republishIntervalMs?: number;
  /** Refresh buckets no lookup went through for this long (default 1 h). */
  refreshIntervalMs?: number;
  /** Ping contacts silent for this long (default 15 min). */
  contactCheckMs?: number;
  /** Holders that push a record to a new replica (default 2, see replication.ts). */
  pushers?: number;
  /**
   * Holders a search hears from before it ends (default 2): the freshest
   * record per device wins and a holder that answered with an older one is
   * repaired (`readRepair`). 1 ends at the first answer with records.
   */
  searchQuorum?: number;
  store?: Omit<RecordStoreOptions, 'self'>;
  random?: (n: number) => Uint8Array;
}

export interface Handled<R> {
  response: R;
  actions: IndexAction[];
}

export interface StoreResult {
  deviceId: string;
  status: StoreStatus;
  code?: string;
}

export interface SearchStart {
  /** The records when this supernode holds them itself (no lookup needed). */
  local?: LocationRecord[];
  /** Otherwise a FIND_VALUE lookup to drive; feed answers through `findValueAnswer()`. */
  lookup?: Lookup<LocationRecord[]>;
}

export class IndexNode {
  readonly self: ContactInfo;
  readonly id: NodeId;
  readonly k: number;
  readonly alpha: number;
  readonly table: RoutingTable;
  readonly store: RecordStore;
  #verify: RecordVerifier;
  #timeoutMs: number;
  #republishMs: number;
  #refreshMs: number;
  #contactCheckMs: number;
  #pushers: number;
  #searchQuorum: number;
  #random: (n: number) => Uint8Array;
  #replicatedAt = -1;

  constructor(options: IndexNodeOptions) {
    this.self = options.self;
    this.id = options.self.id;
    this.k = options.k ?? 8;
    this.alpha = options.alpha ?? 3;
    this.#verify = options.verify;
    this.#timeoutMs = options.requestTimeoutMs ?? 2_000;
    this.#republishMs = options.republishIntervalMs ?? 3_600_000;
    this.#refreshMs = options.refreshIntervalMs ?? 3_600_000;
    this.#contactCheckMs = options.contactCheckMs ?? 15 * 60_000;
    this.#pushers = options.pushers ?? 2;
    this.#searchQuorum = options.searchQuorum ?? 2;
    this.#random = options.random ?? randomBytes;
    this.table = new RoutingTable({ self: this.id, bucketSize: options.bucketSize ?? 16, ...(options.maxFailures !== undefined ? { maxFailures: options.maxFailures } : {}) });
    this.store = new RecordStore({ ...options.store, self: this.id });
  }

  // ---- Requests from others ------------------------------------------------

  handleFindNode(from: ContactInfo | undefined, body: FindNodeRequest, now: number): Handled<FindNodeResponse> {
    const actions = from ? this.contactSeen(from, now) : [];
    return { response: { closer: this.#closer(idFromHex(body.target), from) }, actions };
  }

  handleFindValue(from: ContactInfo | undefined, body: FindValueRequest, now: number): Handled<FindValueResponse> {
    const actions = from ? this.contactSeen(from, now) : [];
    const user = normaliseUserName(body.user);
    const records = this.store.get(user, now);
    if (records.length > 0) return { response: { records: records.slice(-MAX_RECORDS_PER_MESSAGE), closer: [] }, actions };
    return { response: { closer: this.#closer(userKey(user), from) }, actions };
  }

  handleStore(from: ContactInfo | undefined, body: StoreRequest, now: number): Handled<StoreResponse> {
    const actions = from ? this.contactSeen(from, now) : [];
    return { response: { results: body.records.map((r) => this.accept(r, now)) }, actions };
  }

  handlePing(from: ContactInfo | undefined, _body: Record<string, never>, now: number): Handled<IndexPingResponse> {
    return { response: { id: idToHex(this.id) }, actions: from ? this.contactSeen(from, now) : [] };
  }

  /**
   * Verify and store one untrusted record. An exact copy of a held record is
   * answered `unchanged` without verifying it again. Never throws for a bad
   * record: it is `refused` with its code, and nothing stored is touched.
   */
  accept(value: unknown, now: number): StoreResult {
    let deviceId = '';
    try {
      const record = parseLocationRecord(value);
      deviceId = record.device.deviceId;
      // Cheap checks first: an exact copy or a replay is settled without the signatures.
      if (this.store.check(record, now) === 'unchanged') {
        this.store.entry(record.user)!.receivedAt = now;
        return { deviceId, status: 'unchanged' };
      }
      this.#verify(record, now);
      const status = this.store.put(record, now);
      const entry = this.store.entry(record.user)!;
      entry.replicas ??= replicaSet(entry.key, this.table, this.k, this.self).map((c) => c.id);
      return { deviceId, status };
    } catch (err) {
      if (err instanceof RecordError) return { deviceId, status: 'refused', code: err.code };
      throw err;
    }
  }

  // ---- Outcomes of this node's own requests ---------------------------------

  /** A supernode answered or wrote to us. May ask to ping a bucket's oldest contact. */
  contactSeen(info: ContactInfo, now: number): IndexAction[] {
    const result = this.table.add(info, now);
    return result.status === 'pending' ? [{ type: 'ping', contact: result.ping }] : [];
  }

  /** A request to a supernode failed or timed out. */
  contactFailed(id: NodeId, now: number): IndexAction[] {
    this.table.failed(id, now);
    return [];
  }

  // ---- Lookups ------------------------------------------------------------------

  /** A lookup seeded from this node's routing table (it also counts as a refresh of the target's bucket). */
  lookup<V = unknown>(target: NodeId, mode: LookupMode, now: number): Lookup<V> {
    this.table.touch(target, now);
    return new Lookup<V>(target, {
      seeds: this.table.closest(target, this.k), mode, alpha: this.alpha, k: this.k, self: this.id, timeoutMs: this.#timeoutMs, quorum: this.#searchQuorum,
    });
  }

  findNode(target: NodeId, now: number): Lookup {
    return this.lookup(target, 'node', now);
  }

  /**
   * Where a search starts: this node's own store when it is one of the k
   * closest to the user's key as far as it knows (a replica, kept up to date
   * by publishes), else a FIND_VALUE lookup — a copy left on a node outside
   * the replica set may be stale.
   */
  search(user: string, now: number): SearchStart {
    const name = normaliseUserName(user);
    const key = userKey(name);
    const local = this.store.get(name, now);
    if (local.length > 0 && replicaSet(key, this.table, this.k, this.self).some((c) => c.id === this.id)) return { local };
    return { lookup: this.lookup<LocationRecord[]>(key, 'value', now) };
  }

  /** Contacts in a FIND_NODE answer. */
  findNodeAnswer(response: FindNodeResponse): { closer: ContactInfo[] } {
    return { closer: response.closer.map(contactFromWire) };
  }

  /**
   * A FIND_VALUE answer as lookup input. Records are verified here (the
   * answering supernode is not trusted); records of other users and those
   * that fail verification are dropped, and an answer left without records
   * counts as "no value".
   */
  findValueAnswer(user: string, response: FindValueResponse, now: number): { closer: ContactInfo[]; value?: LocationRecord[] } {
    const closer = response.closer.map(contactFromWire);
    const name = normaliseUserName(user);
    const value: LocationRecord[] = [];
    for (const raw of response.records ?? []) {
      try {
        const record = this.validate(raw, now);
        if (record.user === name) value.push(record);
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
      }
    }
    return value.length > 0 ? { closer, value } : { closer };
  }

  /**
   * The answer to a search: the freshest record of each device among the
   * values collected (`lookup.result.values`), oldest login first.
   */
  searchResult(values: ReadonlyArray<{ value: LocationRecord[] }>): LocationRecord[] {
    const best = new Map<string, LocationRecord>();
    for (const { value } of values) {
      for (const record of value) {
        const held = best.get(record.device.deviceId);
        if (!held || record.seq > held.seq) best.set(record.device.deviceId, record);
      }
    }
    return [...best.values()].sort((a, b) => a.device.since - b.device.since || (a.device.deviceId < b.device.deviceId ? -1 : 1));
  }

  /**
   * Read repair after a search: holders that answered without a device's
   * freshest record (older `seq`, or none) get it in a STORE. Keeps a stale
   * copy — left on a node outside the current replica set, or a replica that
   * missed one device's refresh — from being served for up to 72 h.
   */
  readRepair(values: ReadonlyArray<{ value: LocationRecord[]; from: ContactInfo }>): IndexAction[] {
    const best = this.searchResult(values);
    const actions: IndexAction[] = [];
    for (const { value, from } of values) {
      const missing = best.filter((r) => !value.some((v) => v.device.deviceId === r.device.deviceId && v.seq >= r.seq));
      if (missing.length > 0) actions.push({ type: 'store', to: from, user: missing[0]!.user, records: missing });
    }
    return actions;
  }

  /** Check an untrusted record (e.g. from an attached device) without storing it. */
  validate(value: unknown, now: number): LocationRecord {
    const record = parseLocationRecord(value);
    this.#verify(record, now);
    return record;
  }

  /**
   * Store verified records of one user on the k closest nodes: those a
   * FIND_NODE lookup for the user's key found, plus this node if it is
   * among them (stored locally at once). Returns the STOREs to send.
   */
  publish(records: LocationRecord[], closest: readonly ContactInfo[], now: number): IndexAction[] {
    const first = records[0];
    if (!first) return [];
    const key = userKey(first.user);
    const near = [...closest, this.self].sort((a, b) => ((a.id ^ key) < (b.id ^ key) ? -1 : 1)).slice(0, this.k);
    if (near.some((c) => c.id === this.id)) {
      for (const record of records) {
        try {
          this.store.put(record, now);
        } catch (err) {
          if (!(err instanceof RecordError)) throw err;
        }
      }
    }
    const entry = this.store.entry(first.user);
    if (entry) {
      entry.republishedAt = now;
      entry.replicas = near.map((c) => c.id);
    }
    return near.filter((c) => c.id !== this.id).map((to) => ({ type: 'store', to, user: first.user, records }));
  }

  // ---- Maintenance ----------------------------------------------------------------

  /**
   * Periodic work (call every minute or so): drop expired records, ping
   * silent contacts, re-replicate after routing changes, republish what is
   * due, refresh idle buckets. Call `replicate()` once more after carrying
   * out the pings, so that contacts they removed are acted on in the same
   * round rather than the next.
   */
  maintenance(now: number): IndexAction[] {
    this.store.expire(now);
    const actions: IndexAction[] = this.table.staleContacts(now, this.#contactCheckMs).map((contact) => ({ type: 'ping', contact }));
    actions.push(...this.replicate(now));
    actions.push(...republishActions(this.store, now, this.#republishMs));
    for (const target of this.table.refreshTargets(now, this.#refreshMs, this.#random)) actions.push({ type: 'refresh', target });
    return actions;
  }

  /** Re-replication after the routing table changed (no-op when it did not). */
  replicate(now: number): IndexAction[] {
    if (this.table.version === this.#replicatedAt) return [];
    this.#replicatedAt = this.table.version;
    return replicationActions(this.store, this.table, now, { k: this.k, self: this.self, pushers: this.#pushers });
  }

  /**
   * Joining: look up `id` through a known supernode first, then each of
   * these targets (one per bucket farther than the nearest neighbour found).
   */
  joinRefreshTargets(): NodeId[] {
    return this.table.joinRefreshTargets(this.#random);
  }

  #closer(target: NodeId, from: ContactInfo | undefined): FindNodeResponse['closer'] {
    const options = from ? { exclude: from.id } : {};
    return this.table.closest(target, this.k, options).map(contactToWire);
  }
}
