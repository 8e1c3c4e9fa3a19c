import type { Credential } from '../../crypto/credential.js';
import { errorMessage } from '../../errors.js';
import type { PartylineError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { eachLimit } from '../../util/each-limit.js';
import type { RequestDef } from '../../wire/messages.js';
import type { ContactInfo } from '../index/routing-table.js';
import type { PresenceIndex } from '../presence/presence-service.js';
import { effectiveState, normalizeSupernode } from '../presence/update.js';
import type { PresenceUpdate } from '../presence/update.js';
import { RouteDeliver } from '../route/messages.js';
import { MAX_DELETE_IDS, MailboxDelete, MailboxFetch, MailboxNudge, MailboxPut, MailboxStore as MailboxStoreRequest, MailboxTake } from './mailbox-messages.js';
import type { HeldMessage } from './mailbox-messages.js';
import { MailboxError, MailboxStore } from './mailbox-store.js';

/**
 * Messages held for offline devices (DESIGN.md "Instant messages": "a
 * message to an offline user is held (still encrypted) by the supernodes
 * responsible for that user for up to 72 h and delivered at the next
 * login"). What is held is the sealed message the sender made for that one
 * device (route/sealed.ts): the holders can neither read nor alter it.
 *
 * - **Holding.** A phone whose `route.send` found the device unreachable
 *   sends the same sealed bytes with `mailbox.put`; its supernode stamps
 *   the sender and stores the message on the k supernodes responsible for
 *   the recipient's user (where the user's records live), like a record.
 * - **Delivering.** The recipient's phone, once attached and its presence
 *   published, asks its supernode (`mailbox.fetch`), which takes what the
 *   responsible supernodes hold for the device, delivers it on the
 *   phone's link (`route.deliver`, as if routed), and deletes what the
 *   phone took from every holder. Only the supernode the device named
 *   last may take or delete (update.ts `namedSupernode`). The phone drops
 *   duplicates (several holders, a delete that did not reach one).
 * - **Online after all.** A responsible supernode that stores a message
 *   for a device whose newest presence says online nudges that device's
 *   supernode to fetch at once (the sender may have tried a stale record).
 * - **Churn.** When the routing table changes, each holder copies its
 *   held messages to the supernodes that are now responsible and were not.
 */
export interface MailboxIndex extends PresenceIndex {
  requestSupernode<Req, Res>(address: string, def: RequestDef<Req, Res>, body: Req, options?: { timeoutMs?: number }): Promise<Res>;
}

export interface MailboxServiceOptions {
  index: MailboxIndex;
  /** What the responsible supernodes know of devices (PresenceService). */
  presence: { namedSupernode(user: string, deviceId: string): string | undefined; device(user: string, deviceId: string): PresenceUpdate | undefined };
  /** This supernode's advertised `host:port`. */
  self: () => string | undefined;
  /** The link of a phone attached here, by device id. */
  attached: (deviceId: string) => { link: Link; user: string } | undefined;
  log: Logger;
  now?: () => number;
  store?: MailboxStore;
  /** Expiry and re-replication check (default 60 s). */
  maintenanceIntervalMs?: number;
  requestTimeoutMs?: number;
  /** mailbox.put per phone link per second (default 20). */
  putsPerSecond?: number;
}

interface NodeState {
  credential: Credential;
  tokens: number;
  at: number;
}

const MAX_FETCH_ROUNDS = 50;

export class MailboxService {
  readonly store: MailboxStore;
  #options: MailboxServiceOptions;
  #index: MailboxIndex;
  #log: Logger;
  #now: () => number;
  #nodes = new WeakMap<Link, NodeState>();
  /** Fetches running per device: a second request waits for (and then repeats) the running one. */
  #fetching = new Map<string, { running: Promise<number>; again: boolean }>();
  /** Where each user's held messages were last known to be (ids), for re-replication. */
  #placed = new Map<string, Set<bigint>>();
  #tableVersion = -1;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #maintaining = false;

  constructor(options: MailboxServiceOptions) {
    this.#options = options;
    this.#index = options.index;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.store = options.store ?? new MailboxStore();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#timer = setInterval(() => this.#maintain(), this.#options.maintenanceIntervalMs ?? 60_000);
    this.#timer.unref();
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  // ---- Attached phones ---------------------------------------------------------------------

  serveNode(link: Link, credential: Credential): void {
    const known = this.#nodes.get(link);
    if (known) {
      known.credential = credential;
      return;
    }
    const rate = this.#options.putsPerSecond ?? 20;
    const state: NodeState = { credential, tokens: rate, at: this.#now() };
    this.#nodes.set(link, state);
    link.handle(MailboxPut, async (body) => {
      this.#assertRunning();
      this.#take(state, rate);
      const self = this.#options.self();
      if (!self) throw new MailboxError('ERR_MAILBOX_NO_ADDRESS', 'this supernode has no advertised address');
      const message: HeldMessage = {
        id: body.id,
        from: { user: normaliseUserName(state.credential.user), deviceId: state.credential.deviceId, supernode: self },
        to: { user: normaliseUserName(body.to.user), deviceId: body.to.deviceId },
        sealed: body.sealed,
        sentAt: this.#now(),
      };
      const held = await this.#hold(message);
      if (held === 0) throw new MailboxError('ERR_MAILBOX_UNREACHABLE', `no supernode responsible for ${message.to.user} took the message`);
      this.#log.debug({ to: `${message.to.user}/${message.to.deviceId}`, id: message.id, held }, 'message held for an offline device');
      return { held };
    });
    link.handle(MailboxFetch, async () => {
      this.#assertRunning();
      return { delivered: await this.fetch(link, state.credential.user, state.credential.deviceId) };
    });
  }

  /** Store on the user's responsible supernodes; returns how many took it. */
  async #hold(message: HeldMessage): Promise<number> {
    const at = await this.#index.responsible(message.to.user);
    const self = this.#index.self.id;
    const results = await Promise.all(at.map(async (contact) => {
      try {
        if (contact.id === self) this.#stored(message);
        else await this.#index.request(contact, MailboxStoreRequest, { message }, { timeoutMs: this.#timeoutMs() });
        return true;
      } catch (err) {
        this.#log.debug({ peer: contact.address, code: (err as PartylineError).code, err: errorMessage(err) }, 'mailbox store failed');
        return false;
      }
    }));
    return results.filter(Boolean).length;
  }

  /**
   * Deliver what is held for a device attached here on `link`, delete what
   * it took, and return how many it took. Concurrent calls for one device
   * share the running fetch, which then runs once more.
   */
  fetch(link: Link, user: string, deviceId: string): Promise<number> {
    const key = `${normaliseUserName(user)}/${deviceId}`;
    const running = this.#fetching.get(key);
    if (running) {
      running.again = true;
      return running.running;
    }
    const entry = { running: Promise.resolve(0), again: false };
    entry.running = (async () => {
      let total = 0;
      try {
        do {
          entry.again = false;
          total += await this.#fetchOnce(link, normaliseUserName(user), deviceId);
        } while (entry.again && !link.closed);
      } finally {
        this.#fetching.delete(key);
      }
      return total;
    })();
    this.#fetching.set(key, entry);
    return entry.running;
  }

  async #fetchOnce(link: Link, user: string, deviceId: string): Promise<number> {
    const self = this.#index.self.id;
    const done = new Set<string>();
    let delivered = 0;
    for (let round = 0; round < MAX_FETCH_ROUNDS && !link.closed; round++) {
      const at = await this.#index.responsible(user);
      const answers = await Promise.all(at.map(async (contact) => {
        try {
          return contact.id === self
            ? this.store.take(user, deviceId, this.#now())
            : await this.#index.request(contact, MailboxTake, { user, deviceId }, { timeoutMs: this.#timeoutMs() });
        } catch (err) {
          this.#log.debug({ peer: contact.address, code: (err as PartylineError).code, err: errorMessage(err) }, 'mailbox take failed');
          return { messages: [], more: false };
        }
      }));
      const byId = new Map<string, HeldMessage>();
      for (const answer of answers) for (const m of answer.messages) if (!done.has(m.id) && m.to.user === user && m.to.deviceId === deviceId) byId.set(m.id, m);
      if (byId.size === 0) break;
      const taken: string[] = [];
      for (const message of [...byId.values()].sort((a, b) => a.sentAt - b.sentAt)) {
        try {
          await link.request(RouteDeliver, { from: message.from, sealed: message.sealed, held: true }, { timeoutMs: 5_000 });
          taken.push(message.id);
          done.add(message.id);
        } catch (err) {
          this.#log.debug({ user, deviceId, err: errorMessage(err) }, 'delivering a held message failed');
          break;
        }
      }
      await this.#delete(at, user, deviceId, taken);
      delivered += taken.length;
      if (taken.length < byId.size || !answers.some((a) => a.more)) break;
    }
    if (delivered > 0) this.#log.info({ user, deviceId, delivered }, 'held messages delivered');
    return delivered;
  }

  async #delete(at: readonly ContactInfo[], user: string, deviceId: string, ids: readonly string[]): Promise<void> {
    const self = this.#index.self.id;
    for (let i = 0; i < ids.length; i += MAX_DELETE_IDS) {
      const batch = ids.slice(i, i + MAX_DELETE_IDS);
      await Promise.all(at.map(async (contact) => {
        try {
          if (contact.id === self) this.store.delete(user, deviceId, batch);
          else await this.#index.request(contact, MailboxDelete, { user, deviceId, ids: batch }, { timeoutMs: this.#timeoutMs() });
        } catch (err) {
          // That holder delivers them again next time: the phone drops duplicates.
          this.#log.debug({ peer: contact.address, err: errorMessage(err) }, 'mailbox delete failed');
        }
      }));
    }
  }

  // ---- Other supernodes -----------------------------------------------------------------------

  serveSupernode(link: Link): void {
    link.handle(MailboxStoreRequest, (body) => {
      this.#assertRunning();
      const from = this.#peer(link, 'mailbox.store');
      return { status: this.#stored({ ...body.message, to: { user: normaliseUserName(body.message.to.user), deviceId: body.message.to.deviceId } }, normalizeSupernode(from.address)) };
    });
    link.handle(MailboxTake, (body) => {
      const user = this.#authorize(link, 'mailbox.take', body.user, body.deviceId);
      return this.store.take(user, body.deviceId, this.#now());
    });
    link.handle(MailboxDelete, (body) => {
      const user = this.#authorize(link, 'mailbox.delete', body.user, body.deviceId);
      return { deleted: this.store.delete(user, body.deviceId, body.ids) };
    });
    link.handle(MailboxNudge, (body) => {
      this.#assertRunning();
      this.#peer(link, 'mailbox.nudge');
      return { fetching: this.#nudged(normaliseUserName(body.user), body.deviceId) };
    });
  }

  /**
   * Keep a message here (`via`: the supernode that handed it over, if
   * another); nudge the device's supernode when the device is online. Only
   * for a device this supernode knows exists: a live location record, or
   * an update it signed — nobody fills the store with made-up device ids.
   */
  #stored(message: HeldMessage, via?: string): 'stored' | 'unchanged' {
    const { user, deviceId } = message.to;
    const now = this.#now();
    const known = this.#index.node.store.get(user, now).some((r) => r.device.deviceId === deviceId) || this.#options.presence.device(user, deviceId)?.by === 'device';
    if (!known) throw new MailboxError('ERR_MAILBOX_NO_DEVICE', `no live record of ${user}/${deviceId} here: nothing is held for a device not known to exist`);
    const status = this.store.put(message, now, via);
    if (status === 'stored') {
      const placed = this.#placed.get(message.to.user) ?? new Set<bigint>();
      this.#placed.set(message.to.user, placed);
      this.#nudge(message.to.user, message.to.deviceId);
    }
    return status;
  }

  #nudge(user: string, deviceId: string): void {
    const presence = this.#options.presence.device(user, deviceId);
    if (!presence || presence.by !== 'device' || effectiveState(presence, this.#now()) === 'offline') return;
    const self = this.#options.self();
    if (self && normalizeSupernode(presence.supernode) === normalizeSupernode(self)) {
      this.#nudged(user, deviceId);
      return;
    }
    this.#index.requestSupernode(presence.supernode, MailboxNudge, { user, deviceId }, { timeoutMs: this.#timeoutMs() })
      .catch((err: unknown) => this.#log.debug({ peer: presence.supernode, err: errorMessage(err) }, 'mailbox nudge failed'));
  }

  /** A device attached here has mail waiting: fetch it in the background. */
  #nudged(user: string, deviceId: string): boolean {
    const node = this.#options.attached(deviceId);
    if (!node || node.link.closed || normaliseUserName(node.user) !== user) return false;
    this.fetch(node.link, user, deviceId).catch((err: unknown) => this.#log.warn({ user, err: errorMessage(err) }, 'fetching held messages failed'));
    return true;
  }

  #peer(link: Link, what: string): ContactInfo {
    const from = this.#index.peerOf(link);
    if (!from) throw new MailboxError('ERR_MAILBOX_NOT_AUTHENTICATED', `${what}: this index link has not said which supernode it is (index.hello)`);
    return from;
  }

  /** Only the supernode the device named last may take or delete its messages. Returns the normalised user. */
  #authorize(link: Link, what: string, rawUser: string, deviceId: string): string {
    this.#assertRunning();
    const from = this.#peer(link, what);
    const user = normaliseUserName(rawUser);
    const named = this.#options.presence.namedSupernode(user, deviceId);
    if (named !== normalizeSupernode(from.address)) {
      throw new MailboxError('ERR_MAILBOX_NOT_AUTHORIZED', `${what}: ${from.address} is not the supernode ${user}/${deviceId} named (${named ?? 'none known here'})`);
    }
    return user;
  }

  // ---- Maintenance ---------------------------------------------------------------------------

  /** Expire, and after routing changes copy held messages to supernodes that became responsible. */
  #maintain(): void {
    if (!this.#running || this.#maintaining) return;
    this.store.expire(this.#now());
    for (const user of [...this.#placed.keys()]) if (this.store.forUser(user, this.#now()).length === 0) this.#placed.delete(user);
    const version = this.#index.node.table.version;
    if (version === this.#tableVersion) return;
    this.#tableVersion = version;
    this.#maintaining = true;
    this.replicate()
      .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'mailbox re-replication failed'))
      .finally(() => {
        this.#maintaining = false;
      });
  }

  /** Copy each user's held messages to responsible supernodes that did not hold them as far as this one knows. */
  async replicate(): Promise<void> {
    const self = this.#index.self.id;
    await eachLimit(this.store.users(), 4, async (user) => {
      const at = await this.#index.responsible(user);
      const known = this.#placed.get(user) ?? new Set<bigint>();
      const entrants = at.filter((c) => c.id !== self && !known.has(c.id));
      this.#placed.set(user, new Set(at.map((c) => c.id)));
      if (entrants.length === 0) return;
      for (const message of this.store.forUser(user, this.#now())) {
        for (const contact of entrants) {
          await this.#index.request(contact, MailboxStoreRequest, { message }, { timeoutMs: this.#timeoutMs() })
            .catch((err: unknown) => this.#log.debug({ peer: contact.address, err: errorMessage(err) }, 'mailbox copy failed'));
        }
      }
    }, (err) => this.#log.debug({ err: errorMessage(err) }, 'mailbox re-replication step failed'));
  }

  #take(state: NodeState, rate: number): void {
    const now = this.#now();
    state.tokens = Math.min(rate, state.tokens + ((now - state.at) / 1000) * rate);
    state.at = now;
    if (state.tokens < 1) throw new MailboxError('ERR_MAILBOX_BUSY', `more than ${rate} held messages per second`);
    state.tokens -= 1;
  }

  #timeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 2_000;
  }

  #assertRunning(): void {
    if (!this.#running || !this.#index.running) throw new MailboxError('ERR_MAILBOX_STOPPED', 'the mailbox service of this supernode is stopped');
  }
}
