import { CLOCK_SKEW_MS } from '../../crypto/credential.js';
import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { PartylineError, TimeoutError, errorMessage } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import type { NodeIndexSearchResponse } from '../index/node-messages.js';
import { verifyLocationRecord } from '../index/record.js';
import { MailboxPut } from '../im/mailbox-messages.js';
import { DirectDeliver, RouteDeliver, RouteSend } from './messages.js';
import type { RouteEndpoint } from './messages.js';
import { SEALED_LIFETIME_MS, openSealed, randomMessageId, seal } from './sealed.js';
import type { OpenedMessage, SealInput, SealedError } from './sealed.js';

/** A device of a user, from a location record whose signature and credential were checked here. */
export interface PeerDevice {
  user: string;
  deviceId: string;
  supernode: string;
  addresses: string[];
  noiseKey: Buffer;
  /** When the record was signed (epoch ms). */
  issued: number;
}

/** A sealed message that arrived, opened and checked, with the supernode its sender is attached to. */
export interface Incoming extends OpenedMessage {
  /** The sender's device as a target for answers. */
  reply: PeerDevice;
}

export type IncomingHandler = (message: Incoming) => void | Promise<void>;

/** How `sendOrHold` went: the device's link took the message, or `held` supernodes keep it for the device's next login. */
export interface SendOutcome {
  id: string;
  delivered: boolean;
  held: number;
}

/** How old a live (not held) sealed message may be: the credentials' clock skew. */
export const LIVE_MAX_AGE_MS = CLOCK_SKEW_MS;
/** How old a message that makes a device act (a buddy-list change, a path offer) may be when it arrives. */
export const ACTION_MAX_AGE_MS = 60_000;
/** The kinds of sealed message the supernodes hold for offline devices (instant messages and their receipts). */
export const HELD_TYPES: ReadonlySet<string> = new Set(['im', 'im.receipt']);

/** Route failures that mean "that device cannot be reached now" (not attached where its record says, its supernode gone, its link dead). */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ERR_ROUTE_NOT_HERE', 'ERR_ROUTE_UNREACHABLE', 'ERR_ROUTE_NOT_DELIVERED']);

export interface MessengerOptions {
  identity: Identity;
  network: string;
  loginServerKey: Uint8Array;
  credential: () => Credential | undefined;
  /** The link to the supernode this node is attached to, when attached. */
  link: () => Link | undefined;
  /** Look a user up (the node's index.search through its supernode). */
  search: (user: string) => Promise<NodeIndexSearchResponse>;
  log: Logger;
  /** Remembered message ids, for duplicate suppression (default 20,000). */
  maxRemembered?: number;
  /** Remembered message ids per sender device (default 1,000): one sender's flood evicts only its own. */
  maxRememberedPerSender?: number;
  now?: () => number;
  /**
   * Open a direct link to a device (its record's addresses, Noise IK to its
   * certified key): signalling goes there instead of through the supernodes
   * while it is up. Without it everything goes through the supernodes.
   */
  dialDirect?: (device: PeerDevice, timeoutMs: number) => Promise<Link>;
  /** This device's supernode, named to peers on direct links (where answers go if the link drops). */
  selfSupernode?: () => string | undefined;
}

/** A direct link unused this long is closed. */
const DIRECT_IDLE_MS = 10 * 60_000;
/** Direct links kept at most (one per peer device). */
const MAX_DIRECT_LINKS = 32;

/**
 * An ordinary node's end of sealed messaging (sealed.ts, messages.ts):
 * resolve a user to verified devices, seal and send through the supernode,
 * open what arrives, drop duplicates, dispatch by type, and match answers
 * to requests.
 */
