import type { Credential } from '../../crypto/credential.js';
import { PartylineError, errorMessage } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { eachLimit } from '../../util/each-limit.js';
import type { RequestDef } from '../../wire/messages.js';
import type { KnownPresence } from '../index/node-index-handlers.js';
import type { LocationRecord } from '../index/record.js';
import type { ContactInfo } from '../index/routing-table.js';
import {
  MAX_SUBSCRIBE_USERS, MAX_UPDATES_PER_MESSAGE, MAX_WATCHED_USERS,
  PresenceChanged, PresenceNotify, PresencePublish, PresenceQuery, PresenceSet, PresenceSubscribe, PresenceWatch,
} from './messages.js';
import { PresenceTable, Subscriptions } from './presence-table.js';
import { PresenceError, effectiveState, namedSupernode, normalizeSupernode, verifyPresenceUpdate } from './update.js';
import type { DevicePresenceUpdate, PresenceUpdate, SupernodePresenceUpdate } from './update.js';

/**
 * Presence on a supernode (DESIGN.md "Supernode tier and global index":
 * Presence — "buddies are told of online/offline through their supernodes;
 * offline is detected by the lost link, not by polling").
 *
 * ## Where presence lives
 *
 * The supernodes responsible for a user — the k closest to the user's key,
 * where the user's location records live — also keep the latest presence
 * update of each of the user's devices (`table`) and the list of
 * supernodes that asked to hear about the user (`subscribers`).
 *
 * ## What a supernode does
 *
 * 1. **For its attached phones' own presence.** A phone sends its signed
 *    update (`presence.set`) after attaching, when its state changes, with
 *    every record refresh, and (signed `offline`) when it logs out. The
 *    supernode checks it and publishes it to the responsible supernodes.
 *    When an attached phone's link dies (TCP close, or the keep-alive
 *    sweep) without a signed goodbye, the supernode publishes an `offline`
 *    of its own (update.ts), which the responsible supernodes take only
 *    from the supernode the device named.
 * 2. **For its attached phones' buddies.** A phone says whom it watches
 *    (`presence.watch`, its buddy list). For each watched user the
 *    supernode subscribes, once for all its phones, at the `subscribeAt`
 *    (default 3) closest responsible supernodes, which answer with what
 *    they know and then push every change (`presence.notify`); the
 *    supernode passes news on to its watching phones (`presence.changed`).
 *    No one polls: one change costs one message per hop.
 * 3. **As a responsible supernode.** It keeps updates (newest per device,
 *    update.ts `supersedes`), answers subscriptions and queries, and pushes
 *    every accepted change to the subscribers.
 *
 * ## Keeping it placed
 *
 * Subscriptions expire (`subscriptionTtlMs`, default 3 min) unless renewed;
 * the subscriber renews every `renewIntervalMs` (default 1 min), and at
 * once (checked every few seconds) when its routing table changed — a
 * supernode joined, or one stopped answering — looking the responsible
 * supernodes up again (also when a placement is older than
 * `placementMaxAgeMs`): subscriptions follow supernodes joining and
 * leaving, and a renewal's snapshot repairs any news lost meanwhile. A subscriber that cannot be reached loses its
 * subscription; one that no longer watches a user says so (`unwanted`).
 * Updates themselves are refreshed by the devices every 30 min (update.ts
 * "Lifetime"), which also places them on supernodes that became
 * responsible since.
 */
export interface PresenceIndex {
  readonly running: boolean;
  readonly self: ContactInfo;
  readonly node: { readonly k: number; readonly table: { readonly version: number }; readonly store: { get(user: string, now: number): LocationRecord[] } };
  responsible(user: string): Promise<ContactInfo[]>;
  request<Req, Res>(contact: ContactInfo, def: RequestDef<Req, Res>, body: Req, options?: { timeoutMs?: number }): Promise<Res>;
  peerOf(link: Link): ContactInfo | undefined;
}

