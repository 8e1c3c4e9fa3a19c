import { z } from 'zod';
import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { AbortedError, PartylineError, errorMessage } from '../../errors.js';
import type { Link, LinkOptions } from '../../link/link.js';
import { dialLink } from '../../link/transport.js';
import type { Logger } from '../../system/logging.js';
import { isHostPort, parseHostPort } from '../../util/host-port.js';
import { defineRequest } from '../../wire/messages.js';
import type { RequestDef } from '../../wire/messages.js';
import { IndexError } from './errors.js';
import { idToHex, supernodeId } from './node-id.js';
import type { NodeId } from './node-id.js';
import type { ContactInfo } from './routing-table.js';

/**
 * Outgoing index links from this supernode to other supernodes, by contact
 * (`{id, address, publicKey?}` from the routing table or a lookup answer).
 *
 * ## Authentication
 *
 * - The dialler presents this supernode's own credential (issued by the login
 *   server to its service account) in the Noise handshake payload and the
 *   role `INDEX_LINK_ROLE`; the receiving supernode checks the credential
 *   (IndexService.accept) before it serves anything. No `Attach` is sent:
 *   index links are not peer links (see index-service.ts).
 * - The contact's identity is checked from the handshake: IK with its
 *   `publicKey` when known (the key is pinned), XX otherwise; either way the
 *   link is closed and the request fails with `ERR_INDEX_PEER_KEY` unless
 *   SHA-256 of the proven Noise key is the contact's `id`.
 * - The first message on a new link is `index.hello {address}`: where this
 *   supernode serves, so the other side can enter it in its routing table.
 *
 * ## Pooling
 *
 * One link per contact, dialled on demand and reused; concurrent requests
 * to one contact share the dial. At most `maxLinks` links (dialling ones
 * included): a new one closes the least recently used idle link, and fails
 * with `ERR_INDEX_POOL_FULL` when every link is busy. Links with no request
 * in flight and no traffic for `idleMs` are closed. Incoming index links of
 * known supernodes can be `adopt()`ed so both directions share one link.
 *
 * ## Pacing
 *
 * A receiving Link drops a peer that sends more than its rate limit
 * (200 messages/s by default), so requests on one link are paced at
 * `requestsPerSecond` with a burst of `burst` (GCRA); a request that would
 * wait past its deadline fails with `ERR_INDEX_BUSY` instead.
 */
export const INDEX_LINK_ROLE = 'supernode-index';

const hexId = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits');

/**
 * First request on an index link: the dialler says where it serves. The
 * receiver enters `{id: SHA-256(Noise key), address, publicKey}` in its
 * routing table when the address's host is the one the link comes from,
 * and answers with its own id; otherwise it answers `ERR_INDEX_HELLO_ADDRESS`
 * and still serves the link's requests, as from an unknown party.
 */
export const IndexHello = defineRequest(
  'index.hello',
  z.object({ address: z.string().max(300).refine(isHostPort, { message: 'expected "host:port"' }) }).strict(),
  z.object({ id: hexId }).strict(),
);

export interface LinkPoolOptions {
  identity: Identity;
  network: string;
  log: Logger;
  /** This supernode's credential, shown in every handshake. */
  credential: () => Credential | undefined;
  /** `host:port` this supernode serves on, announced in `index.hello` (none: no hello). */
  announce?: string;
  /** Called on each new outgoing link before it starts receiving (register handlers here). */
  setup?: (link: Link, contact: ContactInfo) => void;
  /** Open links at most, dialling ones included (default 32). */
  maxLinks?: number;
  /** Close a link with nothing in flight and no traffic for this long (default 60 s). */
  idleMs?: number;
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Requests per second sent on one link (default 100: half of what a Link accepts by default). */
  requestsPerSecond?: number;
  /** Requests that may go out at once before pacing starts (default 50). */
  burst?: number;
  /** Options of the links this pool opens. */
  link?: Omit<LinkOptions, 'log'>;
  now?: () => number;
}

