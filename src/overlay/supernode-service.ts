import { verifyCredential } from '../crypto/credential.js';
import type { Credential } from '../crypto/credential.js';
import type { VerifiedPeer } from '../crypto/handshake-payload.js';
import { CredentialError, PartylineError, errorMessage } from '../errors.js';
import { LinkHandlers } from '../link/link.js';
import type { Link } from '../link/link.js';
import type { PeerLink } from '../link/transport.js';
import type { Logger } from '../system/logging.js';
import { formatHostPort } from '../util/host-port.js';
import { Attach, Leaving, Supernodes } from './messages.js';
import type { SupernodeInfo } from './messages.js';
import type { SupernodePeers } from './supernode-peers.js';
import { INDEX_LINK_ROLE } from './index/link-pool.js';
import type { LoginTunnelRelay } from './tunnel.js';

export interface SupernodeServiceOptions {
  network: string;
  log: Logger;
  /** The login server's Ed25519 key: credentials are checked against it, offline. */
  loginServerKey: Buffer | undefined;
  keepAliveS: number;
  attachTimeoutMs: number;
  maxNodes: number;
  peers: SupernodePeers;
  /** What this supernode advertises about itself. */
  self: () => SupernodeInfo | undefined;
  tunnels: LoginTunnelRelay;
  /** Links from other supernodes' index pools (handshake role `supernode-index`); closed when not given. */
  indexLinks?: (peerLink: PeerLink) => void;
  /** An ordinary node attached (or renewed its credential) on this link. */
  onNodeAttached?: (link: Link, credential: Credential) => void;
  now?: () => number;
}

export interface AttachedNode {
  user: string;
  deviceId: string;
  observed: string;
  attachedAt: number;
  expires: number;
  link: Link;
  peer: VerifiedPeer;
}

/** A credential may be renewed up to this long after it expired before the link is dropped. */
const EXPIRY_GRACE_MS = 60_000;

/**
 * The supernode's service to ordinary nodes (DESIGN.md "Roles"): accepts
 * their Noise links, requires a valid credential within a few seconds (a
 * login tunnel may be used meanwhile), expects keep-alives, hands out other
 * supernodes, and drops whoever misbehaves without disturbing the rest.
 */
export class SupernodeService {
  #options: SupernodeServiceOptions;
  #log: Logger;
  #attached = new Map<Link, AttachedNode>();
  /** The same nodes by device id (the newest link when a device attached twice). */
  #byDevice = new Map<string, AttachedNode>();
  /** Links that have not attached yet: what their handshake proved, and when they must have attached by. */
  #pending = new Map<Link, { peer: VerifiedPeer; deadline: number }>();
  /** One handler table for every link this service accepts (LinkServer passes it to each Link). */
  readonly handlers = new LinkHandlers();
  #sweepTimer: NodeJS.Timeout | undefined;
  #gossipTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #running = false;
  #leaving = false;
  #gossipSoon: NodeJS.Timeout | undefined;
  #now: () => number;