export interface PresenceServiceOptions {
  index: PresenceIndex;
  network: string;
  loginServerKey: Uint8Array;
  /** This supernode's advertised `host:port` (what attached devices name in their updates). */
  self: () => string | undefined;
  log: Logger;
  now?: () => number;
  /** How often subscriptions are renewed and tables swept (default 60 s). */
  renewIntervalMs?: number;
  /** How often a change of the routing table is looked for (default 5 s): one brings the renewal forward. */
  checkIntervalMs?: number;
  /** Lifetime of a subscription at a responsible supernode (default 3 × renewIntervalMs). */
  subscriptionTtlMs?: number;
  /** Responsible supernodes subscribed at per watched user (default 3). */
  subscribeAt?: number;
  /** Look the responsible supernodes up again after this long even if the routing table did not change (default 10 min). */
  placementMaxAgeMs?: number;
  /** Deadline of one request to another supernode (default 2 s). */
  requestTimeoutMs?: number;
  /** A phone may set its presence at most this often (default 200 ms). */
  minSetIntervalMs?: number;
}

interface NodeState {
  credential: Credential;
  watching: Set<string>;
  /** The last update the phone signed on this link. */
  last: DevicePresenceUpdate | undefined;
  lastSetAt: number;
  /** A presence.watch of this link is being carried out. */
  watchBusy: boolean;
  /** Token bucket of new users this link may have this supernode subscribe to (each costs a lookup). */
  watchTokens: number;
  watchTokensAt: number;
}

/** New watched users a phone's link may add at once, and per minute after that (each costs an index lookup). */
export const WATCH_BURST = 300;
export const WATCH_PER_MINUTE = 300;

interface Watched {
  links: Set<Link>;
  /** Ids of the supernodes the subscription was last placed at. */
  at: Set<bigint>;
}

interface Placement {
  at: ContactInfo[];
  placedAt: number;
  version: number;
}

const MAX_PLACEMENTS = 20_000;
const QUERY_TIMEOUT_MS = 1_000;

export class PresenceService {
  #options: PresenceServiceOptions;
  #index: PresenceIndex;
  #log: Logger;
  #now: () => number;
  /** Responsible role: the newest update per device of the users this supernode is responsible for. */
  readonly table = new PresenceTable();
  readonly subscribers = new Subscriptions();
  /** Watcher role: what this supernode knows of the users its phones watch. */
  #view = new PresenceTable();
  #watched = new Map<string, Watched>();
  #nodes = new Map<Link, NodeState>();
  #placements = new Map<string, Placement>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #renewing = false;
  #renewedAt = 0;
  #renewedVersion = -1;
  #ttlMs: number;

  constructor(options: PresenceServiceOptions) {
    this.#options = options;
    this.#index = options.index;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#ttlMs = options.subscriptionTtlMs ?? 3 * (options.renewIntervalMs ?? 60_000);
  }

  get running(): boolean {
    return this.#running;
  }

