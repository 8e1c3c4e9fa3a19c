import { createHash } from 'node:crypto';
import { IndexNode } from '../../../src/overlay/index/index-node.js';
import type { IndexNodeOptions } from '../../../src/overlay/index/index-node.js';
import type { Lookup } from '../../../src/overlay/index/lookup.js';
import { FindNode, FindValue, IndexPing, Store } from '../../../src/overlay/index/messages.js';
import { idToHex, supernodeId, userKey } from '../../../src/overlay/index/node-id.js';
import type { NodeId } from '../../../src/overlay/index/node-id.js';
import type { LocationRecord } from '../../../src/overlay/index/record.js';
import type { IndexAction } from '../../../src/overlay/index/replication.js';
import type { ContactInfo } from '../../../src/overlay/index/routing-table.js';
import type { RequestDef } from '../../../src/wire/messages.js';

/**
 * An in-memory network of IndexNodes for tests: every request and answer
 * goes through JSON and the message schemas, a dead node fails requests,
 * and answers to a lookup's requests arrive in a shuffled order (seeded),
 * so that the lookup sees out-of-order and overlapping answers. The clock is
 * `net.now`, moved by the test.
 */
export class MemNetwork {
  readonly nodes: IndexNode[] = [];
  readonly byId = new Map<NodeId, IndexNode>();
  readonly dead = new Set<NodeId>();
  now: number;
  /** Highest number of requests one lookup had in flight at once. */
  maxInFlight = 0;
  messages = 0;
  #seed: number;
  #options: Omit<IndexNodeOptions, 'self'>;

  constructor(options: Omit<IndexNodeOptions, 'self'> & { now: number; seed?: number }) {
    this.now = options.now;
    this.#seed = options.seed ?? 1;
    this.#options = options;
  }

