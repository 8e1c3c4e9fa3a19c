import { RecordError } from './errors.js';
import { userKey } from './node-id.js';
import type { NodeId } from './node-id.js';
import { RECORD_LIFETIME_MS, sameRecord } from './record.js';
import type { LocationRecord } from './record.js';

/**
 * A supernode's share of the global index: location records by user, merged
 * per device (record.ts), with expiry and size limits. Pure state with the
 * time passed in; it stores what it is given — signature checks happen
 * before `put()` (IndexNode runs the validator), except that `check()` lets
 * the caller skip verifying an exact copy of a record already held.
 *
 * Besides the records, each user entry carries the replication bookkeeping
 * of this supernode (replication.ts): when the record last arrived, when
 * this node last republished it, and the replica set it last pushed to.
 */
export type PutStatus = 'stored' | 'replaced' | 'unchanged';

export interface StoredUser {
  readonly user: string;
  readonly key: NodeId;
  /** Device id → its latest record. */
  readonly devices: ReadonlyMap<string, LocationRecord>;
  /** Last time a new or newer record for this user arrived (epoch ms). */
  receivedAt: number;
  /** Last time this node republished the user's records itself. */
  republishedAt: number;
  /** Ids (this node's view) believed to hold the records; maintained by replication.ts. */
  replicas: NodeId[] | undefined;
}

interface UserEntry extends StoredUser {
  readonly devices: Map<string, LocationRecord>;
}

export interface RecordStoreOptions {
  /** Device records kept per user (default 8): the oldest-issued gives way to a newer device. */
  maxDevicesPerUser?: number;
  /** Users kept in all (default 200 000). */
  maxUsers?: number;
  lifetimeMs?: number;
  /** This supernode's id: when full, the user key farthest from it gives way to a closer one. */
  self?: NodeId;
}

export class RecordStore {
  readonly maxDevicesPerUser: number;
  readonly maxUsers: number;
  readonly lifetimeMs: number;
  #self: NodeId | undefined;
  #users = new Map<string, UserEntry>();
  #records = 0;
  /** No record expires before this time (a lower bound): expire() has nothing to do until then. */
  #nextExpiry = Infinity;

  constructor(options: RecordStoreOptions = {}) {
    this.maxDevicesPerUser = options.maxDevicesPerUser ?? 8;
    this.maxUsers = options.maxUsers ?? 200_000;
    this.lifetimeMs = options.lifetimeMs ?? RECORD_LIFETIME_MS;
    this.#self = options.self;
  }

  /** Users with at least one record (expired ones count until `expire()`). */
  get size(): number {
    return this.#users.size;
  }

  /** Device records in all. */
  get recordCount(): number {
    return this.#records;
  }

  /**
   * How `put(record)` would go, without storing and without the signature:
   * `unchanged` for an exact copy of the held record, `new` when it would be
   * stored. Throws what `put` would throw for replays and expired records.
   */
  check(record: LocationRecord, now: number): 'unchanged' | 'new' {
    if (record.issued + this.lifetimeMs <= now) {
      throw new RecordError('ERR_RECORD_EXPIRED', `location record of ${record.user}/${record.device.deviceId}: expired`);
    }
    const held = this.#live(this.#users.get(record.user)?.devices.get(record.device.deviceId), now);
    if (!held) return 'new';
    if (record.seq > held.seq) return 'new';
    if (record.seq === held.seq && sameRecord(record, held)) return 'unchanged';
    throw new RecordError(
      'ERR_RECORD_REPLAY',
      `location record of ${record.user}/${record.device.deviceId}: seq ${record.seq} is not above the stored ${held.seq}`,
    );
  }