export interface PoolRequestOptions {
  /** Deadline for dial, pacing and answer together (default 2 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Entry {
  contact: ContactInfo;
  link: Link;
  lastUsed: number;
  inFlight: number;
  /** GCRA theoretical arrival time of the next request (ms). */
  tat: number;
}

interface Dial {
  promise: Promise<Entry>;
  /** Callers waiting for it: the new link starts with this many requests in flight. */
  waiters: number;
  /** Set when the link is up: a caller that gives up after that is in flight on it. */
  entry?: Entry;
}

export class LinkPool {
  readonly maxLinks: number;
  readonly idleMs: number;
  #options: LinkPoolOptions;
  #log: Logger;
  #now: () => number;
  /** Least recently used first. */
  #links = new Map<NodeId, Entry>();
  #dialing = new Map<NodeId, Dial>();
  #waits = new Set<{ timer: NodeJS.Timeout; reject: (err: Error) => void }>();
  #abort = new AbortController();
  #sweepTimer: NodeJS.Timeout | undefined;
  #running = false;
  #intervalMs: number;
  #toleranceMs: number;

  constructor(options: LinkPoolOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.maxLinks = options.maxLinks ?? 32;
    this.idleMs = options.idleMs ?? 60_000;
    const rate = options.requestsPerSecond ?? 100;
    const burst = options.burst ?? 50;
    if (!Number.isInteger(this.maxLinks) || this.maxLinks < 1) throw new RangeError(`maxLinks ${this.maxLinks}: expected a positive integer`);
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError(`requestsPerSecond ${rate} / burst ${burst}: expected positive values`);
    this.#intervalMs = 1000 / rate;
    this.#toleranceMs = this.#intervalMs * (burst - 1);
  }

  /** Open links (dialling ones not counted). */
  get size(): number {
    return this.#links.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    this.#sweepTimer = setInterval(() => this.sweep(), Math.max(100, Math.floor(this.idleMs / 2)));
    this.#sweepTimer.unref();
  }

  /** Close every link, abort dials and paced requests. Idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#abort.abort();
    for (const wait of [...this.#waits]) {
      clearTimeout(wait.timer);
      wait.reject(new AbortedError('index link pool stopped'));
    }
    this.#waits.clear();
    for (const entry of [...this.#links.values()]) entry.link.close();
    this.#links.clear();
  }

  /** The contact as verified on its open link (with the Noise key it proved), if any. */
  contact(id: NodeId): ContactInfo | undefined {
    return this.#links.get(id)?.contact;
  }

  has(id: NodeId): boolean {
    const entry = this.#links.get(id);
    return entry !== undefined && !entry.link.closed;
  }