  constructor(options: SupernodeServiceOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.handlers.handle(Attach, (body, link) => this.#attachRequest(link, body.credential, body.supernode));
    options.tunnels.register(this.handlers);
  }

  get attachedCount(): number {
    return this.#attached.size;
  }

  attachedNodes(): AttachedNode[] {
    return [...this.#attached.values()];
  }

  /** The node with this device id attached here, if any. */
  attachedDevice(deviceId: string): AttachedNode | undefined {
    return this.#byDevice.get(deviceId);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const sweepMs = Math.max(500, (this.#options.keepAliveS * 1000) / 2);
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#sweepTimer.unref();
    // One timer for every attach deadline, instead of one per link.
    this.#deadlineTimer = setInterval(() => this.#dropLate(), Math.min(500, this.#options.attachTimeoutMs));
    this.#deadlineTimer.unref();
    this.#gossipTimer = setInterval(() => this.#gossip(), 30_000);
    this.#gossipTimer.unref();
  }

  /** Push the supernode list to attached nodes soon (a new peer joined); several calls within a second make one push. */
  gossipSoon(): void {
    if (!this.#running || this.#gossipSoon) return;
    this.#gossipSoon = setTimeout(() => {
      this.#gossipSoon = undefined;
      if (this.#running) this.#gossip();
    }, 1000);
    this.#gossipSoon.unref();
  }

  /**
   * Step down gracefully (demotion, shutdown): refuse new nodes, tell the
   * attached ones where to go (`leaving` with other supernodes), give them
   * up to `timeoutMs` to attach there and close their links themselves —
   * they keep their credentials, so nobody logs in again — then stop.
   * Returns how many nodes left by themselves and how many were cut off.
   */
  async leave(timeoutMs: number): Promise<{ moved: number; cut: number }> {
    if (!this.#running) return { moved: 0, cut: 0 };
    this.#leaving = true;
    const others = this.#options.peers.list(10, this.#options.self()?.address);
    const before = this.#attached.size;
    if (others.length > 0) {
      for (const node of this.#attached.values()) {
        try {
          node.link.notify(Leaving, { supernodes: others });
        } catch (err) {
          this.#log.debug({ err: errorMessage(err) }, 'cannot tell node we are leaving');
        }
      }
      const deadline = this.#now() + timeoutMs;
      while (this.#attached.size > 0 && this.#now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const cut = this.#attached.size;
    this.#log.info({ moved: before - cut, cut, alternates: others.length }, 'handed attached nodes over');
    this.stop();
    return { moved: before - cut, cut };
  }

  /** Hand attached nodes the addresses of other supernodes, then close their links. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#sweepTimer);
    clearInterval(this.#gossipTimer);
    clearInterval(this.#deadlineTimer);
    clearTimeout(this.#gossipSoon);
    const others = this.#options.peers.list(10, this.#options.self()?.address);
    for (const node of this.#attached.values()) {
      try {
        node.link.notify(Leaving, { supernodes: others });
      } catch (err) {
        this.#log.debug({ err: errorMessage(err) }, 'cannot tell node we are leaving');
      }
      node.link.close();
    }
    this.#attached.clear();
    this.#byDevice.clear();
  }

  /** A new Noise link from a node or a supernode (LinkServer.onLink). */
  accept({ link, peer }: PeerLink): void {
    if (!this.#running || this.#leaving) {
      link.close();
      return;
    }
    if (peer.role === INDEX_LINK_ROLE) {
      if (this.#options.indexLinks) this.#options.indexLinks({ link, peer });
      else link.close();
      return;
    }
    if (link.sharedHandlers !== this.handlers) {
      // A link made without this service's table (tests, other listeners): give it its own handlers.
      this.#options.tunnels.serve(link);
      link.handle(Attach, (body) => this.#attachRequest(link, body.credential, body.supernode));
    }
    this.#pending.set(link, { peer, deadline: this.#now() + this.#options.attachTimeoutMs });
    link.on('close', () => {
      this.#pending.delete(link);
      const node = this.#attached.get(link);
      if (node) {
        this.#attached.delete(link);
        if (this.#byDevice.get(node.deviceId) === node) this.#byDevice.delete(node.deviceId);
        this.#log.info({ user: node.user, deviceId: node.deviceId }, 'node detached');
      }
    });
  }

  /**
   * Keep a link that will not attach past the attach deadline: a node
   * attached to another supernode that dialled this one only for a TCP relay
   * leg (src/relay/). The credential it presented in its Noise handshake must
   * verify here as an Attach would (login server signature, network,
   * validity, bound to the link's Noise and identity keys). From then on the
   * caller owns the link and closes it when done: keep-alive and expiry
   * sweeps do not cover it. Throws the CredentialError, `ERR_ATTACH_NO_TRUST`,
   * or `ERR_ATTACH_STATE` when the link is not waiting to attach.
   */
  admitWithoutAttach(link: Link): Credential {
    const pending = this.#pending.get(link);
    if (!pending) throw new PartylineError('ERR_ATTACH_STATE', 'this link is not waiting to attach');
    const loginServerKey = this.#options.loginServerKey;
    if (!loginServerKey) throw new PartylineError('ERR_ATTACH_NO_TRUST', 'this supernode has no login server key (network.loginServer.publicKey) to check credentials with');
    const { peer } = pending;
    if (!peer.credential) throw new CredentialError('ERR_CREDENTIAL_MISSING', 'no credential in the handshake');
    const credential = verifyCredential(peer.credential, { loginServerKey, now: this.#now(), network: this.#options.network, noiseKey: link.channel.remoteStaticKey });
    if (credential.deviceKey !== peer.identityKey.toString('base64')) {
      throw new CredentialError('ERR_CREDENTIAL_KEY_BINDING', 'credential is for another device key than the one proven in the handshake');
    }
    this.#pending.delete(link);
    this.#log.info({ peer: link.remoteAddress, user: credential.user, deviceId: credential.deviceId }, 'link kept without attach');
    return credential;
  }

  #dropLate(): void {
    const now = this.#now();
    for (const [link, { peer, deadline }] of this.#pending) {
      if (deadline > now) continue;
      this.#pending.delete(link);
      if (this.#attached.has(link) || link.closed) continue;
      this.#log.info({ peer: link.remoteAddress, deviceId: peer.deviceId }, 'dropping link: no credential in time');
      link.close(new PartylineError('ERR_ATTACH_TIMEOUT', `no valid credential within ${this.#options.attachTimeoutMs} ms`));
    }
  }

  #attachRequest(link: Link, credential: Record<string, unknown>, supernode: SupernodeInfo | undefined) {
    const peer = this.#pending.get(link)?.peer ?? this.#attached.get(link)?.peer;
    if (!peer) throw new PartylineError('ERR_ATTACH_STATE', 'this link is not waiting to attach');
    return this.#attach(link, peer, credential, supernode);
  }

  #attach(link: Link, peer: VerifiedPeer, rawCredential: Record<string, unknown>, supernode: SupernodeInfo | undefined) {
    const loginServerKey = this.#options.loginServerKey;
    if (!loginServerKey) {
      throw new PartylineError('ERR_ATTACH_NO_TRUST', 'this supernode has no login server key (network.loginServer.publicKey) to check credentials with');
    }
    const now = this.#now();
    let credential: Credential;
    try {
      credential = verifyCredential(rawCredential, { loginServerKey, now, network: this.#options.network, noiseKey: link.channel.remoteStaticKey });
    } catch (err) {
      this.#log.info({ peer: link.remoteAddress, code: (err as PartylineError).code, reason: errorMessage(err) }, 'attach refused');
      throw err;
    }
    if (credential.deviceKey !== peer.identityKey.toString('base64')) {
      throw new PartylineError('ERR_CREDENTIAL_KEY_BINDING', 'credential is for another device key than the one proven in the handshake');
    }
    const observed = formatHostPort({ host: link.remoteAddress ?? '0.0.0.0', port: link.channel.remotePort ?? 1 });
    const self = this.#options.self();
    const answer = {
      keepAliveS: this.#options.keepAliveS,
      observed,
      supernodes: this.#options.peers.list(10, supernode?.address),
      user: credential.user,
      ...(self ? { self } : {}),
    };
    if (supernode) {
      this.#pending.delete(link);
      // Checked in the background (dial-back); a claim that fails is dropped with its link.
      this.#options.peers.acceptPeer(link, supernode, peer.deviceId).then(
        (accepted) => {
          if (accepted) this.#log.info({ peer: supernode.address, deviceId: peer.deviceId }, 'supernode peered with us');
          else link.close(new PartylineError('ERR_PEER_REFUSED', 'supernode claim not confirmed'));
        },
        (err: unknown) => this.#log.error({ err: errorMessage(err) }, 'peer check failed'),
      );
      return answer;
    }
    const existing = this.#attached.get(link);
    if (existing) {
      // A renewed credential on the same link.
      existing.expires = credential.expires;
      this.#options.onNodeAttached?.(link, credential);
      return answer;
    }
    if (this.#attached.size >= this.#options.maxNodes) {
      throw new PartylineError('ERR_ATTACH_FULL', `this supernode serves its maximum of ${this.#options.maxNodes} nodes`);
    }
    this.#pending.delete(link);
    const node: AttachedNode = { user: credential.user, deviceId: credential.deviceId, observed, attachedAt: now, expires: credential.expires, link, peer };
    this.#attached.set(link, node);
    this.#byDevice.set(node.deviceId, node);
    this.#log.info({ user: credential.user, deviceId: credential.deviceId, observed }, 'node attached');
    this.#options.onNodeAttached?.(link, credential);
    return answer;
  }

  /** Drop nodes that stopped sending keep-alives, or whose credential ran out. */
  #sweep(): void {
    const now = this.#now();
    const silentMs = this.#options.keepAliveS * 1000 * 2.5;
    for (const node of [...this.#attached.values()]) {
      if (now - node.link.lastReceived > silentMs) {
        this.#log.info({ user: node.user, deviceId: node.deviceId }, 'dropping silent node');
        node.link.close(new PartylineError('ERR_KEEPALIVE', `no keep-alive for ${Math.round((now - node.link.lastReceived) / 1000)} s`));
      } else if (node.expires + EXPIRY_GRACE_MS < now) {
        this.#log.info({ user: node.user, deviceId: node.deviceId }, 'dropping node with expired credential');
        node.link.close(new PartylineError('ERR_CREDENTIAL_EXPIRED', 'credential expired and was not renewed'));
      }
    }
  }

  #gossip(): void {
    const list = this.#options.peers.list(10);
    for (const node of this.#attached.values()) {
      if (!node.link.closed) node.link.notify(Supernodes, { supernodes: list });
    }
  }
}