  /** Store a verified record, merging per device. Throws REPLAY, EXPIRED or STORE_FULL. */
  put(record: LocationRecord, now: number): PutStatus {
    if (this.check(record, now) === 'unchanged') return 'unchanged';
    let entry = this.#users.get(record.user);
    if (!entry) {
      if (this.#users.size >= this.maxUsers) this.#makeRoom(record.user);
      entry = { user: record.user, key: userKey(record.user), devices: new Map(), receivedAt: now, republishedAt: 0, replicas: undefined };
      this.#users.set(record.user, entry);
    }
    const previous = entry.devices.get(record.device.deviceId);
    if (!previous && entry.devices.size >= this.maxDevicesPerUser) this.#dropOldestDevice(entry, record, now);
    entry.devices.set(record.device.deviceId, record);
    if (!previous) this.#records++;
    this.#nextExpiry = Math.min(this.#nextExpiry, record.issued + this.lifetimeMs);
    entry.receivedAt = now;
    return previous ? 'replaced' : 'stored';
  }

  /** A user's live (unexpired) device records, oldest login first; empty when none. */
  get(user: string, now: number): LocationRecord[] {
    const entry = this.#users.get(user);
    if (!entry) return [];
    const out: LocationRecord[] = [];
    for (const record of entry.devices.values()) if (this.#live(record, now)) out.push(record);
    return out.sort((a, b) => a.device.since - b.device.since || (a.device.deviceId < b.device.deviceId ? -1 : 1));
  }

  /** The bookkeeping entry of a user (live or not). */
  entry(user: string): StoredUser | undefined {
    return this.#users.get(user);
  }

  /** All user entries (the live view: use `get()` for the records). */
  users(): IterableIterator<StoredUser> {
    return this.#users.values();
  }

  delete(user: string): boolean {
    const entry = this.#users.get(user);
    if (!entry) return false;
    this.#records -= entry.devices.size;
    return this.#users.delete(user);
  }

  /** Drop records 72 h past their `issued`; returns how many device records went. */
  expire(now: number): number {
    if (now < this.#nextExpiry) return 0;
    let removed = 0;
    let next = Infinity;
    for (const [user, entry] of this.#users) {
      for (const [deviceId, record] of entry.devices) {
        const expires = record.issued + this.lifetimeMs;
        if (expires <= now) {
          entry.devices.delete(deviceId);
          removed++;
        } else if (expires < next) {
          next = expires;
        }
      }
      if (entry.devices.size === 0) this.#users.delete(user);
    }
    this.#records -= removed;
    this.#nextExpiry = next;
    return removed;
  }

  /**
   * Users whose key is closer to `id` than to `self` (XOR): what a node
   * hands over to a newcomer next to it, or to a neighbour when it leaves.
   */
  entriesCloserTo(id: NodeId, self: NodeId): StoredUser[] {
    const out: StoredUser[] = [];
    for (const entry of this.#users.values()) if ((entry.key ^ id) < (entry.key ^ self)) out.push(entry);
    return out;
  }

  #live(record: LocationRecord | undefined, now: number): LocationRecord | undefined {
    return record && record.issued + this.lifetimeMs > now ? record : undefined;
  }

  #dropOldestDevice(entry: UserEntry, incoming: LocationRecord, now: number): void {
    let oldest: LocationRecord | undefined;
    for (const record of entry.devices.values()) {
      if (!this.#live(record, now)) {
        oldest = record;
        break;
      }
      if (!oldest || record.issued < oldest.issued) oldest = record;
    }
    if (oldest && (oldest.issued < incoming.issued || !this.#live(oldest, now))) {
      entry.devices.delete(oldest.device.deviceId);
      this.#records--;
      return;
    }
    throw new RecordError('ERR_RECORD_STORE_FULL', `location records of ${entry.user}: already ${entry.devices.size} devices, all newer`);
  }

  #makeRoom(user: string): void {
    const self = this.#self;
    if (self === undefined) throw new RecordError('ERR_RECORD_STORE_FULL', `record store: ${this.#users.size} users, no room for ${user}`);
    const key = userKey(user);
    let farthest: UserEntry | undefined;
    for (const entry of this.#users.values()) if (!farthest || (entry.key ^ self) > (farthest.key ^ self)) farthest = entry;
    if (!farthest || (farthest.key ^ self) <= (key ^ self)) {
      throw new RecordError('ERR_RECORD_STORE_FULL', `record store: ${this.#users.size} users, all closer than ${user}`);
    }
    this.delete(farthest.user);
  }
}