  /**
   * One request to a contact over its pooled link, dialled if need be.
   * Fails with the dial's error (`ERR_CONNECT`, `ERR_TIMEOUT`, a NoiseError),
   * `ERR_INDEX_PEER_KEY`, `ERR_INDEX_POOL_FULL`, `ERR_INDEX_BUSY`, the
   * link's (`ERR_LINK_CLOSED`, a RemoteError ...) or `ERR_ABORTED`.
   */
  async request<Req, Res>(contact: ContactInfo, def: RequestDef<Req, Res>, body: Req, options: PoolRequestOptions = {}): Promise<Res> {
    const timeoutMs = options.timeoutMs ?? 2_000;
    const deadline = this.#now() + timeoutMs;
    // An open link is reserved at once (counted in flight), so that nothing evicts it meanwhile.
    const entry = this.#reserve(contact, options.signal) ?? (await this.#dialed(contact, deadline, options.signal));
    try {
      if (!this.#running) throw new AbortedError('index link pool stopped');
      await this.#pace(entry, deadline, options.signal);
      const remaining = Math.max(1, deadline - this.#now());
      return await entry.link.request(def, body, { timeoutMs: remaining, ...(options.signal ? { signal: options.signal } : {}) });
    } finally {
      entry.inFlight--;
      entry.lastUsed = this.#now();
    }
  }

  /**
   * Pool an incoming index link of a verified supernode (its hello was
   * accepted), so requests to it go over the same link. False when a link
   * to it is open already or the pool is full of busy links.
   */
  adopt(contact: ContactInfo, link: Link): boolean {
    if (!this.#running || link.closed || this.has(contact.id) || this.#dialing.has(contact.id)) return false;
    if (!this.#makeRoom()) return false;
    this.#add(contact, link, 0);
    return true;
  }

  /** Close links idle for `idleMs` (also run by the pool's own timer). */
  sweep(): void {
    const now = this.#now();
    for (const entry of [...this.#links.values()]) {
      if (entry.link.closed) {
        this.#links.delete(entry.contact.id);
      } else if (entry.inFlight === 0 && now - Math.max(entry.lastUsed, entry.link.lastReceived) >= this.idleMs) {
        this.#log.debug({ peer: entry.contact.address }, 'closing idle index link');
        entry.link.close();
      }
    }
  }

  /** The open link to `contact`, counted in flight and moved to the most recently used end; undefined when none is open. */
  #reserve(contact: ContactInfo, signal: AbortSignal | undefined): Entry | undefined {
    if (!this.#running) throw new IndexError('ERR_INDEX_STOPPED', 'index link pool is not running');
    if (signal?.aborted) throw new AbortedError(`index request to ${contact.address} aborted`);
    const open = this.#links.get(contact.id);
    if (!open || open.link.closed) return undefined;
    this.#links.delete(contact.id);
    this.#links.set(contact.id, open);
    open.inFlight++;
    return open;
  }

  /** A new link to `contact` (sharing a dial already under way), counted in flight for this caller. */
  #dialed(contact: ContactInfo, deadline: number, signal: AbortSignal | undefined): Promise<Entry> {
    let dial = this.#dialing.get(contact.id);
    if (!dial) {
      if (!this.#makeRoom()) {
        return Promise.reject(new IndexError('ERR_INDEX_POOL_FULL', `index link pool: all ${this.maxLinks} links are busy, cannot open one to ${contact.address}`));
      }
      const started: Dial = { promise: Promise.resolve(undefined as unknown as Entry), waiters: 0 };
      started.promise = this.#dial(contact, deadline, started).finally(() => this.#dialing.delete(contact.id));
      this.#dialing.set(contact.id, started);
      dial = started;
    }
    const waiting = dial;
    waiting.waiters++;
    if (!signal) return waiting.promise;
    return raceAbort(waiting.promise, signal, `index request to ${contact.address} aborted`, () => {
      if (waiting.entry) waiting.entry.inFlight--;
      else waiting.waiters--;
    });
  }

  /** Room for one more link: closes the least recently used idle one if full. */
  #makeRoom(): boolean {
    if (this.#links.size + this.#dialing.size < this.maxLinks) return true;
    for (const entry of this.#links.values()) {
      if (entry.link.closed || entry.inFlight === 0) {
        this.#links.delete(entry.contact.id);
        entry.link.close();
        return true;
      }
    }
    return false;
  }

  async #dial(contact: ContactInfo, deadline: number, dial: Dial): Promise<Entry> {
    const { host, port } = parseHostPort(contact.address);
    const publicKey = contact.publicKey === undefined ? undefined : Buffer.from(contact.publicKey, 'base64');
    if (publicKey && (publicKey.length !== 32 || supernodeId(publicKey) !== contact.id)) {
      throw new IndexError('ERR_INDEX_PEER_KEY', `contact ${contact.address}: its public key does not hash to its id ${idToHex(contact.id).slice(0, 16)}…`);
    }
    const remaining = Math.max(1, deadline - this.#now());
    let verified: ContactInfo | undefined;
    const { link } = await dialLink({
      identity: this.#options.identity,
      network: this.#options.network,
      role: INDEX_LINK_ROLE,
      credential: this.#options.credential,
      log: this.#log,
      host,
      port,
      ...(publicKey ? { pattern: 'IK' as const, remoteStaticKey: publicKey } : { pattern: 'XX' as const }),
      connectTimeoutMs: Math.min(this.#options.connectTimeoutMs ?? 2_000, remaining),
      handshakeTimeoutMs: Math.min(this.#options.handshakeTimeoutMs ?? 2_000, remaining),
      signal: this.#abort.signal,
      ...(this.#options.link ? { link: this.#options.link } : {}),
      setup: (link) => {
        const key = link.channel.remoteStaticKey;
        if (supernodeId(key) !== contact.id) {
          this.#log.info({ peer: contact.address }, 'index contact refused: its Noise key does not match its id');
          throw new IndexError('ERR_INDEX_PEER_KEY', `contact ${contact.address}: the key it proved does not hash to its id ${idToHex(contact.id).slice(0, 16)}…`);
        }
        verified = { id: contact.id, address: contact.address, publicKey: key.toString('base64') };
        this.#options.setup?.(link, verified);
      },
    });
    if (!this.#running) {
      link.close();
      throw new AbortedError('index link pool stopped');
    }
    const announce = this.#options.announce;
    if (announce !== undefined) {
      // Not awaited: the peer handles messages in order, so the hello is in effect before the request that follows.
      link.request(IndexHello, { address: announce }, { timeoutMs: 10_000 }).catch((err: unknown) => {
        if (!link.closed) this.#log.info({ peer: contact.address, code: (err as PartylineError).code, err: errorMessage(err) }, 'index hello refused');
      });
    }
    // The callers waiting for this dial are in flight on it from now on.
    dial.entry = this.#add(verified!, link, dial.waiters);
    return dial.entry;
  }

  #add(contact: ContactInfo, link: Link, inFlight: number): Entry {
    const entry: Entry = { contact, link, lastUsed: this.#now(), inFlight, tat: 0 };
    this.#links.set(contact.id, entry);
    link.once('close', () => {
      if (this.#links.get(contact.id) === entry) this.#links.delete(contact.id);
    });
    return entry;
  }

  /** Wait for this request's turn on the link (GCRA), or fail if that is past the deadline. */
  #pace(entry: Entry, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    if (!this.#running) return Promise.reject(new AbortedError('index link pool stopped'));
    const now = this.#now();
    const tat = Math.max(entry.tat, now);
    const sendAt = Math.max(now, tat - this.#toleranceMs);
    if (sendAt >= deadline) {
      return Promise.reject(new IndexError('ERR_INDEX_BUSY', `index link to ${entry.contact.address}: more requests queued than can be sent before the deadline`));
    }
    entry.tat = tat + this.#intervalMs;
    const waitMs = sendAt - now;
    if (waitMs <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const wait = {
        timer: setTimeout(() => {
          this.#waits.delete(wait);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, waitMs),
        reject: (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        clearTimeout(wait.timer);
        this.#waits.delete(wait);
        reject(new AbortedError(`index request to ${entry.contact.address} aborted`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waits.add(wait);
    });
  }
}

/** `promise`, or an AbortedError as soon as `signal` aborts (then `onAbort` runs). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, message: string, onAbort: () => void): Promise<T> {
  if (signal.aborted) {
    onAbort();
    return Promise.reject(new AbortedError(message));
  }
  return new Promise<T>((resolve, reject) => {
    const aborted = (): void => {
      onAbort();
      reject(new AbortedError(message));
    };
    signal.addEventListener('abort', aborted, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', aborted);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', aborted);
        reject(err instanceof Error ? err : new PartylineError('ERR_INDEX', String(err)));
      },
    );
  });
}