  stats(): { users: number; subscriptions: number; watched: number; nodes: number } {
    return { users: this.table.size, subscriptions: this.subscribers.size, watched: this.#watched.size, nodes: this.#nodes.size };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#renewedAt = this.#now();
    this.#renewedVersion = this.#index.node.table.version;
    this.#timer = setInterval(() => this.#tick(), this.#options.checkIntervalMs ?? 5_000);
    this.#timer.unref();
  }

  /** Stop renewing and answering. Attached links stay (the SupernodeService owns them); their loss is no longer reported. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#nodes.clear();
    this.#watched.clear();
  }

  // ---- Attached phones ----------------------------------------------------------------

  /** Serve presence.set and presence.watch to a phone attached with `credential` (again on renewal: updates it). */
  serveNode(link: Link, credential: Credential): void {
    const known = this.#nodes.get(link);
    if (known) {
      known.credential = credential;
      return;
    }
    const state: NodeState = { credential, watching: new Set(), last: undefined, lastSetAt: -Infinity, watchBusy: false, watchTokens: WATCH_BURST, watchTokensAt: this.#now() };
    this.#nodes.set(link, state);
    link.once('close', () => this.#detached(link, state));
    link.handle(PresenceSet, (body) => this.#set(state, body.update));
    link.handle(PresenceWatch, (body) => this.#watch(link, state, body.users));
  }

  async #set(state: NodeState, raw: unknown): Promise<{ replicas: number }> {
    this.#assertRunning();
    const now = this.#now();
    const update = verifyPresenceUpdate(raw, { loginServerKey: this.#options.loginServerKey, network: this.#options.network, now });
    const { credential } = state;
    if (update.by !== 'device' || update.user !== normaliseUserName(credential.user) || update.deviceId !== credential.deviceId) {
      throw new PresenceError('ERR_PRESENCE_OWNER', `presence.set: update of ${update.user}/${update.deviceId} on a link attached as ${credential.user}/${credential.deviceId}`);
    }
    const self = this.#options.self();
    if (!self || normalizeSupernode(update.supernode) !== normalizeSupernode(self)) {
      throw new PresenceError('ERR_PRESENCE_SUPERNODE', `presence.set: the update names supernode ${update.supernode}, this is ${self ?? 'a supernode without an address'}`);
    }
    const last = state.last;
    if (last && update.seq <= last.seq && update.signature !== last.signature) {
      throw new PresenceError('ERR_PRESENCE_REPLAY', `presence.set: seq ${update.seq} is not above ${last.seq}, already set on this link`);
    }
    const minMs = this.#options.minSetIntervalMs ?? 200;
    if (now - state.lastSetAt < minMs) throw new PresenceError('ERR_PRESENCE_BUSY', `presence.set: at most one update every ${minMs} ms`);
    state.lastSetAt = now;
    state.last = update;
    this.#log.debug({ user: update.user, deviceId: update.deviceId, state: update.state }, 'device presence set');
    const replicas = await this.#publish(update);
    if (replicas === 0) throw new PresenceError('ERR_PRESENCE_UNREACHABLE', `presence of ${update.user}/${update.deviceId}: no responsible supernode could be reached`);
    return { replicas };
  }

  /** The phone's link is gone: unless it said goodbye itself, say it went offline. */
  #detached(link: Link, state: NodeState): void {
    this.#nodes.delete(link);
    this.#unwatch(link, state.watching);
    const last = state.last;
    const self = this.#options.self();
    if (!this.#running || !last || last.state === 'offline' || !self) return;
    const offline: SupernodePresenceUpdate = {
      v: 1, by: 'supernode', user: last.user, deviceId: last.deviceId, state: 'offline', supernode: self, seq: last.seq, issued: Math.max(this.#now(), last.issued + 1),
    };
    this.#log.debug({ user: last.user, deviceId: last.deviceId }, 'device link lost: publishing offline');
    this.#publish(offline).catch((err: unknown) => this.#log.warn({ user: last.user, err: errorMessage(err) }, 'cannot publish offline presence'));
  }

  async #watch(link: Link, state: NodeState, requested: readonly string[]): Promise<{ watching: number }> {
    this.#assertRunning();
    const own = normaliseUserName(state.credential.user);
    const users = new Set(requested.map(normaliseUserName).filter((u) => u.length > 0 && u !== own));
    if (users.size > MAX_WATCHED_USERS) throw new PresenceError('ERR_PRESENCE_TOO_MANY', `presence.watch: ${users.size} users, at most ${MAX_WATCHED_USERS}`);
    // Each user nobody here watched yet costs lookups and subscriptions on other supernodes: one
    // watch at a time per link, and a budget of new users, so one request cannot fan out without end.
    if (state.watchBusy) throw new PresenceError('ERR_PRESENCE_BUSY', 'presence.watch: the previous one is still being carried out');
    const now = this.#now();
    state.watchTokens = Math.min(WATCH_BURST, state.watchTokens + ((now - state.watchTokensAt) / 60_000) * WATCH_PER_MINUTE);
    state.watchTokensAt = now;
    const cost = [...users].filter((u) => !state.watching.has(u) && !this.#watched.has(u)).length;
    if (cost > state.watchTokens) {
      throw new PresenceError('ERR_PRESENCE_BUSY', `presence.watch: ${cost} users new to this supernode, at most ${Math.floor(state.watchTokens)} now (${WATCH_PER_MINUTE} a minute)`);
    }
    state.watchTokens -= cost;
    state.watchBusy = true;
    try {
      return await this.#watchUsers(link, state, users);
    } finally {
      state.watchBusy = false;
    }
  }

  async #watchUsers(link: Link, state: NodeState, users: Set<string>): Promise<{ watching: number }> {
    this.#unwatch(link, [...state.watching].filter((u) => !users.has(u)));
    const fresh: string[] = [];
    for (const user of users) {
      let watched = this.#watched.get(user);
      if (!watched) {
        watched = { links: new Set(), at: new Set() };
        this.#watched.set(user, watched);
        fresh.push(user);
      }
      watched.links.add(link);
    }
    state.watching = users;
    await this.#subscribe(fresh);
    // What is known now, for every watched user: the phone starts from a full picture.
    const known: PresenceUpdate[] = [];
    for (const user of users) known.push(...this.#view.get(user));
    this.#send(link, known);
    return { watching: users.size };
  }

  #unwatch(link: Link, users: Iterable<string>): void {
    for (const user of users) {
      const watched = this.#watched.get(user);
      if (!watched) continue;
      watched.links.delete(link);
      // Nobody here watches the user any more: its subscriptions lapse (or are declined at the next push).
      if (watched.links.size === 0) {
        this.#watched.delete(user);
        this.#view.delete(user);
      }
    }
  }

  #send(link: Link, updates: readonly PresenceUpdate[]): void {
    if (link.closed) return;
    for (let i = 0; i < updates.length; i += MAX_UPDATES_PER_MESSAGE) {
      try {
        link.notify(PresenceChanged, { updates: updates.slice(i, i + MAX_UPDATES_PER_MESSAGE) });
      } catch (err) {
        this.#log.debug({ err: errorMessage(err) }, 'cannot pass presence on to a phone');
        return;
      }
    }
  }

  // ---- Other supernodes ------------------------------------------------------------------

  /** Serve the presence requests of other supernodes on an index link. */
  serveSupernode(link: Link): void {
    link.handle(PresencePublish, (body) => this.#published(link, body.updates));
    link.handle(PresenceSubscribe, (body) => this.#subscribed(link, body.users));
    link.handle(PresenceNotify, (body) => this.#notified(link, body.updates));
    link.handle(PresenceQuery, (body) => {
      this.#assertRunning();
      return { updates: this.table.get(normaliseUserName(body.user)).slice(0, MAX_UPDATES_PER_MESSAGE) };
    });
  }

  #published(link: Link, updates: readonly unknown[]): { accepted: number; refused: Array<{ deviceId: string; code: string }> } {
    this.#assertRunning();
    const from = this.#index.peerOf(link);
    if (!from) throw new PresenceError('ERR_PRESENCE_NOT_AUTHENTICATED', 'presence.publish: this index link has not said which supernode it is (index.hello)');
    let accepted = 0;
    const refused: Array<{ deviceId: string; code: string }> = [];
    for (const raw of updates) {
      try {
        this.#accept(raw, from.address);
        accepted++;
      } catch (err) {
        if (!(err instanceof PartylineError)) throw err;
        refused.push({ deviceId: String((raw as { deviceId?: unknown }).deviceId ?? '').slice(0, 64), code: err.code });
      }
    }
    return { accepted, refused };
  }

  /**
   * An update for a user this supernode is responsible for (from `from`,
   * the address of the supernode that sent it): check, keep when newer,
   * and pass the news on to subscribers and to this supernode's own
   * watching phones. Throws PresenceError when refused.
   */
  #accept(raw: unknown, from: string): void {
    const now = this.#now();
    const update = verifyPresenceUpdate(raw, { loginServerKey: this.#options.loginServerKey, network: this.#options.network, now });
    if (update.by === 'supernode') {
      const sender = normalizeSupernode(from);
      if (normalizeSupernode(update.supernode) !== sender) {
        throw new PresenceError('ERR_PRESENCE_ATTESTER', `offline of ${update.user}/${update.deviceId}: says it is from ${update.supernode}, sent by ${from}`);
      }
      const named = this.namedSupernode(update.user, update.deviceId);
      if (named !== sender) {
        throw new PresenceError('ERR_PRESENCE_ATTESTER', `offline of ${update.user}/${update.deviceId} from ${from}: the device names ${named ?? 'no supernode known here'}`);
      }
    }
    if (!this.table.merge(update)) return;
    this.#fanOut(update);
    this.#learn([update]);
  }

  /** Push one accepted change to every subscriber of its user (in the background). */
  #fanOut(update: PresenceUpdate): void {
    const self = this.#index.self.id;
    for (const contact of this.subscribers.of(update.user, this.#now())) {
      if (contact.id === self) continue;
      this.#index.request(contact, PresenceNotify, { updates: [update] }, { timeoutMs: this.#timeoutMs() }).then(
        (answer) => {
          for (const user of answer.unwanted) this.subscribers.remove(normaliseUserName(user), contact.id);
        },
        (err: unknown) => {
          // Unreachable: it renews (and gets a snapshot) when it is back.
          this.subscribers.remove(update.user, contact.id);
          this.#log.debug({ peer: contact.address, user: update.user, err: errorMessage(err) }, 'presence subscriber unreachable: subscription dropped');
        },
      );
    }
  }

  #subscribed(link: Link, users: readonly string[]): { updates: PresenceUpdate[]; ttlMs: number } {
    this.#assertRunning();
    const from = this.#index.peerOf(link);
    if (!from) throw new PresenceError('ERR_PRESENCE_NOT_AUTHENTICATED', 'presence.subscribe: this index link has not said which supernode it is (index.hello)');
    const expires = this.#now() + this.#ttlMs;
    const updates: PresenceUpdate[] = [];
    for (const user of users.map(normaliseUserName)) {
      this.subscribers.add(user, from, expires);
      updates.push(...this.table.get(user));
    }
    return { updates: updates.slice(0, MAX_UPDATES_PER_MESSAGE), ttlMs: this.#ttlMs };
  }

  #notified(link: Link, updates: readonly unknown[]): { unwanted: string[] } {
    this.#assertRunning();
    const from = this.#index.peerOf(link);
    const unwanted = new Set<string>();
    const news: PresenceUpdate[] = [];
    for (const raw of updates) {
      const user = normaliseUserName(String((raw as { user?: unknown }).user ?? ''));
      const watched = this.#watched.get(user);
      if (!watched) {
        unwanted.add(user);
        continue;
      }
      const update = this.#check(raw, from, watched);
      if (update) news.push(update);
    }
    this.#learn(news);
    return { unwanted: [...unwanted].filter((u) => u.length > 0) };
  }

  /**
   * An update from a responsible supernode for a watched user: a device's
   * own is verified; a supernode's offline is believed when it comes from
   * one of the supernodes subscribed at (this side cannot check more).
   */
  #check(raw: unknown, from: ContactInfo | undefined, watched: Watched): PresenceUpdate | undefined {
    try {
      const update = verifyPresenceUpdate(raw, { loginServerKey: this.#options.loginServerKey, network: this.#options.network, now: this.#now() });
      if (update.by === 'supernode' && (!from || (!watched.at.has(from.id) && from.id !== this.#index.self.id))) return undefined;
      return update;
    } catch (err) {
      this.#log.debug({ peer: from?.address, code: (err as PartylineError).code, err: errorMessage(err) }, 'presence update from a supernode refused');
      return undefined;
    }
  }

  /** News for watched users: keep what is newer and pass it on to the phones that watch. */
  #learn(updates: readonly PresenceUpdate[]): void {
    const byLink = new Map<Link, PresenceUpdate[]>();
    for (const update of updates) {
      const watched = this.#watched.get(update.user);
      if (!watched || !this.#view.merge(update)) continue;
      for (const link of watched.links) {
        const list = byLink.get(link) ?? [];
        list.push(update);
        byLink.set(link, list);
      }
    }
    for (const [link, list] of byLink) this.#send(link, list);
  }

  // ---- Publishing and subscribing ------------------------------------------------------------

  /** Publish one update to the supernodes responsible for its user; returns how many took it. */
  async #publish(update: PresenceUpdate): Promise<number> {
    const at = await this.#placement(update.user);
    const self = this.#index.self;
    const results = await Promise.all(at.map(async (contact) => {
      if (contact.id === self.id) {
        try {
          this.#accept(update, self.address);
          return true;
        } catch (err) {
          this.#log.debug({ user: update.user, code: (err as PartylineError).code, err: errorMessage(err) }, 'own presence update refused here');
          return false;
        }
      }
      try {
        const answer = await this.#index.request(contact, PresencePublish, { updates: [update] }, { timeoutMs: this.#timeoutMs() });
        for (const r of answer.refused) this.#log.debug({ peer: contact.address, deviceId: r.deviceId, code: r.code }, 'presence update refused');
        return answer.accepted > 0;
      } catch (err) {
        this.#placements.delete(update.user);
        this.#log.debug({ peer: contact.address, err: errorMessage(err) }, 'presence publish failed');
        return false;
      }
    }));
    return results.filter(Boolean).length;
  }

  /** Subscribe (or renew) for watched users at their closest responsible supernodes, and take in what they know. */
  async #subscribe(users: readonly string[]): Promise<void> {
    if (users.length === 0 || !this.#running) return;
    const self = this.#index.self;
    const want = this.#options.subscribeAt ?? 3;
    const byContact = new Map<bigint, { contact: ContactInfo; users: string[] }>();
    await eachLimit(users, 8, async (user) => {
      const at = (await this.#placement(user)).slice(0, want);
      const watched = this.#watched.get(user);
      if (!watched) return;
      watched.at = new Set(at.map((c) => c.id));
      for (const contact of at) {
        if (contact.id === self.id) {
          // Responsible here: what this supernode's table has is what it knows.
          this.#learn(this.table.get(user));
          continue;
        }
        const entry = byContact.get(contact.id) ?? { contact, users: [] };
        entry.users.push(user);
        byContact.set(contact.id, entry);
      }
    }, (err) => this.#log.debug({ err: errorMessage(err) }, 'presence placement failed'));
    const requests: Array<{ contact: ContactInfo; users: string[] }> = [];
    for (const { contact, users: list } of byContact.values()) {
      for (let i = 0; i < list.length; i += MAX_SUBSCRIBE_USERS) requests.push({ contact, users: list.slice(i, i + MAX_SUBSCRIBE_USERS) });
    }
    await eachLimit(requests, 16, async ({ contact, users: list }) => {
      try {
        const answer = await this.#index.request(contact, PresenceSubscribe, { users: list }, { timeoutMs: this.#timeoutMs() });
        const news: PresenceUpdate[] = [];
        for (const raw of answer.updates) {
          const watched = this.#watched.get(raw.user);
          const update = watched ? this.#check(raw, contact, watched) : undefined;
          if (update) news.push(update);
        }
        this.#learn(news);
      } catch (err) {
        for (const user of list) this.#placements.delete(user);
        this.#log.debug({ peer: contact.address, err: errorMessage(err) }, 'presence subscribe failed');
      }
    }, (err) => this.#log.debug({ err: errorMessage(err) }, 'presence subscribe failed'));
  }

  /** The responsible supernodes of a user: cached until the routing table changes or the entry grows old. */
  async #placement(user: string): Promise<ContactInfo[]> {
    const now = this.#now();
    const version = this.#index.node.table.version;
    const cached = this.#placements.get(user);
    if (cached && cached.version === version && now - cached.placedAt < (this.#options.placementMaxAgeMs ?? 600_000)) return cached.at;
    const at = await this.#index.responsible(user);
    this.#placements.delete(user);
    this.#placements.set(user, { at, placedAt: now, version });
    if (this.#placements.size > MAX_PLACEMENTS) this.#placements.delete(this.#placements.keys().next().value!);
    return at;
  }

  /** Renew when due, or at once when the routing table changed. */
  #tick(): void {
    const due = this.#now() - this.#renewedAt >= (this.#options.renewIntervalMs ?? 60_000);
    if (due || this.#index.node.table.version !== this.#renewedVersion) this.#renew();
  }

  /** Sweep the tables, renew (and where needed re-place) the subscriptions. */
  #renew(): void {
    if (!this.#running || this.#renewing) return;
    this.#renewing = true;
    const now = this.#now();
    this.#renewedAt = now;
    this.#renewedVersion = this.#index.node.table.version;
    this.table.expire(now);
    this.#view.expire(now);
    this.subscribers.expire(now);
    this.#subscribe([...this.#watched.keys()])
      .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'presence renewal failed'))
      .finally(() => {
        this.#renewing = false;
      });
  }

  // ---- Queries ------------------------------------------------------------------------------------

  /**
   * The supernode a device named last (its newest signed record or
   * update, as far as this supernode holds them): the only one whose word
   * on the device's offline, or whose fetch of its held messages, counts.
   */
  namedSupernode(user: string, deviceId: string): string | undefined {
    const record = this.#index.node.store.get(user, this.#now()).find((r) => r.device.deviceId === deviceId);
    return namedSupernode(record, this.table.device(user, deviceId));
  }

  /** The device's newest update this supernode holds as a responsible supernode, if any. */
  device(user: string, deviceId: string): PresenceUpdate | undefined {
    return this.table.device(user, deviceId);
  }

  /**
   * The presence of a user's devices for index.search: what this
   * supernode knows (as a responsible supernode, or from subscriptions),
   * and what up to two of `holders` (responsible supernodes that answered
   * the search) know now.
   */
  async presenceOf(user: string, holders: readonly ContactInfo[]): Promise<ReadonlyMap<string, KnownPresence>> {
    const name = normaliseUserName(user);
    const merged = new PresenceTable();
    for (const u of [...this.table.get(name), ...this.#view.get(name)]) merged.merge(u);
    const self = this.#index.self.id;
    const ask = holders.filter((h) => h.id !== self).slice(0, 2);
    const answers = await Promise.all(ask.map((contact) =>
      this.#index.request(contact, PresenceQuery, { user: name }, { timeoutMs: QUERY_TIMEOUT_MS }).then(
        (answer) => ({ contact, updates: answer.updates }),
        (err: unknown) => {
          this.#log.debug({ peer: contact.address, err: errorMessage(err) }, 'presence query failed');
          return undefined;
        },
      )));
    for (const answer of answers) {
      if (!answer) continue;
      for (const raw of answer.updates) {
        if (raw.user !== name) continue;
        try {
          merged.merge(verifyPresenceUpdate(raw, { loginServerKey: this.#options.loginServerKey, network: this.#options.network, now: this.#now() }));
        } catch (err) {
          this.#log.debug({ peer: answer.contact.address, err: errorMessage(err) }, 'presence update in a query answer refused');
        }
      }
    }
    const now = this.#now();
    return new Map(merged.get(name).map((u) => [u.deviceId, { state: effectiveState(u, now), issued: u.issued }]));
  }

  #timeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 2_000;
  }

  #assertRunning(): void {
    if (!this.#running || !this.#index.running) throw new PresenceError('ERR_PRESENCE_STOPPED', 'the presence service of this supernode is stopped');
  }
}
