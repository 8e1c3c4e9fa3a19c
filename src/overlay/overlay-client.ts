import { EventEmitter } from 'node:events';
import type { Identity } from '../crypto/identity.js';
import { PartylineError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import type { Logger } from '../system/logging.js';
import type { CredentialKeeper } from './credential-keeper.js';
import { isFinalLoginError } from './credential-keeper.js';
import { candidatesFrom, raceConnect } from './fast-attach.js';
import type { ConnectCandidate, RaceResult } from './fast-attach.js';
import type { HostCache } from './host-cache.js';
import { Attach, Leaving, Supernodes } from './messages.js';
import type { SupernodeInfo } from './messages.js';

export type OverlayState = 'stopped' | 'connecting' | 'logging-in' | 'attached' | 'waiting';

export interface OverlayClientOptions {
  identity: Identity;
  network: string;
  log: Logger;
  hostCache: HostCache;
  onHostCacheChange: () => void;
  credentials: CredentialKeeper;
  /** Keep-alive interval until the supernode says otherwise. */
  keepAliveS: number;
  /** Candidates tried at once. */
  parallel?: number;
  /** How often alternates are checked in the background. */
  alternateCheckMs?: number;
  now?: () => number;
}

export interface AttachedSupernode {
  /** The address this node dialled. */
  address: string;
  /** The address the supernode advertises (what others can reach; often the same). */
  advertised: string;
  deviceId: string;
  rttMs: number;
  since: number;
}

interface OverlayEvents {
  attached: [AttachedSupernode];
  detached: [];
}

const ALTERNATES = 5;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 30_000;
/** A supernode that took our handshake but refused the attachment is skipped this long. */
const AVOID_MS = 60_000;
/** An attachment that ends sooner than this does not reset the retry back-off. */
const STABLE_ATTACHMENT_MS = 30_000;
/** After a refusal no retry can fix (wrong password), wait this long before asking again. */
const LOGIN_REFUSED_RETRY_MS = 60_000;

/**
 * An ordinary node's place in the overlay (DESIGN.md "Joining the network"):
 * races host-cache entries for a supernode, logs in (directly or through
 * that supernode), attaches with the credential, sends keep-alives, renews
 * the credential in the background, keeps an alternate-node table, and
 * re-attaches at once when its supernode goes away.
 */
export class OverlayClient extends EventEmitter<OverlayEvents> {
  #options: OverlayClientOptions;
  #log: Logger;
  #now: () => number;
  #state: OverlayState = 'stopped';
  #link: Link | undefined;
  #attached: AttachedSupernode | undefined;
  #alternates: SupernodeInfo[] = [];
  #lastError: string | undefined;
  #retryMs = RETRY_MIN_MS;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #abort = new AbortController();
  #timers: NodeJS.Timeout[] = [];
  #keepAliveS: number;
  /** Supernodes that refused us recently: address → until (epoch ms). */
  #avoid = new Map<string, number>();
  #wakeAfterDetach = false;
  #moving = false;

  constructor(options: OverlayClientOptions) {
    super();
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#keepAliveS = options.keepAliveS;
  }

  get state(): OverlayState {
    return this.#state;
  }

  get supernode(): AttachedSupernode | undefined {
    return this.#attached;
  }

  get alternates(): readonly SupernodeInfo[] {
    return this.#alternates;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** The link to the current supernode, when attached. */
  get link(): Link | undefined {
    return this.#attached ? this.#link : undefined;
  }

  start(): void {
    if (this.#state !== 'stopped') return;
    this.#abort = new AbortController();
    this.#state = 'connecting';
    this.#loop = this.#run().catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'overlay loop failed'));
    const renew = setInterval(() => this.#renew(), 30_000);
    const alternates = setInterval(() => this.#checkAlternates(), this.#options.alternateCheckMs ?? 120_000);
    renew.unref();
    alternates.unref();
    this.#timers.push(renew, alternates);
  }

  /** A supernode was just found (mDNS): when waiting to retry, try now. */
  retryNow(): void {
    if (this.#state === 'waiting' || this.#state === 'connecting') {
      this.#retryMs = RETRY_MIN_MS;
      this.#wake?.();
    }
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#abort.abort();
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    this.#wake?.();
    this.#link?.close();
    await this.#loop;
  }

  #stopped(): boolean {
    return this.#state === 'stopped';
  }

  async #run(): Promise<void> {
    while (this.#state !== 'stopped') {
      if (this.#attached) {
        await this.#sleepUntilWoken();
        if (this.#wakeAfterDetach && !this.#stopped()) {
          // A supernode that drops us right after attaching must not make us spin.
          this.#wakeAfterDetach = false;
          const wait = this.#retryMs;
          this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
          await this.#sleep(wait);
        }
        continue;
      }
      try {
        await this.#connectOnce();
        this.#lastError = undefined;
      } catch (err) {
        if (this.#stopped()) return;
        this.#lastError = errorMessage(err);
        const wait = isFinalLoginError(err) ? LOGIN_REFUSED_RETRY_MS : this.#retryMs;
        this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
        this.#state = 'waiting';
        this.#log.warn({ code: (err as PartylineError).code, err: this.#lastError, retryInMs: wait }, 'not attached to a supernode');
        await this.#sleep(wait);
        if (this.#state === 'waiting') this.#state = 'connecting';
      }
    }
  }

  #candidates(): ConnectCandidate[] {
    const now = this.#now();
    const cache = this.#options.hostCache;
    for (const [address, until] of this.#avoid) if (until <= now) this.#avoid.delete(address);
    const avoid = [...this.#avoid.keys()];
    const alternates = this.#alternates.map((a) => a.address).filter((a) => cache.has(a) && !this.#avoid.has(a));
    const rest = cache.best(cache.size, now, { exclude: [...alternates, ...avoid] });
    const ordered = [...alternates.map((a) => cache.get(a)!), ...rest];
    // When every known supernode is being avoided, try them anyway rather than none.
    return candidatesFrom(ordered.length > 0 ? ordered : cache.best(cache.size, now));
  }

  async #connectOnce(): Promise<void> {
    this.#state = 'connecting';
    const signal = this.#abort.signal;
    const started = this.#now();
    const result = await raceConnect(this.#candidates(), {
      identity: this.#options.identity,
      network: this.#options.network,
      log: this.#log,
      parallel: this.#options.parallel ?? 6,
      signal,
      onFailure: (candidate) => {
        this.#options.hostCache.recordFailure(candidate.address, this.#now());
        this.#options.onHostCacheChange();
      },
      setup: (link) => this.#handlers(link),
    });
    const { link, candidate } = result;
    this.#link = link;
    try {
      const credentials = this.#options.credentials;
      if (!credentials.current()) {
        this.#state = 'logging-in';
        await credentials.login({ via: link, supernode: candidate.address, signal });
      }
      await this.#attachOn(result, started, signal, link);
    } catch (err) {
      link.close();
      if (this.#link === link) this.#link = undefined;
      // The handshake worked but this supernode would not have us (full, no trust anchor, a bad
      // tunnel ...): count it as a failure and skip it for a while, so the next race goes elsewhere.
      if (!signal.aborted) {
        this.#options.hostCache.recordFailure(candidate.address, this.#now());
        this.#avoid.set(candidate.address, this.#now() + AVOID_MS);
        this.#options.onHostCacheChange();
      }
      throw err;
    }
  }

  /**
   * Attach on a connected link with the credential this node holds; on
   * success it becomes the current link — unless the current link is no
   * longer `expected` by then (a move raced with a re-attach), which throws.
   */
  async #attachOn(result: RaceResult, started: number, signal: AbortSignal, expected: Link | undefined): Promise<void> {
    const { link, candidate } = result;
    this.#options.hostCache.recordSuccess(candidate.address, result.handshakeMs, this.#now());
    this.#options.hostCache.add({ address: candidate.address, publicKey: link.channel.remoteStaticKey.toString('base64') }, 'self', this.#now());
    this.#options.onHostCacheChange();
    const answer = await link.request(Attach, { credential: { ...this.#options.credentials.current()! } }, { timeoutMs: 5000, signal });
    if (link.closed) throw new PartylineError('ERR_LINK_CLOSED', `supernode ${candidate.address} closed the link right after attaching`);
    if (this.#link !== expected || this.#stopped()) throw new PartylineError('ERR_ATTACH_SUPERSEDED', `attached to ${candidate.address}, but the node moved on meanwhile`);
    this.#keepAliveS = answer.keepAliveS;
    this.#link = link;
    this.#learn(answer.supernodes, candidate.address);
    // Its own word for its address counts only with the key this link proved.
    const advertised = answer.self && (answer.self.publicKey === undefined || answer.self.publicKey === link.channel.remoteStaticKey.toString('base64')) ? answer.self.address : candidate.address;
    this.#attached = { address: candidate.address, advertised, deviceId: result.peer.deviceId, rttMs: result.handshakeMs, since: this.#now() };
    this.#state = 'attached';
    link.once('close', () => this.#onDetached(link));
    this.#startKeepAlive(link);
    this.#log.info({ supernode: candidate.address, ...(advertised !== candidate.address ? { advertised } : {}), via: result.endpoint, ms: this.#now() - started, observed: answer.observed }, 'attached to supernode');
    this.emit('attached', this.#attached);
  }

  #handlers(link: Link): void {
    link.onNotice(Supernodes, (body) => this.#learn(body.supernodes, this.#attached?.address));
    link.onNotice(Leaving, (body) => {
      this.#log.info({ supernode: this.#attached?.address }, 'supernode is leaving');
      this.#alternates = body.supernodes.filter((s) => s.address !== this.#attached?.address).slice(0, ALTERNATES);
      this.#learn(body.supernodes, this.#attached?.address);
      if (this.#link === link) this.#moveAway(link);
    });
  }

  /**
   * The supernode is stepping down: attach to an alternate first, then let
   * go of the old link (make before break), so the node stays attached and
   * logged in throughout. When no alternate takes it, the old link's close
   * leads to the usual re-attach.
   */
  #moveAway(old: Link): void {
    if (this.#moving || !this.#options.credentials.current()) return;
    const leaving = this.#attached?.address;
    const cache = this.#options.hostCache;
    const entries = this.#alternates.map((a) => cache.get(a.address)).filter((e) => e !== undefined);
    if (entries.length === 0) return;
    this.#moving = true;
    const started = this.#now();
    const signal = this.#abort.signal;
    raceConnect(candidatesFrom(entries), {
      identity: this.#options.identity,
      network: this.#options.network,
      log: this.#log,
      parallel: this.#options.parallel ?? 6,
      signal,
      setup: (link) => this.#handlers(link),
    })
      .then(async (result) => {
        if (this.#stopped() || this.#link !== old) {
          result.link.close();
          return;
        }
        try {
          await this.#attachOn(result, started, signal, old);
        } catch (err) {
          result.link.close();
          throw err;
        }
        this.#log.info({ from: leaving, to: result.candidate.address, ms: this.#now() - started }, 'moved to another supernode before the old one left');
        old.close();
      })
      .catch((err: unknown) => this.#log.warn({ from: leaving, err: errorMessage(err) }, 'could not move to another supernode ahead of its leaving'))
      .finally(() => {
        this.#moving = false;
      });
  }

  #learn(infos: readonly SupernodeInfo[], current: string | undefined): void {
    const now = this.#now();
    let changed = false;
    for (const info of infos) {
      try {
        const added = this.#options.hostCache.add({ address: info.address, ...(info.publicKey ? { publicKey: info.publicKey } : {}), ...(info.altPorts ? { altPorts: info.altPorts } : {}) }, 'supernode', now);
        changed ||= added.status !== 'rejected';
      } catch (err) {
        // What a supernode hands out is a hint: a bad entry is skipped, never fatal to the attachment.
        this.#log.debug({ address: info.address, err: errorMessage(err) }, 'ignored a supernode hint');
      }
    }
    const fresh = infos.filter((s) => s.address !== current);
    const known = new Set(fresh.map((s) => s.address));
    this.#alternates = [...fresh, ...this.#alternates.filter((s) => !known.has(s.address) && s.address !== current)].slice(0, ALTERNATES);
    if (changed) this.#options.onHostCacheChange();
  }

  #startKeepAlive(link: Link): void {
    const timer = setInterval(() => {
      if (link.closed) {
        clearInterval(timer);
        this.#onDetached(link);
        return;
      }
      link.ping({ timeoutMs: Math.min(10_000, this.#keepAliveS * 1000) }).then(
        (rtt) => {
          if (this.#attached && this.#link === link) {
            this.#attached.rttMs = this.#attached.rttMs * 0.75 + rtt * 0.25;
            this.#options.hostCache.recordSuccess(this.#attached.address, rtt, this.#now());
          }
        },
        (err: unknown) => {
          this.#log.warn({ supernode: this.#attached?.address, err: errorMessage(err) }, 'keep-alive missed');
          link.close(new PartylineError('ERR_KEEPALIVE', 'supernode did not answer the keep-alive'));
        },
      );
    }, this.#keepAliveS * 1000);
    timer.unref();
    link.once('close', () => clearInterval(timer));
  }

  #onDetached(link: Link): void {
    if (this.#link !== link) return;
    const lost = this.#attached?.address;
    const lasted = this.#attached ? this.#now() - this.#attached.since : 0;
    if (lasted >= STABLE_ATTACHMENT_MS) this.#retryMs = RETRY_MIN_MS;
    this.#attached = undefined;
    this.#link = undefined;
    if (this.#state === 'stopped') return;
    this.#state = 'connecting';
    if (lost) {
      this.#options.hostCache.recordFailure(lost, this.#now());
      this.#options.onHostCacheChange();
    }
    this.#alternates = this.#alternates.filter((a) => a.address !== lost);
    this.#log.warn({ supernode: lost }, 'lost the supernode; re-attaching');
    this.emit('detached');
    this.#wakeAfterDetach = lasted < STABLE_ATTACHMENT_MS;
    this.#wake?.();
  }

  /** Renew the credential in the background before it runs out; keep the old one if the login server is down. */
  #renew(): void {
    const credentials = this.#options.credentials;
    const link = this.link;
    if (!link || !credentials.needsRenewal() || !credentials.canLogin) return;
    credentials
      .login({ via: link, ...(this.#attached ? { supernode: this.#attached.address } : {}), signal: this.#abort.signal })
      .then((credential) => link.request(Attach, { credential: { ...credential } }, { timeoutMs: 5000 }))
      .then(() => this.#log.info('credential renewed'))
      .catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'credential renewal failed; keeping the current one'));
  }

  /** Check a few alternates in the background so that a failover goes to one that is alive. */
  #checkAlternates(): void {
    if (!this.#attached || this.#alternates.length === 0) return;
    raceConnect(candidatesFrom(this.#alternates.map((a) => this.#options.hostCache.get(a.address)).filter((e) => e !== undefined)), {
      identity: this.#options.identity,
      network: this.#options.network,
      log: this.#log,
      parallel: 1,
      signal: this.#abort.signal,
      onFailure: (candidate) => {
        this.#options.hostCache.recordFailure(candidate.address, this.#now());
        this.#alternates = this.#alternates.filter((a) => a.address !== candidate.address);
      },
    }).then(
      (result) => {
        this.#options.hostCache.recordSuccess(result.candidate.address, result.handshakeMs, this.#now());
        result.link.close();
        this.#options.onHostCacheChange();
      },
      () => this.#options.onHostCacheChange(),
    );
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #sleepUntilWoken(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
