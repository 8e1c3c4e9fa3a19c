import type { NodeId } from '../index/node-id.js';
import type { ContactInfo } from '../index/routing-table.js';
import { RECORD_LIFETIME_MS } from '../index/record.js';
import { PresenceError, storedForm, supersedes } from './update.js';
import type { PresenceUpdate } from './update.js';

/**
 * Pure state for presence (no I/O, time passed in), used on both sides:
 *
 * - `PresenceTable`: the latest update of each device of each user, merged
 *   with `supersedes()`. A supernode responsible for a user keeps its
 *   users' here; a supernode whose phones watch a user keeps the copy it
 *   was told about; a phone keeps its buddies'.
 * - `Subscriptions`: which supernodes asked to be told about which users
 *   (kept by the responsible supernodes), each until it expires unless
 *   renewed.
 */
export interface PresenceTableOptions {
  /** Users kept (default 200,000). A new user beyond that is refused. */
  maxUsers?: number;
  /** Devices per user (default 8): the oldest update gives way. */
  maxDevicesPerUser?: number;
}

export class PresenceTable {
  readonly maxUsers: number;
  readonly maxDevicesPerUser: number;
  #users = new Map<string, Map<string, PresenceUpdate>>();

  constructor(options: PresenceTableOptions = {}) {
    this.maxUsers = options.maxUsers ?? 200_000;
    this.maxDevicesPerUser = options.maxDevicesPerUser ?? 8;
  }

  get size(): number {
    return this.#users.size;
  }

  /** A user's device updates (any order); empty when none. */
  get(user: string): PresenceUpdate[] {
    return [...(this.#users.get(user)?.values() ?? [])];
  }

  device(user: string, deviceId: string): PresenceUpdate | undefined {
    return this.#users.get(user)?.get(deviceId);
  }

  users(): IterableIterator<string> {
    return this.#users.keys();
  }

  /**
   * Keep `update` when it supersedes what is held for its device. Returns
   * true when it did (the news is worth passing on). Throws
   * `ERR_PRESENCE_FULL` for a new user when the table is full.
   */
  merge(update: PresenceUpdate): boolean {
    let devices = this.#users.get(update.user);
    const held = devices?.get(update.deviceId);
    if (!supersedes(update, held)) return false;
    if (!devices) {
      if (this.#users.size >= this.maxUsers) throw new PresenceError('ERR_PRESENCE_FULL', `presence table: ${this.#users.size} users, no room for ${update.user}`);
      devices = new Map();
      this.#users.set(update.user, devices);
    }
    if (!devices.has(update.deviceId) && devices.size >= this.maxDevicesPerUser) {
      let oldest: PresenceUpdate | undefined;
      for (const held of devices.values()) if (!oldest || held.issued < oldest.issued) oldest = held;
      if (oldest) devices.delete(oldest.deviceId);
    }
    devices.set(update.deviceId, storedForm(update, held));
    return true;
  }

  delete(user: string): boolean {
    return this.#users.delete(user);
  }

  /** Drop updates older than the record lifetime (72 h); returns how many went. */
  expire(now: number, lifetimeMs = RECORD_LIFETIME_MS): number {
    let removed = 0;
    for (const [user, devices] of this.#users) {
      for (const [deviceId, update] of devices) {
        if (update.issued + lifetimeMs <= now) {
          devices.delete(deviceId);
          removed++;
        }
      }
      if (devices.size === 0) this.#users.delete(user);
    }
    return removed;
  }
}

export interface SubscriptionsOptions {
  /** Subscribers per user (default 4096). */
  maxPerUser?: number;
  /** Subscriptions in all (default 500,000). */
  maxTotal?: number;
}

export class Subscriptions {
  #byUser = new Map<string, Map<NodeId, { contact: ContactInfo; expires: number }>>();
  #total = 0;
  #maxPerUser: number;
  #maxTotal: number;

  constructor(options: SubscriptionsOptions = {}) {
    this.#maxPerUser = options.maxPerUser ?? 4096;
    this.#maxTotal = options.maxTotal ?? 500_000;
  }

  /** Subscriptions held (user × subscriber). */
  get size(): number {
    return this.#total;
  }

  /** Add or renew `contact`'s subscription to `user` until `expires`. Throws `ERR_PRESENCE_FULL` over the limits. */
  add(user: string, contact: ContactInfo, expires: number): void {
    let subscribers = this.#byUser.get(user);
    const held = subscribers?.get(contact.id);
    if (held) {
      held.contact = contact;
      held.expires = Math.max(held.expires, expires);
      return;
    }
    if (this.#total >= this.#maxTotal) throw new PresenceError('ERR_PRESENCE_FULL', `presence subscriptions: ${this.#total} held, no room for more`);
    if ((subscribers?.size ?? 0) >= this.#maxPerUser) throw new PresenceError('ERR_PRESENCE_FULL', `presence subscriptions of ${user}: ${this.#maxPerUser} held, no room for more`);
    if (!subscribers) {
      subscribers = new Map();
      this.#byUser.set(user, subscribers);
    }
    subscribers.set(contact.id, { contact, expires });
    this.#total++;
  }

  /** The live subscribers of `user`. */
  of(user: string, now: number): ContactInfo[] {
    const out: ContactInfo[] = [];
    for (const s of this.#byUser.get(user)?.values() ?? []) if (s.expires > now) out.push(s.contact);
    return out;
  }

  remove(user: string, id: NodeId): void {
    const subscribers = this.#byUser.get(user);
    if (subscribers?.delete(id)) {
      this.#total--;
      if (subscribers.size === 0) this.#byUser.delete(user);
    }
  }

  /** Drop every subscription of one subscriber (it cannot be reached). */
  removeSubscriber(id: NodeId): number {
    let removed = 0;
    for (const user of [...this.#byUser.keys()]) {
      const before = this.#total;
      this.remove(user, id);
      removed += before - this.#total;
    }
    return removed;
  }

  expire(now: number): number {
    let removed = 0;
    for (const [user, subscribers] of this.#byUser) {
      for (const [id, s] of subscribers) {
        if (s.expires <= now) {
          subscribers.delete(id);
          removed++;
        }
      }
      if (subscribers.size === 0) this.#byUser.delete(user);
    }
    this.#total -= removed;
    return removed;
  }
}
