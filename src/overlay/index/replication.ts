import type { NodeId } from './node-id.js';
import type { LocationRecord } from './record.js';
import type { RecordStore } from './record-store.js';
import type { ContactInfo, RoutingTable } from './routing-table.js';

/**
 * Keeping k copies of every record (DESIGN.md: "re-replicated when
 * supernodes join or leave"). Pure functions over a node's store and
 * routing table that return actions; the caller sends the messages.
 *
 * Each stored user carries `replicas`: the k ids closest to the user's key
 * as this node saw them when it last took stock (at arrival, after a
 * publish, after a replication pass). A replication pass recomputes that set
 * from the routing table (plus this node) and compares:
 *
 * - **join**: a newcomer whose id falls among the k closest enters the set;
 * - **departure**: a contact removed from the table (failed pings, failed
 *   requests) leaves it, and the next closest node enters.
 *
 * Either way the entrants lack the record and get a STORE. To avoid every
 * holder pushing the same record, only the `pushers` (default 2) holders
 * closest to the key push — each node decides from its own view whether it
 * is one of them (believed holders = members of the new set that were in
 * the old one). A wrong guess costs one duplicate STORE (answered
 * `unchanged`) or is repaired by the hourly republish below.
 *
 * **Republish** (Kademlia §2.5): a holder that has neither received nor
 * republished a user's records for `intervalMs` (default 1 h) looks the key
 * up again and stores to the k closest it finds. A STORE received from
 * another holder counts as received, so in a quiet network one holder per
 * key republishes each hour, not k.
 */
export type IndexAction =
  /** Ping this contact; report the outcome with IndexNode.contactSeen / contactFailed. */
  | { type: 'ping'; contact: ContactInfo }
  /** Send STORE {records} to `to`. */
  | { type: 'store'; to: ContactInfo; user: string; records: LocationRecord[] }
  /** Run a FIND_NODE lookup for `key`, then IndexNode.publish(store.get(user), result.closest). */
  | { type: 'republish'; user: string; key: NodeId }
  /** Bucket refresh: run a FIND_NODE lookup for `target`. */
  | { type: 'refresh'; target: NodeId };

/**
 * The k nodes closest to `key` among the table's live contacts and this
 * node (`self`, whose id must be the table's), closest first.
 */
export function replicaSet(key: NodeId, table: RoutingTable, k: number, self: ContactInfo): ContactInfo[] {
  const near: ContactInfo[] = table.closest(key, k);
  const selfDistance = self.id ^ key;
  let at = near.findIndex((c) => (c.id ^ key) > selfDistance);
  if (at < 0) at = near.length;
  if (at < k) near.splice(at, 0, self);
  if (near.length > k) near.length = k;
  return near;
}

export interface ReplicationOptions {
  k: number;
  /** This node (its id is the table's `self`). */
  self: ContactInfo;
  /** Holders closest to the key that push to entrants (default 2). */
  pushers?: number;
}

/** STORE actions for nodes that newly belong to a record's replica set. Updates `replicas`. */
export function replicationActions(store: RecordStore, table: RoutingTable, now: number, options: ReplicationOptions): IndexAction[] {
  const pushers = options.pushers ?? 2;
  const actions: IndexAction[] = [];
  for (const entry of store.users()) {
    const set = replicaSet(entry.key, table, options.k, options.self);
    const previous = entry.replicas;
    entry.replicas = set.map((c) => c.id);
    if (previous === undefined) continue;
    const known = new Set(previous);
    const entrants = set.filter((c) => c.id !== table.self && !known.has(c.id));
    if (entrants.length === 0) continue;
    // Believed holders closer to the key than this node: if `pushers` of them exist, they push.
    const mine = table.self ^ entry.key;
    let closerHolders = 0;
    for (const c of set) if (c.id !== table.self && known.has(c.id) && (c.id ^ entry.key) < mine) closerHolders++;
    if (closerHolders >= pushers) continue;
    const records = store.get(entry.user, now);
    if (records.length === 0) continue;
    for (const to of entrants) actions.push({ type: 'store', to, user: entry.user, records });
  }
  return actions;
}

/** Users due for an hourly republish by this node. */
export function republishActions(store: RecordStore, now: number, intervalMs: number): IndexAction[] {
  const actions: IndexAction[] = [];
  for (const entry of store.users()) {
    if (now - Math.max(entry.receivedAt, entry.republishedAt) < intervalMs) continue;
    if (store.get(entry.user, now).length === 0) continue;
    actions.push({ type: 'republish', user: entry.user, key: entry.key });
  }
  return actions;
}
