import type { Credential } from '../crypto/credential.js';
import type { Identity } from '../crypto/identity.js';
import { errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import { dialLink } from '../link/transport.js';
import type { Logger } from '../system/logging.js';
import { formatHostPort, normalizeHostPort, parseHostPort } from '../util/host-port.js';
import type { HostCache } from './host-cache.js';
import { Attach, Leaving, StunDelegate, Supernodes } from './messages.js';
import type { SupernodeInfo } from './messages.js';

export interface SupernodePeersOptions {
  identity: Identity;
  network: string;
  log: Logger;
  /** This supernode's own credential (peering is mutual: both sides show one). */
  credential: () => Credential | undefined;
  /** What this supernode advertises about itself. */
  self: () => SupernodeInfo | undefined;
  /** Known supernodes: bootstrap entries and gossip land here and persist. */
  hostCache: HostCache;
  onHostCacheChange: () => void;
  peerLinks: number;
  keepAliveS: number;
  /** A supernode became a verified peer (the global index takes it as a contact). */
  onPeer?: (info: SupernodeInfo) => void;
  /** A peer asks this supernode to answer a node's STUN request from its own address (RFC 5780 change-IP). */
  onStunDelegate?: (packet: Buffer, client: { host: string; port: number }) => void;
  now?: () => number;
}

/** STUN change-IP delegations this supernode sends its peers: far below what a peer link tolerates. */
const DELEGATE_PER_SECOND = 50;
const DELEGATE_BURST = 100;

interface Peer {
  link: Link;
  info: SupernodeInfo;
  deviceId: string;
  outgoing: boolean;
}

/**
 * A supernode's links to other supernodes: it keeps up to `peerLinks` of
 * them (bootstrap list, then gossip), learns of more supernodes from each,
 * and passes fresh lists on. Live peers are what it hands out to nodes.
 */
export class SupernodePeers {
  #options: SupernodePeersOptions;
  #log: Logger;
  #peers = new Map<string, Peer>();
  #dialing = new Set<string>();
  /** Addresses found to be this supernode itself. */
  #selfAddresses = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #running = false;
  #now: () => number;
  #delegateTokens = DELEGATE_BURST;
  #delegateAt = 0;

  constructor(options: SupernodePeersOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#peers.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#timer = setInterval(() => this.maintain(), 5_000);
    this.#timer.unref();
    this.#pingTimer = setInterval(() => this.#keepAlive(), this.#options.keepAliveS * 1000);
    this.#pingTimer.unref();
    this.maintain();
  }

  /** Tell peers this supernode is leaving, then close every peer link. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#timer);
    clearInterval(this.#pingTimer);
    for (const peer of this.#peers.values()) {
      try {
        peer.link.notify(Leaving, { supernodes: this.list(10, peer.info.address) });
      } catch (err) {
        this.#log.debug({ err: errorMessage(err) }, 'cannot tell peer we are leaving');
      }
      peer.link.close();
    }
    this.#peers.clear();
  }

  /** Live peers (verified by a handshake and a credential), best first, plus this supernode. */
  list(max: number, exclude?: string): SupernodeInfo[] {
    const out: SupernodeInfo[] = [];
    const self = this.#options.self();
    if (self && self.address !== exclude) out.push(self);
    for (const peer of this.#peers.values()) {
      if (out.length >= max) break;
      if (peer.info.address !== exclude) out.push(peer.info);
    }
    return out.slice(0, max);
  }

  /** Record supernodes another party told us about (hints, checked when dialled). */
  learn(infos: readonly SupernodeInfo[]): void {
    const now = this.#now();
    let changed = false;
    for (const info of infos) {
      const address = safeNormalize(info.address);
      if (!address || this.#isSelf(address)) continue;
      try {
        const result = this.#options.hostCache.add({ address, ...(info.publicKey ? { publicKey: info.publicKey } : {}), ...(info.altPorts ? { altPorts: info.altPorts } : {}) }, 'supernode', now);
        if (result.status === 'added') changed = true;
      } catch (err) {
        // A hint from another party: a bad one is skipped, never fatal.
        this.#log.debug({ address, err: errorMessage(err) }, 'ignored a supernode hint');
      }
    }
    if (changed) this.#options.onHostCacheChange();
  }

  /**
   * A node attached to us claiming to be a supernode (incoming peering). The
   * claim is checked before the link counts as a peer link: the claimed
   * address must be the one the link comes from, and a dial back to it must
   * reach the same Noise key. Until then nothing it says is handed out, and
   * it may not ask for STUN delegation.
   */
  async acceptPeer(link: Link, claimed: SupernodeInfo, deviceId: string): Promise<boolean> {
    const incoming = [...this.#peers.values()].filter((p) => !p.outgoing).length;
    if (incoming >= this.#options.peerLinks * 2) return false;
    const address = safeNormalize(claimed.address);
    if (!address) return false;
    const { host, port } = parseHostPort(address);
    if (link.remoteAddress && canonicalHost(link.remoteAddress) !== canonicalHost(host)) {
      this.#log.info({ claimed: address, from: link.remoteAddress }, 'peering refused: claimed address is not where the link comes from');
      return false;
    }
    const key = link.channel.remoteStaticKey;
    try {
      const back = await dialLink({
        identity: this.#options.identity,
        network: this.#options.network,
        role: 'supernode',
        log: this.#log,
        host,
        port,
        pattern: 'IK',
        remoteStaticKey: key,
        connectTimeoutMs: 2000,
        handshakeTimeoutMs: 2000,
      });
      back.link.close();
    } catch (err) {
      this.#log.info({ claimed: address, err: errorMessage(err) }, 'peering refused: dial-back to the claimed address failed');
      return false;
    }
    if (link.closed || !this.#running) return false;
    const info: SupernodeInfo = { address, publicKey: key.toString('base64'), ...(claimed.altPorts ? { altPorts: claimed.altPorts } : {}) };
    const existing = this.#peers.get(deviceId);
    if (existing && existing.link !== link) {
      // Both sides dialled at once: keep the link opened by the lower device id.
      const keepIncoming = deviceId < this.#options.identity.deviceId;
      if (!keepIncoming) return false;
      existing.link.close();
    }
    this.#add({ link, info, deviceId, outgoing: false });
    this.learn([info]);
    return true;
  }

  /** Dial more peers when below the target. */
  maintain(): void {
    if (!this.#running) return;
    const credential = this.#options.credential();
    if (!credential) return;
    const deficit = this.#options.peerLinks - this.#peers.size - this.#dialing.size;
    if (deficit <= 0) return;
    const connected = new Set([...this.#peers.values()].map((p) => p.info.address));
    const candidates = this.#options.hostCache
      .best(this.#options.hostCache.size, this.#now(), { exclude: [...connected, ...this.#dialing, ...this.#selfAddresses] })
      .slice(0, deficit);
    for (const entry of candidates) this.#dial(entry.address, entry.publicKey, credential);
  }

  #dial(address: string, publicKey: string | undefined, credential: Credential): void {
    const self = this.#options.self();
    if (!self) return;
    const { host, port } = parseHostPort(address);
    this.#dialing.add(address);
    const started = this.#now();
    let opened: Link | undefined;
    dialLink({
      identity: this.#options.identity,
      network: this.#options.network,
      role: 'supernode',
      credential: () => credential,
      log: this.#log,
      host,
      port,
      ...(publicKey ? { remoteStaticKey: Buffer.from(publicKey, 'base64') } : {}),
      connectTimeoutMs: 2000,
      setup: (link) => this.#handlers(link),
    })
      .then(async ({ link, peer }) => {
        opened = link;
        if (peer.deviceId === this.#options.identity.deviceId) {
          this.#selfAddresses.add(address);
          this.#options.hostCache.remove(address);
          this.#options.onHostCacheChange();
          link.close();
          return;
        }
        const answer = await link.request(Attach, { credential: { ...credential }, supernode: self });
        const info: SupernodeInfo = { address, publicKey: link.channel.remoteStaticKey.toString('base64') };
        this.#options.hostCache.recordSuccess(address, this.#now() - started, this.#now());
        if (this.#peers.has(peer.deviceId) || !this.#running || link.closed) {
          link.close();
          return;
        }
        this.#add({ link, info, deviceId: peer.deviceId, outgoing: true });
        this.learn(answer.supernodes);
        this.#log.info({ peer: address, deviceId: peer.deviceId }, 'peered with supernode');
      })
      .catch((err: unknown) => {
        opened?.close();
        this.#options.hostCache.recordFailure(address, this.#now());
        this.#options.onHostCacheChange();
        this.#log.debug({ peer: address, err: errorMessage(err) }, 'cannot peer with supernode');
      })
      .finally(() => this.#dialing.delete(address));
  }

  #handlers(link: Link): void {
    link.onNotice(Supernodes, (body) => this.learn(body.supernodes));
    link.onNotice(Leaving, (body) => this.learn(body.supernodes));
    link.onNotice(StunDelegate, (body) => {
      // Only links that completed peering (a credential was shown) may ask.
      if (![...this.#peers.values()].some((p) => p.link === link)) return;
      this.#options.onStunDelegate?.(Buffer.from(body.packet, 'base64'), parseHostPort(body.client));
    });
  }

  /** Hand a STUN request to a peer on another address; false when there is none to ask (or we are asking too often). */
  delegateStun(packet: Buffer, client: { host: string; port: number }): boolean {
    const now = this.#now();
    this.#delegateTokens = Math.min(DELEGATE_BURST, this.#delegateTokens + ((now - this.#delegateAt) / 1000) * DELEGATE_PER_SECOND);
    this.#delegateAt = now;
    if (this.#delegateTokens < 1) return false;
    this.#delegateTokens -= 1;
    const self = this.#options.self();
    const selfHost = self ? parseHostPort(self.address).host : undefined;
    const others = [...this.#peers.values()].filter((p) => parseHostPort(p.info.address).host !== selfHost);
    const peer = others[Math.floor(Math.random() * others.length)];
    if (!peer) return false;
    peer.link.notify(StunDelegate, { packet: packet.toString('base64'), client: formatHostPort(client) });
    return true;
  }

  #add(peer: Peer): void {
    this.#peers.set(peer.deviceId, peer);
    this.#options.onPeer?.(peer.info);
    if (!peer.outgoing) this.#handlers(peer.link);
    peer.link.once('close', () => {
      if (this.#peers.get(peer.deviceId)?.link === peer.link) {
        this.#peers.delete(peer.deviceId);
        this.#log.info({ peer: peer.info.address }, 'supernode peer link closed');
        if (this.#running) setTimeout(() => this.maintain(), 200).unref();
      }
    });
  }

  #keepAlive(): void {
    const limit = this.#options.keepAliveS * 1000 * 2.5;
    for (const peer of this.#peers.values()) {
      if (this.#now() - peer.link.lastReceived > limit) {
        peer.link.close();
        continue;
      }
      if (peer.outgoing) peer.link.ping({ timeoutMs: 10_000 }).catch(() => peer.link.close());
      // Gossip the current list along with the keep-alive.
      peer.link.notify(Supernodes, { supernodes: this.list(20, peer.info.address) });
    }
  }

  #isSelf(address: string): boolean {
    return this.#selfAddresses.has(address) || this.#options.self()?.address === address;
  }
}

/** An IP as text, with IPv4-mapped IPv6 reduced to IPv4. */
function canonicalHost(host: string): string {
  const h = host.startsWith('[') ? host.slice(1, -1) : host;
  return h.toLowerCase().startsWith('::ffff:') && h.includes('.') ? h.slice(7) : h.toLowerCase();
}

function safeNormalize(address: string): string | undefined {
  try {
    return normalizeHostPort(address);
  } catch {
    return undefined;
  }
}
