/**
 * An in-process simulated network for the index simulation (bench/index-sim):
 * a virtual clock, per-supernode link latencies and dead supernodes, no
 * sockets. It only moves messages: every handler, lookup, routing-table and
 * store decision is made by the real IndexNode code.
 *
 * Each request body and each answer is encoded to JSON: its length is the
 * byte count reported. By default the receiver then gets the sender's object
 * itself — safe because nothing is kept from a message without going through
 * a zod parse, which copies (records are stored as the copy made by
 * parseLocationRecord; contacts are rebuilt by contactFromWire). With
 * `wireCheck` every body is decoded from the JSON and checked against the
 * message schemas, as a Link would (slower).
 *
 * Timing: a request from a to b arrives after oneWay(a, b) and its answer
 * comes back after the same time plus `processingMs`; a request to a dead
 * supernode fails after the lookup's timeout. A lookup runs its own little
 * event loop from `start` (lookups do not interleave with each other: the
 * handlers run when the request is sent, at the time it arrives).
 */
import type { IndexNode } from '../../src/overlay/index/index-node.js';
import type { Lookup } from '../../src/overlay/index/lookup.js';
import { FindNode, FindValue, IndexPing, Store } from '../../src/overlay/index/messages.js';
import { idToHex, userKey } from '../../src/overlay/index/node-id.js';
import type { NodeId } from '../../src/overlay/index/node-id.js';
import type { LocationRecord } from '../../src/overlay/index/record.js';
import type { IndexAction } from '../../src/overlay/index/replication.js';
import type { ContactInfo } from '../../src/overlay/index/routing-table.js';
import type { RequestDef } from '../../src/wire/messages.js';

export interface SimNode {
  node: IndexNode;
  alive: boolean;
  /** One-way access latency of this supernode (ms); a link costs the sum of both ends. */
  latencyMs: number;
}

export interface Traffic {
  messages: number;
  bytes: number;
  failed: number;
}

export interface LookupRun<V> {
  lookup: Lookup<V>;
  /** Virtual time from the first request to the end of the lookup (ms). */
  elapsedMs: number;
  /** Request and answer bytes of this lookup. */
  bytes: number;
}

/** Deterministic PRNG (mulberry32). */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed | 0;
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  bytes = (n: number): Buffer => {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  };

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }

  shuffle<T>(list: T[]): T[] {
    for (let i = list.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
    return list;
  }
}

export type TrafficKind = 'join' | 'publish' | 'search' | 'repair' | 'maintenance';

export class SimNetwork {
  readonly nodes: SimNode[] = [];
  readonly byId = new Map<NodeId, SimNode>();
  readonly traffic: Record<TrafficKind, Traffic> = {
    join: { messages: 0, bytes: 0, failed: 0 },
    publish: { messages: 0, bytes: 0, failed: 0 },
    search: { messages: 0, bytes: 0, failed: 0 },
    repair: { messages: 0, bytes: 0, failed: 0 },
    maintenance: { messages: 0, bytes: 0, failed: 0 },
  };
  /** Messages and bytes by message type (`index.store` ...), all kinds together. */
  readonly byType = new Map<string, Traffic>();
  now: number;
  processingMs = 1;
  wireCheck: boolean;

  constructor(options: { now: number; wireCheck?: boolean }) {
    this.now = options.now;
    this.wireCheck = options.wireCheck ?? false;
  }

  add(node: IndexNode, latencyMs: number): SimNode {
    const sim: SimNode = { node, alive: true, latencyMs };
    this.nodes.push(sim);
    this.byId.set(node.id, sim);
    return sim;
  }

  live(): SimNode[] {
    return this.nodes.filter((n) => n.alive);
  }

  oneWay(a: SimNode, b: SimNode): number {
    return a.latencyMs + b.latencyMs;
  }

  /**
   * One request, handled by the target at `at`. Returns the decoded answer
   * and the bytes both ways, or undefined for a dead or unknown target.
   */
  request<Req, Res>(from: SimNode, to: ContactInfo, def: RequestDef<Req, Res>, body: Req, at: number, kind: TrafficKind): { response?: Res; bytes: number; target?: SimNode } {
    const traffic = this.traffic[kind];
    let typed = this.byType.get(`${kind} ${def.type}`);
    if (!typed) {
      typed = { messages: 0, bytes: 0, failed: 0 };
      this.byType.set(`${kind} ${def.type}`, typed);
    }
    const reqText = JSON.stringify(body);
    traffic.messages++;
    traffic.bytes += reqText.length;
    typed.messages++;
    typed.bytes += reqText.length;
    const target = this.byId.get(to.id);
    if (!target || !target.alive) {
      traffic.failed++;
      typed.failed++;
      return { bytes: reqText.length };
    }
    const decoded = this.wireCheck ? def.request.parse(JSON.parse(reqText)) : body;
    const handled = handle(target.node, from.node.self, def, decoded, at);
    this.exec(target, handled.actions, at, kind);
    const resText = JSON.stringify(handled.response);
    traffic.bytes += resText.length;
    typed.bytes += resText.length;
    const answer = this.wireCheck ? def.response.parse(JSON.parse(resText)) : handled.response;
    return { response: answer, bytes: reqText.length + resText.length, target };
  }