  /** Deterministic pseudo-random numbers (mulberry32). */
  random(): number {
    this.#seed = (this.#seed + 0x6d2b79f5) | 0;
    let t = this.#seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(this.random() * 256)));

  /** Create a supernode and join it through a random live node (own-id lookup, then bucket refreshes). */
  addNode(): IndexNode {
    const key = createHash('sha256').update(`test key ${this.nodes.length} ${this.#seed}`).digest();
    const self: ContactInfo = { id: supernodeId(key), address: `10.0.${this.nodes.length >> 8}.${this.nodes.length & 255}:4000`, publicKey: key.toString('base64') };
    const node = new IndexNode({ ...this.#options, self, random: this.randomBytes });
    const live = this.nodes.filter((n) => !this.dead.has(n.id));
    this.nodes.push(node);
    this.byId.set(node.id, node);
    if (live.length > 0) {
      const seed = live[Math.floor(this.random() * live.length)]!;
      node.contactSeen(seed.self, this.now);
      this.runLookup(node, node.findNode(node.id, this.now));
      for (const target of node.joinRefreshTargets()) this.runLookup(node, node.findNode(target, this.now));
    }
    return node;
  }

  /** One request through JSON and the schemas. Undefined when the target is dead. */
  request<Req, Res>(from: IndexNode, to: ContactInfo, def: RequestDef<Req, Res>, body: Req): Res | undefined {
    this.messages++;
    const target = this.byId.get(to.id);
    if (!target || this.dead.has(to.id)) return undefined;
    const wireBody = def.request.parse(JSON.parse(JSON.stringify(body)));
    const handled = this.#handle(target, from.self, def, wireBody);
    this.exec(target, handled.actions);
    return def.response.parse(JSON.parse(JSON.stringify(handled.response)));
  }

  #handle<Req, Res>(target: IndexNode, from: ContactInfo, def: RequestDef<Req, Res>, body: Req): { response: Res; actions: IndexAction[] } {
    const handled = def.type === FindNode.type ? target.handleFindNode(from, body as never, this.now)
      : def.type === FindValue.type ? target.handleFindValue(from, body as never, this.now)
        : def.type === Store.type ? target.handleStore(from, body as never, this.now)
          : target.handlePing(from, {}, this.now);
    return handled as unknown as { response: Res; actions: IndexAction[] };
  }

  /** Drive a lookup to its end; answers come back in random order. */
  runLookup<V>(origin: IndexNode, lookup: Lookup<V>, user?: string): Lookup<V> {
    const pending: ContactInfo[] = [];
    for (;;) {
      pending.push(...lookup.next(this.now));
      this.maxInFlight = Math.max(this.maxInFlight, lookup.inFlight);
      if (lookup.done || pending.length === 0) break;
      const [to] = pending.splice(Math.floor(this.random() * pending.length), 1);
      if (!to) break;
      if (lookup.mode === 'value') {
        const answer = this.request(origin, to, FindValue, { user: user! });
        if (answer) {
          lookup.onResponse(to.id, origin.findValueAnswer(user!, answer, this.now) as never);
          this.exec(origin, origin.contactSeen(to, this.now));
        } else {
          lookup.onFailure(to.id);
          this.exec(origin, origin.contactFailed(to.id, this.now));
        }
      } else {
        const answer = this.request(origin, to, FindNode, { target: idToHex(lookup.target) });
        if (answer) {
          lookup.onResponse(to.id, origin.findNodeAnswer(answer));
          this.exec(origin, origin.contactSeen(to, this.now));
        } else {
          lookup.onFailure(to.id);
          this.exec(origin, origin.contactFailed(to.id, this.now));
        }
      }
    }
    return lookup;
  }

  /** Carry out actions returned by a node (pings, STOREs, republish and refresh lookups). */
  exec(node: IndexNode, actions: IndexAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'ping': {
          const ok = this.request(node, action.contact, IndexPing, {});
          this.exec(node, ok ? node.contactSeen(action.contact, this.now) : node.contactFailed(action.contact.id, this.now));
          break;
        }
        case 'store': {
          const ok = this.request(node, action.to, Store, { records: action.records });
          this.exec(node, ok ? node.contactSeen(action.to, this.now) : node.contactFailed(action.to.id, this.now));
          break;
        }
        case 'republish': {
          const lookup = this.runLookup(node, node.findNode(action.key, this.now));
          this.exec(node, node.publish(node.store.get(action.user, this.now), lookup.result.closest, this.now));
          break;
        }
        case 'refresh':
          this.runLookup(node, node.findNode(action.target, this.now));
          break;
      }
    }
  }

  /** A device's supernode publishes its records: verify, look up the key, store on the k closest. */
  publish(origin: IndexNode, records: LocationRecord[]): void {
    const verified = records.map((r) => origin.validate(r, this.now));
    const lookup = this.runLookup(origin, origin.findNode(userKey(verified[0]!.user), this.now));
    this.exec(origin, origin.publish(verified, lookup.result.closest, this.now));
  }

  /** A search as a supernode runs it for an attached node. */
  search(origin: IndexNode, user: string): { records: LocationRecord[]; contacted: number } {
    const start = origin.search(user, this.now);
    if (start.local) return { records: start.local, contacted: 0 };
    const lookup = this.runLookup(origin, start.lookup!, user);
    this.exec(origin, origin.readRepair(lookup.result.values));
    return { records: origin.searchResult(lookup.result.values), contacted: lookup.result.contacted };
  }

  /** One maintenance round on every live node. */
  maintain(): void {
    for (const node of this.nodes) if (!this.dead.has(node.id)) this.exec(node, node.maintenance(this.now));
  }

  live(): IndexNode[] {
    return this.nodes.filter((n) => !this.dead.has(n.id));
  }

  /** Live nodes holding a live record of `user`. */
  holders(user: string): IndexNode[] {
    return this.live().filter((n) => n.store.get(user, this.now).length > 0);
  }

  /** The k live nodes closest to `user`'s key. */
  closestLive(user: string, k: number): IndexNode[] {
    const key = userKey(user);
    return this.live().sort((a, b) => ((a.id ^ key) < (b.id ^ key) ? -1 : 1)).slice(0, k);
  }
}