export class Messenger {
  #options: MessengerOptions;
  #log: Logger;
  #now: () => number;
  #handlers = new Map<string, { handler: IncomingHandler; maxAgeMs: number | undefined }>();
  #waiting = new Map<string, { resolve: (m: Incoming) => void; reject: (err: Error) => void; timer: NodeJS.Timeout; from: string }>();
  /**
   * Messages seen, for duplicate suppression: sender device → message id →
   * until when a copy could still be taken (after that it is refused as
   * too old anyway); insertion order = age.
   */
  #seen = new Map<string, Map<string, number>>();
  #seenCount = 0;
  #sweptAt = -Infinity;
  #served = new WeakSet<Link>();
  /** Direct links by peer device id, with when they last carried a message. */
  #direct = new Map<string, { link: Link; used: number }>();
  #dialling = new Map<string, Promise<boolean>>();
  #directTimer: NodeJS.Timeout | undefined;

  constructor(options: MessengerOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  /** Take deliveries on a (new) supernode link: call on every attach. */
  serve(link: Link): void {
    if (this.#served.has(link)) return;
    this.#served.add(link);
    link.handle(RouteDeliver, (body) => {
      this.receive(body.from, Buffer.from(body.sealed, 'base64'), { held: body.held === true });
      return { delivered: true as const };
    });
  }

  /**
   * Take sealed messages on a direct link from another device (one it
   * dialled, or one this device dialled). `peer` is who the link's
   * handshake proved (its credential checked by the caller).
   */
  serveDirect(link: Link, peer: { user: string; deviceId: string }): void {
    if (this.#served.has(link)) return;
    this.#served.add(link);
    link.handle(DirectDeliver, (body) => {
      const entry = this.#direct.get(peer.deviceId);
      if (entry?.link === link) entry.used = this.#now();
      // The link proved the sender; the sealed message proves it again, end to end.
      this.receive({ user: peer.user, deviceId: peer.deviceId, supernode: body.from.supernode }, Buffer.from(body.sealed, 'base64'));
      return { delivered: true as const };
    });
    const current = this.#direct.get(peer.deviceId);
    if (!current || current.link.closed) this.#keepDirect(peer.deviceId, link);
    link.once('close', () => {
      if (this.#direct.get(peer.deviceId)?.link === link) this.#direct.delete(peer.deviceId);
    });
  }

  /**
   * Try a direct link to a device, waiting at most `waitMs` (the attempt
   * goes on in the background up to 3 s). True when one is up.
   */
  async connectDirect(device: PeerDevice, waitMs = 100): Promise<boolean> {
    const current = this.#direct.get(device.deviceId);
    if (current && !current.link.closed) return true;
    const dial = this.#options.dialDirect;
    if (!dial || device.addresses.length === 0) return false;
    let attempt = this.#dialling.get(device.deviceId);
    if (!attempt) {
      attempt = dial(device, 3_000).then(
        (link) => {
          this.serveDirect(link, { user: device.user, deviceId: device.deviceId });
          return true;
        },
        (err: unknown) => {
          this.#log.debug({ to: `${device.user}/${device.deviceId}`, err: errorMessage(err) }, 'no direct link: signalling goes through the supernodes');
          return false;
        },
      ).finally(() => this.#dialling.delete(device.deviceId));
      this.#dialling.set(device.deviceId, attempt);
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    try {
      return await Promise.race([attempt, waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether signalling to this device goes over a direct link now. */
  hasDirect(deviceId: string): boolean {
    const entry = this.#direct.get(deviceId);
    return entry !== undefined && !entry.link.closed;
  }

  #keepDirect(deviceId: string, link: Link): void {
    if (this.#direct.size >= MAX_DIRECT_LINKS) {
      let oldest: [string, { link: Link; used: number }] | undefined;
      for (const e of this.#direct) if (!oldest || e[1].used < oldest[1].used) oldest = e;
      if (oldest) {
        this.#direct.delete(oldest[0]);
        oldest[1].link.close();
      }
    }
    this.#direct.set(deviceId, { link, used: this.#now() });
    if (!this.#directTimer) {
      this.#directTimer = setInterval(() => {
        const now = this.#now();
        for (const [id, e] of this.#direct) {
          if (now - e.used > DIRECT_IDLE_MS) {
            this.#direct.delete(id);
            e.link.close();
          }
        }
      }, 60_000);
      this.#directTimer.unref();
    }
  }

  /**
   * Handle sealed messages of one type (one handler per type). `maxAgeMs`:
   * a message that makes this device act (ACTION_MAX_AGE_MS) is taken only
   * this soon after it was sealed — a copy replayed later does nothing.
   */
  on(type: string, handler: IncomingHandler, options: { maxAgeMs?: number } = {}): void {
    this.#handlers.set(type, { handler, maxAgeMs: options.maxAgeMs });
  }

  /** The user's devices, from location records verified here (supernodes are not trusted). Newest first. */
  async resolve(user: string): Promise<{ answer: NodeIndexSearchResponse; devices: PeerDevice[] }> {
    const answer = await this.#options.search(user);
    const now = this.#now();
    const devices: PeerDevice[] = [];
    for (const raw of answer.records) {
      try {
        const record = verifyLocationRecord(raw, { loginServerKey: this.#options.loginServerKey, network: this.#options.network, now });
        if (record.user !== normaliseUserName(user)) continue;
        devices.push({
          user: record.user,
          deviceId: record.device.deviceId,
          supernode: record.device.supernode,
          addresses: [...record.device.addresses],
          noiseKey: Buffer.from(record.credential.noiseKey, 'base64'),
          issued: record.issued,
        });
      } catch (err) {
        this.#log.warn({ user, code: (err as PartylineError).code, err: errorMessage(err) }, 'ignoring a location record that does not verify');
      }
    }
    devices.sort((a, b) => b.issued - a.issued);
    return { answer, devices };
  }

  /** Seal and send one message to one device. Resolves once the device's link took it. Returns the message id. */
  async send(to: PeerDevice, message: SealInput): Promise<string> {
    const link = this.#options.link();
    const credential = this.#options.credential();
    if (!credential) throw new PartylineError('ERR_NOT_LOGGED_IN', 'no credential: cannot send');
    const id = message.id ?? randomMessageId();
    const sealed = seal({ identity: this.#options.identity, credential, network: this.#options.network, to }, { ...message, id, ts: message.ts ?? this.#now() }).toString('base64');
    const direct = this.#direct.get(to.deviceId);
    if (direct && !direct.link.closed) {
      try {
        const supernode = this.#options.selfSupernode?.() ?? to.supernode;
        await direct.link.request(DirectDeliver, { from: { user: credential.user, deviceId: this.#options.identity.deviceId, supernode }, sealed }, { timeoutMs: 3_000 });
        direct.used = this.#now();
        return id;
      } catch (err) {
        this.#log.debug({ to: `${to.user}/${to.deviceId}`, err: errorMessage(err) }, 'direct link failed: through the supernodes');
        direct.link.close();
      }
    }
    if (!link || link.closed) throw new PartylineError('ERR_NOT_ATTACHED', 'not attached to a supernode: cannot send');
    const target: RouteEndpoint = { user: to.user, deviceId: to.deviceId, supernode: to.supernode };
    await link.request(RouteSend, { to: target, sealed }, { timeoutMs: 8_000 });
    return id;
  }

  /**
   * Seal and send one message to one device; when the device cannot be
   * reached, hand the same sealed bytes to the supernodes responsible for
   * its user (`mailbox.put`), which hold them for up to 72 h and deliver
   * them at the device's next login (im/mailbox-service.ts). The
   * recipient drops a copy it has seen (same sender device and id).
   */
  async sendOrHold(to: PeerDevice, message: SealInput): Promise<SendOutcome> {
    const link = this.#options.link();
    const credential = this.#options.credential();
    if (!link || link.closed) throw new PartylineError('ERR_NOT_ATTACHED', 'not attached to a supernode: cannot send');
    if (!credential) throw new PartylineError('ERR_NOT_LOGGED_IN', 'no credential: cannot send');
    const id = message.id ?? randomMessageId();
    const sealed = seal({ identity: this.#options.identity, credential, network: this.#options.network, to }, { ...message, id, ts: message.ts ?? this.#now() }).toString('base64');
    try {
      await link.request(RouteSend, { to: { user: to.user, deviceId: to.deviceId, supernode: to.supernode }, sealed }, { timeoutMs: 8_000 });
      return { id, delivered: true, held: 0 };
    } catch (err) {
      if (!(err instanceof PartylineError) || !UNREACHABLE_CODES.has(err.code)) throw err;
      this.#log.debug({ to: `${to.user}/${to.deviceId}`, code: err.code }, 'device unreachable: asking the supernodes to hold the message');
    }
    const answer = await link.request(MailboxPut, { to: { user: to.user, deviceId: to.deviceId }, id, sealed }, { timeoutMs: 10_000 });
    return { id, delivered: false, held: answer.held };
  }

  /** Send and wait for the device's answer (a message with `re` = this id). */
  async request(to: PeerDevice, message: SealInput, timeoutMs = 5_000): Promise<Incoming> {
    const id = message.id ?? randomMessageId();
    const answer = new Promise<Incoming>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new TimeoutError(`no answer to ${message.type} from ${to.user}/${to.deviceId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer, from: to.deviceId });
    });
    try {
      await this.send(to, { ...message, id });
    } catch (err) {
      const waiting = this.#waiting.get(id);
      if (waiting) {
        clearTimeout(waiting.timer);
        this.#waiting.delete(id);
      }
      throw err;
    }
    return answer;
  }

  /** Answer an incoming message. */
  reply(to: Incoming, message: Omit<SealInput, 're'>): Promise<string> {
    return this.send(to.reply, { ...message, re: to.id });
  }

  /** A sealed message the supernode delivered: open, check, de-duplicate, dispatch. Never throws. */
  receive(from: RouteEndpoint, sealed: Buffer, options: { held?: boolean } = {}): Incoming | undefined {
    const credential = this.#options.credential();
    if (!credential) return undefined;
    let opened: OpenedMessage;
    try {
      opened = openSealed({ identity: this.#options.identity, user: credential.user, network: this.#options.network, loginServerKey: this.#options.loginServerKey, now: this.#now() }, sealed);
    } catch (err) {
      this.#log.info({ from: `${from.user}/${from.deviceId}`, code: (err as SealedError).code, err: errorMessage(err) }, 'sealed message refused');
      return undefined;
    }
    // A live message is fresh: a sender cannot backdate one into the validity of an expired
    // credential, and a supernode cannot replay an old one. Only what the supernodes held for this
    // device while it was away may be old — and only the kinds of message that are held.
    const age = this.#now() - opened.ts;
    if (!options.held && age > LIVE_MAX_AGE_MS) {
      this.#log.info({ from: `${from.user}/${from.deviceId}`, type: opened.type, ageS: Math.round(age / 1000) }, 'stale live sealed message refused');
      return undefined;
    }
    if (options.held && !HELD_TYPES.has(opened.type)) {
      this.#log.info({ from: `${from.user}/${from.deviceId}`, type: opened.type }, 'held sealed message of a kind that is never held refused');
      return undefined;
    }
    if (opened.from.deviceId !== from.deviceId || opened.from.user !== normaliseUserName(from.user)) {
      // The routing stamp disagrees with the signed sender: a supernode mislabelled it. Trust the signature.
      this.#log.debug({ stamped: `${from.user}/${from.deviceId}`, signed: `${opened.from.user}/${opened.from.deviceId}` }, 'routing stamp differs from the sealed sender');
    }
    const entry = this.#handlers.get(opened.type);
    if (opened.re === undefined && entry?.maxAgeMs !== undefined && age > entry.maxAgeMs) {
      this.#log.info({ from: `${from.user}/${from.deviceId}`, type: opened.type, ageS: Math.round(age / 1000) }, 'sealed message too old to act on refused');
      return undefined;
    }
    const now = this.#now();
    const until = this.#seen.get(opened.from.deviceId)?.get(opened.id);
    if (until !== undefined && until > now) {
      this.#log.debug({ type: opened.type, from: opened.from.user }, 'duplicate sealed message dropped');
      return undefined;
    }
    // Remembered while a copy could still be taken: a kind that is held, as long as the mailbox may deliver it.
    this.#remember(opened.from.deviceId, opened.id, opened.ts + (HELD_TYPES.has(opened.type) ? SEALED_LIFETIME_MS : LIVE_MAX_AGE_MS), now);
    const incoming: Incoming = {
      ...opened,
      reply: { user: opened.from.user, deviceId: opened.from.deviceId, supernode: from.supernode, addresses: [], noiseKey: opened.from.noiseKey, issued: opened.ts },
    };
    if (opened.re !== undefined) {
      const waiting = this.#waiting.get(opened.re);
      if (waiting && waiting.from === opened.from.deviceId) {
        clearTimeout(waiting.timer);
        this.#waiting.delete(opened.re);
        waiting.resolve(incoming);
        return incoming;
      }
    }
    const handler = entry?.handler;
    if (!handler) {
      this.#log.debug({ type: opened.type, from: opened.from.user }, 'sealed message of an unhandled type');
      return incoming;
    }
    Promise.resolve()
      .then(() => handler(incoming))
      .catch((err: unknown) => this.#log.warn({ type: opened.type, from: opened.from.user, err: errorMessage(err) }, 'handling a sealed message failed'));
    return incoming;
  }

  /** Fail everything waiting (the node stops). */
  close(): void {
    clearInterval(this.#directTimer);
    for (const { link } of this.#direct.values()) link.close();
    this.#direct.clear();
    for (const [id, waiting] of this.#waiting) {
      clearTimeout(waiting.timer);
      waiting.reject(new PartylineError('ERR_STOPPED', 'messenger closed'));
      this.#waiting.delete(id);
    }
  }

  /** Messages remembered for duplicate suppression (all senders). */
  get remembered(): number {
    return this.#seenCount;
  }

  /**
   * Remember a message until `until`. Bounded per sender (a sender over its
   * share loses its own oldest) and in all (what can no longer arrive goes
   * first, then the oldest of the sender with the most): a flood from one
   * sender never evicts what others sent, so it cannot open them to replay.
   */
  #remember(sender: string, id: string, until: number, now: number): void {
    let ids = this.#seen.get(sender);
    if (!ids) {
      ids = new Map();
      this.#seen.set(sender, ids);
    }
    if (ids.has(id)) ids.delete(id);
    else this.#seenCount++;
    ids.set(id, until);
    const perSender = this.#options.maxRememberedPerSender ?? 1_000;
    if (ids.size > perSender) {
      this.#sweep(sender, ids, now);
      while (ids.size > perSender) this.#forget(sender, ids, ids.keys().next().value!);
    }
    const max = this.#options.maxRemembered ?? 20_000;
    if (this.#seenCount <= max) return;
    if (now - this.#sweptAt >= 1_000) {
      this.#sweptAt = now;
      for (const [s, list] of this.#seen) this.#sweep(s, list, now);
    }
    while (this.#seenCount > max) {
      let most: [string, Map<string, number>] | undefined;
      for (const e of this.#seen) if (!most || e[1].size > most[1].size) most = e;
      this.#forget(most![0], most![1], most![1].keys().next().value!);
    }
  }

  #sweep(sender: string, ids: Map<string, number>, now: number): void {
    for (const [id, until] of ids) if (until <= now) this.#forget(sender, ids, id);
  }

  #forget(sender: string, ids: Map<string, number>, id: string): void {
    if (ids.delete(id)) this.#seenCount--;
    if (ids.size === 0) this.#seen.delete(sender);
  }
}