  /** Drive a lookup to its end in virtual time starting at `start`. */
  runLookup<V>(origin: SimNode, lookup: Lookup<V>, start: number, kind: TrafficKind, user?: string): LookupRun<V> {
    const node = origin.node;
    const events: Array<{ at: number; to: ContactInfo; answer?: unknown }> = [];
    let now = start;
    let bytes = 0;
    for (;;) {
      for (const to of lookup.next(now)) {
        const target = this.byId.get(to.id);
        const arrive = now + (target ? this.oneWay(origin, target) : 0);
        const sent = lookup.mode === 'value'
          ? this.request(origin, to, FindValue, { user: user! }, arrive, kind)
          : this.request(origin, to, FindNode, { target: idToHex(lookup.target) }, arrive, kind);
        bytes += sent.bytes;
        lookup.recordBytes(sent.bytes);
        if (sent.response === undefined) events.push({ at: now + lookup.timeoutMs, to });
        else events.push({ at: arrive + this.processingMs + this.oneWay(origin, sent.target!), to, answer: sent.response });
      }
      if (lookup.done || events.length === 0) break;
      let first = 0;
      for (let i = 1; i < events.length; i++) if (events[i]!.at < events[first]!.at) first = i;
      const event = events.splice(first, 1)[0]!;
      now = event.at;
      if (event.answer === undefined) {
        lookup.onFailure(event.to.id);
        this.exec(origin, node.contactFailed(event.to.id, now), now, kind);
      } else {
        const parsed = lookup.mode === 'value'
          ? node.findValueAnswer(user!, event.answer as Parameters<IndexNode['findValueAnswer']>[1], now)
          : node.findNodeAnswer(event.answer as Parameters<IndexNode['findNodeAnswer']>[0]);
        lookup.onResponse(event.to.id, parsed as never);
        this.exec(origin, node.contactSeen(event.to, now), now, kind);
      }
    }
    return { lookup, elapsedMs: now - start, bytes };
  }

  /** Carry out a node's actions at time `at` (pings, STOREs, republish and refresh lookups). */
  exec(origin: SimNode, actions: IndexAction[], at: number, kind: TrafficKind): void {
    const node = origin.node;
    for (const action of actions) {
      switch (action.type) {
        case 'ping': {
          const { response } = this.request(origin, action.contact, IndexPing, {}, at, kind);
          this.exec(origin, response ? node.contactSeen(action.contact, at) : node.contactFailed(action.contact.id, at), at, kind);
          break;
        }
        case 'store': {
          const { response } = this.request(origin, action.to, Store, { records: action.records }, at, kind);
          this.exec(origin, response ? node.contactSeen(action.to, at) : node.contactFailed(action.to.id, at), at, kind);
          break;
        }
        case 'republish': {
          const run = this.runLookup(origin, node.findNode(action.key, at), at, kind);
          this.exec(origin, node.publish(node.store.get(action.user, at), run.lookup.result.closest, at), at, kind);
          break;
        }
        case 'refresh':
          this.runLookup(origin, node.findNode(action.target, at), at, kind);
          break;
      }
    }
  }

  /** Join `sim` through a live supernode: own-id lookup, then one lookup per farther bucket. */
  join(sim: SimNode, via: SimNode): void {
    const node = sim.node;
    node.contactSeen(via.node.self, this.now);
    this.runLookup(sim, node.findNode(node.id, this.now), this.now, 'join');
    for (const target of node.joinRefreshTargets()) this.runLookup(sim, node.findNode(target, this.now), this.now, 'join');
  }

  /**
   * A device's supernode publishes its records: verify them, FIND_NODE the
   * user's key, STORE on the k closest (itself included if it is one).
   */
  publish(origin: SimNode, records: LocationRecord[]): LookupRun<unknown> {
    const node = origin.node;
    const verified = records.map((r) => node.validate(r, this.now));
    const before = this.traffic.publish.bytes;
    const run = this.runLookup(origin, node.findNode(userKey(verified[0]!.user), this.now), this.now, 'publish');
    this.exec(origin, node.publish(verified, run.lookup.result.closest, this.now + run.elapsedMs), this.now + run.elapsedMs, 'publish');
    return { ...run, bytes: this.traffic.publish.bytes - before };
  }

  /**
   * A search as a supernode runs it for an attached phone: own store first,
   * then FIND_VALUE; the freshest record per device wins, and holders that
   * answered with older ones are repaired (counted as `repair` traffic).
   */
  search(origin: SimNode, user: string): { records: LocationRecord[]; contacted: number; bytes: number; elapsedMs: number } {
    const start = origin.node.search(user, this.now);
    if (start.local) return { records: start.local, contacted: 0, bytes: 0, elapsedMs: 0 };
    const run = this.runLookup(origin, start.lookup!, this.now, 'search', user);
    const { values } = run.lookup.result;
    this.exec(origin, origin.node.readRepair(values), this.now + run.elapsedMs, 'repair');
    return { records: origin.node.searchResult(values), contacted: run.lookup.result.contacted, bytes: run.bytes, elapsedMs: run.elapsedMs };
  }

  /** One maintenance round on every live supernode, at the current time (replication again after the pings). */
  maintain(): void {
    for (const sim of this.nodes) {
      if (!sim.alive) continue;
      this.exec(sim, sim.node.maintenance(this.now), this.now, 'maintenance');
      this.exec(sim, sim.node.replicate(this.now), this.now, 'maintenance');
    }
  }
}

function handle<Req, Res>(target: IndexNode, from: ContactInfo, def: RequestDef<Req, Res>, body: Req, now: number): { response: Res; actions: IndexAction[] } {
  switch (def.type) {
    case FindNode.type:
      return target.handleFindNode(from, body as never, now) as never;
    case FindValue.type:
      return target.handleFindValue(from, body as never, now) as never;
    case Store.type:
      return target.handleStore(from, body as never, now) as never;
    default:
      return target.handlePing(from, {}, now) as never;
  }
}
