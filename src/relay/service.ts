import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { RemoteInfo, Socket } from 'node:dgram';
import type { SupernodeConfig } from '../config/schema.js';
import type { VerifiedPeer } from '../crypto/handshake-payload.js';
import { errorMessage } from '../errors.js';
import type { Link, LinkHandlers } from '../link/link.js';
import { canonicalIp } from '../nat/stun/address.js';
import type { TransportAddress } from '../nat/stun/address.js';
import { SourceRateLimiter } from '../nat/stun/rate-limit.js';
import type { Logger } from '../system/logging.js';
import {
  CHANNEL_BIND_REQUEST_TYPE,
  encodeChannelBindError,
  encodeChannelBindSuccess,
  parseChannelBindRequest,
  verifyChannelBindIntegrity,
} from './channel-bind.js';
import { CHANNEL_DATA_HEADER, channelDataProblem, encodeChannelData } from './channel-data.js';
import { RelayError } from './errors.js';
import { MAX_TCP_LEG_PAYLOAD, RelayAllocate, RelayBind, RelayClosed, RelayData, RelayRelease } from './messages.js';
import type { RelayAllocation, RelayCloseReason } from './messages.js';

/**
 * Supernode media relay (DESIGN.md "Calls": relay-udp and relay-tcp
 * candidates; "Supernode relays carry calls of any length, with per-user
 * quotas and authenticated allocations only").
 *
 * 1. **Allocation.** An attached node sends `relay.allocate {peer, session}`
 *    on its link to its supernode; a link that has not attached with a
 *    valid credential is refused (`ERR_RELAY_NOT_AUTHENTICATED`). The answer
 *    names the relay's UDP address (null without UDP), the TCP address a
 *    peer dials, and two legs, each a `{username, key}` with an 18-byte
 *    random key: leg 0 for the allocator, leg 1 for the peer, whose
 *    credentials the allocator passes on end to end. Quotas: `perUserMax`
 *    allocations per user (`ERR_RELAY_QUOTA`), `maxAllocations` in all
 *    (`ERR_RELAY_FULL`). An allocation lives as long as it carries traffic
 *    (a call of any length); it is freed after `idleS` without a packet on
 *    either leg, on `relay.release {allocation}` from its allocator, or when
 *    the allocator's link closes. Its legs' bindings go with it, and the
 *    allocator's link and every TCP leg's link get `relay.closed`.
 *
 * 2. **UDP legs**, on the supernode's one UDP port (RFC 7983 demultiplexing:
 *    STUN 0–3, TURN channels 64–79). A leg binds with a STUN ChannelBind
 *    (`channel-bind.ts`): USERNAME = leg username, CHANNEL-NUMBER chosen by
 *    the client, MESSAGE-INTEGRITY keyed with the leg key. A good request
 *    binds the leg to (source address, source port, channel) — channel
 *    numbers are unique only per client address — and is answered with a
 *    signed success; an unknown username or a wrong key gets a 401 and binds
 *    nothing. Binding again from a new address moves the leg (NAT
 *    rebinding): clients repeat the ChannelBind every ~30 s, and at once
 *    when media stops arriving. Media then travels as ChannelData (RFC 8656
 *    §12.4): a datagram from a bound (address, port, channel) goes to the
 *    other leg — as ChannelData with that leg's channel to its address, or
 *    as `relay.data` on its link. Datagrams from anything unbound are
 *    dropped silently and counted. The payload is never looked into: media
 *    is SRTP (end-to-end keys) above this layer.
 *
 * 3. **TCP legs**, for nodes whose network blocks UDP: `relay.bind {username,
 *    key}` on a Noise link to the relaying supernode (constant-time key
 *    check) answers `{ok, ch}`, and media flows as `relay.data {ch, d}` both
 *    ways. The allocator binds over its attached link; a peer attached
 *    elsewhere dials the `tcp` address with its credential in the handshake:
 *    once its leg key checks out, that credential is verified
 *    (`admitRelayOnly`, which also takes the link off the attach deadline)
 *    and the link is kept until none of its legs is left.
 *
 * Rates: every link takes at most 200 messages/s from its peer (Link's
 * token bucket; over it, the link closes). A 50 packet/s voice stream is a
 * quarter of that, so an attached link carries a TCP leg next to its
 * signalling. To keep a fast UDP sender from getting a TCP leg's node
 * disconnected by its own link's limit, the relay sends at most
 * `TCP_LEG_MAX_PPS` `relay.data` per second on one link (all the TCP legs
 * it carries together) and drops the rest. `limits.kbps`, when set, caps each leg's sending rate too.
 *
 * The UDP hot path is a first-byte test, a header check, one Map lookup by
 * a short string and one send of the received buffer with its channel number
 * rewritten: no parsing, no JSON, no copy.
 */

/** What the relay needs of the node's UDP port (UdpEndpoint fits). */
export interface RelayUdpPort {
  onDatagram(handler: (packet: Buffer, from: RemoteInfo) => boolean): () => void;
  readonly socket: Socket;
}

/** The user and device behind a link. */
export interface RelayNode {
  user: string;
  deviceId: string;
}

export interface RelayLimits {
  /** Allocations on this supernode at once (config supernode.maxRelayedCalls); 0 = relay nothing. */
  maxAllocations: number;
  /** Allocations one user may hold at once (supernode.relayPerUserMax). */
  perUserMax: number;
  /** Seconds without traffic on either leg before an allocation is freed (supernode.relayIdleS). */
  idleS: number;
  /** Each leg's sending rate cap in kbit/s (supernode.relayKbps); 0 or absent = none. */
  kbps?: number;
}

export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({ maxAllocations: 1000, perUserMax: 4, idleS: 30 });

/** The relay's limits from the `supernode` configuration section. */
export function relayLimitsFromConfig(config: Pick<SupernodeConfig, 'maxRelayedCalls' | 'relayPerUserMax' | 'relayIdleS' | 'relayKbps'>): RelayLimits {
  return { maxAllocations: config.maxRelayedCalls, perUserMax: config.relayPerUserMax, idleS: config.relayIdleS, kbps: config.relayKbps };
}

/** ChannelBind transaction ids remembered per leg (a refresh every 30 s: a quarter of an hour). */
const SEEN_TRANSACTIONS = 32;

export const DEFAULT_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** At most this many `relay.data` per second on one link, whatever the number of its TCP legs (see the top of this file). */
export const TCP_LEG_MAX_PPS = 150;

export interface RelayServiceOptions {
  log: Logger;
  limits?: Partial<RelayLimits>;
  /** The user and device attached on this link, or undefined (see `attachedVia`). */
  attached: (link: Link) => RelayNode | undefined;
  /**
   * For a link that has not attached: verify the credential of its
   * handshake and keep it past the attach deadline (SupernodeService
   * `admitWithoutAttach`). Throws when it cannot. Without it, TCP legs can
   * only be bound on attached links.
   */
  admitRelayOnly?: (link: Link) => RelayNode;
  /** The supernode's UDP port; without it the relay offers TCP legs only. */
  udp?: RelayUdpPort;
  /** The relay's UDP address as peers reach it (`host:port`), or null. */
  udpAddress?: () => string | null;
  /** The supernode's advertised TCP address (`host:port`); undefined = cannot relay. */
  tcpAddress: () => string | undefined;
  /**
   * Kernel receive and send buffers asked for on the UDP socket (default
   * 4 MiB; Linux caps them at net.core.rmem_max / wmem_max). All relayed
   * media shares this one socket: at 1,000 calls that is 100,000 datagrams a
   * second, and the default ~200 KB buffer overflows whenever the process is
   * off the CPU for a couple of milliseconds. 0 leaves the socket as it is.
   */
  socketBufferBytes?: number;
  /** ChannelBind requests per source address (default burst 100, 50/s). */
  bindRateLimit?: { burst: number; perSecond: number };
  /** Milliseconds, monotonic or wall clock (default Date.now). */
  now?: () => number;
}

export interface RelayStats {
  allocations: number;
  udpLegs: number;
  tcpLegs: number;
  packetsRelayed: number;
  /** Payload bytes. */
  bytesRelayed: number;
  /** Datagrams and `relay.data` not relayed: unbound source, malformed, no bound peer leg, over a rate cap, send failure. */
  dropped: number;
}

interface Leg {
  readonly allocation: Allocation;
  readonly index: 0 | 1;
  readonly username: string;
  readonly key: Buffer;
  /** Key in #udpLegs while bound over UDP. */
  udpKey: string | undefined;
  udpAddress: string;
  udpPort: number;
  udpChannel: number;
  /** Set while bound over TCP. */
  tcpLink: Link | undefined;
  tcpCh: number;
  /** The transaction ids of this leg's latest ChannelBinds (replay check). */
  seenTx: string[];
  /** Token bucket for the kbps cap: bytes this leg may still send. */
  byteTokens: number;
  byteTokensAt: number;
}

interface Allocation {
  readonly id: string;
  readonly user: string;
  readonly deviceId: string;
  readonly peer: string;
  readonly owner: Link;
  readonly legs: [Leg, Leg];
  lastActive: number;
}

interface LinkState {
  owned: Set<Allocation>;
  legs: Map<number, Leg>;
  nextCh: number;
  /** Set for links kept only for TCP legs (not attached here). */
  relayOnly: RelayNode | undefined;
  /** Token bucket: `relay.data` this link may still be sent (TCP_LEG_MAX_PPS). */
  pktTokens: number;
  pktTokensAt: number;
}

/**
 * `attached` for RelayServiceOptions from a SupernodeService: the node
 * attached on exactly this link (looked up by the device id its handshake
 * proved).
 */
export function attachedVia(service: { attachedDevice(deviceId: string): (RelayNode & { link: Link }) | undefined }): (link: Link) => RelayNode | undefined {
  return (link) => {
    const peer = link.channel.peer as VerifiedPeer | undefined;
    const node = peer ? service.attachedDevice(peer.deviceId) : undefined;
    return node !== undefined && node.link === link ? { user: node.user, deviceId: node.deviceId } : undefined;
  };
}

function udpKeyOf(address: string, port: number, channel: number): string {
  return `${address}|${port}|${channel}`;
}

export class RelayService {
  readonly #options: RelayServiceOptions;
  readonly #log: Logger;
  readonly #limits: RelayLimits;
  readonly #now: () => number;
  readonly #allocations = new Map<string, Allocation>();
  readonly #byUsername = new Map<string, Leg>();
  readonly #udpLegs = new Map<string, Leg>();
  readonly #perUser = new Map<string, number>();
  readonly #links = new Map<Link, LinkState>();
  readonly #bindLimiter: SourceRateLimiter;
  #socket: Socket | undefined;
  #detachUdp: (() => void) | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #running = false;
  #packets = 0;
  #bytes = 0;
  #dropped = 0;

  constructor(options: RelayServiceOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#limits = { ...DEFAULT_RELAY_LIMITS, ...options.limits };
    const { maxAllocations, perUserMax, idleS, kbps } = this.#limits;
    if (!(maxAllocations >= 0) || !(perUserMax >= 1) || !(idleS > 0) || (kbps !== undefined && !(kbps >= 0))) {
      throw new RelayError('ERR_RELAY_LIMITS', `relay limits: maxAllocations ${maxAllocations} (>= 0), perUserMax ${perUserMax} (>= 1), idleS ${idleS} (> 0), kbps ${String(kbps)} (>= 0)`);
    }
    this.#now = options.now ?? Date.now;
    this.#bindLimiter = new SourceRateLimiter({ burst: 100, perSecond: 50, ...options.bindRateLimit });
  }

  /** Register the relay's messages in a handler table shared by the links a SupernodeService accepts. */
  register(handlers: LinkHandlers): void {
    handlers.handle(RelayAllocate, (body, link) => this.#allocate(link, body.peer, body.session));
    handlers.handle(RelayRelease, (body, link) => ({ released: this.#release(link, body.allocation) }));
    handlers.handle(RelayBind, (body, link) => this.#bindTcp(link, body.username, body.key));
    handlers.onNotice(RelayData, (body, link) => this.#tcpData(link, body.ch, body.d));
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const udp = this.#options.udp;
    if (udp) {
      this.#socket = udp.socket;
      this.#growBuffers(this.#socket);
      const detach = udp.onDatagram(this.#onDatagram);
      // The STUN responder on the shared port takes a request with an attribute it does not know
      // (CHANNEL-NUMBER) for malformed and passes it on to nobody, so ChannelBind is read off the socket.
      this.#socket.on('message', this.#onSocketMessage);
      const socket = this.#socket;
      this.#detachUdp = () => {
        detach();
        socket.off('message', this.#onSocketMessage);
      };
    }
    const idleMs = this.#limits.idleS * 1000;
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.max(100, Math.min(5000, idleMs / 4)));
    this.#sweepTimer.unref();
  }

  /** Free every allocation (their links are told `shutdown`), close relay-only links, leave the UDP port. Idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#detachUdp?.();
    this.#detachUdp = undefined;
    this.#socket = undefined;
    for (const allocation of [...this.#allocations.values()]) this.#free(allocation, 'shutdown');
    for (const [link, state] of [...this.#links]) if (state.relayOnly) link.close();
  }

  #growBuffers(socket: Socket): void {
    const bytes = this.#options.socketBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES;
    if (bytes <= 0) return;
    try {
      if (socket.getRecvBufferSize() < bytes) socket.setRecvBufferSize(bytes);
      if (socket.getSendBufferSize() < bytes) socket.setSendBufferSize(bytes);
    } catch (err) {
      this.#log.warn({ bytes, err: errorMessage(err) }, 'cannot grow the UDP socket buffers: relayed media may be lost in bursts');
    }
  }

  stats(): RelayStats {
    let tcpLegs = 0;
    for (const state of this.#links.values()) tcpLegs += state.legs.size;
    return {
      allocations: this.#allocations.size,
      udpLegs: this.#udpLegs.size,
      tcpLegs,
      packetsRelayed: this.#packets,
      bytesRelayed: this.#bytes,
      dropped: this.#dropped,
    };
  }

  // ---- allocations -----------------------------------------------------------

  #allocate(link: Link, peer: string, session: string): RelayAllocation {
    if (!this.#running) throw new RelayError('ERR_RELAY_UNAVAILABLE', 'this supernode is not relaying');
    const node = this.#options.attached(link);
    if (!node) throw new RelayError('ERR_RELAY_NOT_AUTHENTICATED', 'relay.allocate: attach with a valid credential first');
    const tcp = this.#options.tcpAddress();
    if (tcp === undefined) throw new RelayError('ERR_RELAY_UNAVAILABLE', 'this supernode has no advertised address to relay at');
    const held = this.#perUser.get(node.user) ?? 0;
    if (held >= this.#limits.perUserMax) throw new RelayError('ERR_RELAY_QUOTA', `${node.user} already holds ${held} relay allocations (at most ${this.#limits.perUserMax})`);
    if (this.#allocations.size >= this.#limits.maxAllocations) {
      throw new RelayError('ERR_RELAY_FULL', `this supernode relays its maximum of ${this.#limits.maxAllocations} calls`);
    }
    const id = randomBytes(12).toString('base64url');
    const now = this.#now();
    // Legs and allocation point at each other: the array is filled right after.
    const legs: Leg[] = [];
    const allocation: Allocation = { id, user: node.user, deviceId: node.deviceId, peer, owner: link, legs: legs as [Leg, Leg], lastActive: now };
    const leg = (index: 0 | 1): Leg => ({
      allocation, index, username: `${id}.${index}`, key: randomBytes(18),
      udpKey: undefined, udpAddress: '', udpPort: 0, udpChannel: 0, tcpLink: undefined, tcpCh: 0, seenTx: [],
      byteTokens: this.#byteBurst(), byteTokensAt: now,
    });
    legs.push(leg(0), leg(1));
    this.#allocations.set(id, allocation);
    for (const l of allocation.legs) this.#byUsername.set(l.username, l);
    this.#perUser.set(node.user, held + 1);
    this.#stateOf(link).owned.add(allocation);
    this.#log.info({ allocation: id, user: node.user, deviceId: node.deviceId, peer, session }, 'relay allocated');
    return {
      allocation: id,
      udp: this.#socket ? (this.#options.udpAddress?.() ?? null) : null,
      tcp,
      legs: [
        { username: allocation.legs[0].username, key: allocation.legs[0].key.toString('base64') },
        { username: allocation.legs[1].username, key: allocation.legs[1].key.toString('base64') },
      ],
      idleS: this.#limits.idleS,
    };
  }

  #release(link: Link, id: string): boolean {
    const allocation = this.#allocations.get(id);
    if (!allocation || allocation.owner !== link) return false;
    this.#free(allocation, 'released');
    return true;
  }

  #free(allocation: Allocation, reason: RelayCloseReason): void {
    if (!this.#allocations.delete(allocation.id)) return;
    const held = (this.#perUser.get(allocation.user) ?? 1) - 1;
    if (held > 0) this.#perUser.set(allocation.user, held);
    else this.#perUser.delete(allocation.user);
    const ownerState = this.#links.get(allocation.owner);
    ownerState?.owned.delete(allocation);
    for (const leg of allocation.legs) {
      this.#byUsername.delete(leg.username);
      this.#unbindUdp(leg);
      this.#unbindTcp(leg, reason);
    }
    if (reason !== 'released' && reason !== 'owner-gone') this.#tell(allocation.owner, { allocation: allocation.id, reason });
    if (ownerState) this.#forgetIfUnused(allocation.owner, ownerState);
    this.#log.info({ allocation: allocation.id, user: allocation.user, reason }, 'relay freed');
  }

  #sweep(): void {
    const deadline = this.#now() - this.#limits.idleS * 1000;
    for (const allocation of [...this.#allocations.values()]) {
      if (allocation.lastActive <= deadline) this.#free(allocation, 'idle');
    }
  }

  // ---- links ------------------------------------------------------------------

  #stateOf(link: Link): LinkState {
    let state = this.#links.get(link);
    if (!state) {
      state = { owned: new Set(), legs: new Map(), nextCh: 1, relayOnly: undefined, pktTokens: TCP_LEG_MAX_PPS, pktTokensAt: this.#now() };
      this.#links.set(link, state);
      link.once('close', () => this.#linkClosed(link));
    }
    return state;
  }

  #linkClosed(link: Link): void {
    const state = this.#links.get(link);
    if (!state) return;
    this.#links.delete(link);
    for (const leg of state.legs.values()) leg.tcpLink = undefined;
    state.legs.clear();
    for (const allocation of [...state.owned]) this.#free(allocation, 'owner-gone');
  }

  /** Drop a link's state once it holds nothing; a relay-only link is closed then. */
  #forgetIfUnused(link: Link, state: LinkState): void {
    if (state.owned.size > 0 || state.legs.size > 0) return;
    if (state.relayOnly) {
      this.#log.debug({ peer: link.remoteAddress, user: state.relayOnly.user }, 'closing relay-only link: no legs left');
      link.close();
    }
    // Links stay in the map (and keep their close listener) until they close: cheap, and
    // re-binding on the same link must not add a second listener.
  }

  #tell(link: Link, body: { allocation: string; ch?: number; reason: RelayCloseReason }): void {
    if (link.closed) return;
    try {
      link.notify(RelayClosed, body);
    } catch (err) {
      this.#log.debug({ err: errorMessage(err), peer: link.remoteAddress }, 'cannot send relay.closed');
    }
  }

  // ---- TCP legs -----------------------------------------------------------------

  #bindTcp(link: Link, username: string, key: string): { ok: true; ch: number } {
    if (!this.#running) throw new RelayError('ERR_RELAY_UNAVAILABLE', 'this supernode is not relaying');
    const leg = this.#checkLeg(username, Buffer.from(key, 'base64'));
    if (!leg) {
      this.#log.debug({ peer: link.remoteAddress, username }, 'relay.bind refused: unknown username or wrong key');
      throw new RelayError('ERR_RELAY_UNAUTHORIZED', 'relay.bind: unknown leg or wrong key');
    }
    let state = this.#links.get(link);
    if (!this.#options.attached(link) && !state?.relayOnly) {
      let node: RelayNode;
      try {
        if (!this.#options.admitRelayOnly) throw new RelayError('ERR_RELAY_NOT_AUTHENTICATED', 'this relay binds TCP legs on attached links only');
        node = this.#options.admitRelayOnly(link);
      } catch (err) {
        this.#log.info({ peer: link.remoteAddress, code: (err as RelayError).code, reason: errorMessage(err) }, 'relay.bind refused: no valid credential');
        throw new RelayError('ERR_RELAY_NOT_AUTHENTICATED', `relay.bind: ${errorMessage(err)}`, { cause: err });
      }
      state = this.#stateOf(link);
      state.relayOnly = { user: node.user, deviceId: node.deviceId };
      this.#log.info({ peer: link.remoteAddress, user: node.user, deviceId: node.deviceId }, 'relay-only link admitted');
    }
    state ??= this.#stateOf(link);
    if (leg.tcpLink === link) return { ok: true, ch: leg.tcpCh };
    this.#unbindUdp(leg);
    this.#unbindTcp(leg, 'rebound');
    const ch = this.#freeCh(state);
    leg.tcpLink = link;
    leg.tcpCh = ch;
    state.legs.set(ch, leg);
    leg.allocation.lastActive = this.#now();
    this.#log.debug({ allocation: leg.allocation.id, leg: leg.index, ch, peer: link.remoteAddress }, 'relay leg bound over TCP');
    return { ok: true, ch };
  }

  #freeCh(state: LinkState): number {
    for (let i = 0; i < 0xffff; i++) {
      const ch = state.nextCh;
      state.nextCh = ch >= 0xffff ? 1 : ch + 1;
      if (!state.legs.has(ch)) return ch;
    }
    throw new RelayError('ERR_RELAY_FULL', 'this link carries too many relay legs');
  }

  #unbindTcp(leg: Leg, reason: RelayCloseReason): void {
    const link = leg.tcpLink;
    if (!link) return;
    leg.tcpLink = undefined;
    const state = this.#links.get(link);
    state?.legs.delete(leg.tcpCh);
    this.#tell(link, { allocation: leg.allocation.id, ch: leg.tcpCh, reason });
    if (state) this.#forgetIfUnused(link, state);
  }

  #tcpData(link: Link, ch: number, data: string): void {
    const leg = this.#links.get(link)?.legs.get(ch);
    if (!leg) {
      this.#dropped++;
      return;
    }
    const payload = Buffer.from(data, 'base64');
    this.#forward(leg, payload, undefined);
  }

  // ---- UDP legs -----------------------------------------------------------------

  #onDatagram = (packet: Buffer, from: RemoteInfo): boolean => {
    const first = packet[0];
    if (first === undefined || first < 0x40 || first > 0x4f) return false;
    if (channelDataProblem(packet) !== undefined) {
      this.#dropped++;
      return true;
    }
    const leg = this.#udpLegs.get(udpKeyOf(from.address, from.port, (first << 8) | packet[1]!));
    if (leg === undefined) {
      this.#dropped++;
      return true;
    }
    this.#forward(leg, packet.subarray(CHANNEL_DATA_HEADER, CHANNEL_DATA_HEADER + packet.readUInt16BE(2)), packet);
    return true;
  };

  #onSocketMessage = (packet: Buffer, from: RemoteInfo): void => {
    if (packet.length < 20 || packet.readUInt16BE(0) !== CHANNEL_BIND_REQUEST_TYPE) return;
    try {
      this.#channelBind(packet, from);
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'ChannelBind handling failed');
    }
  };

  #channelBind(packet: Buffer, from: RemoteInfo): void {
    const source: TransportAddress = { address: canonicalIp(from.address) ?? from.address, port: from.port };
    if (!this.#bindLimiter.take(source.address, this.#now())) {
      this.#dropped++;
      return;
    }
    let request;
    try {
      request = parseChannelBindRequest(packet);
    } catch (err) {
      if (!(err instanceof RelayError)) throw err;
      this.#log.trace({ from: source, reason: err.message }, 'ChannelBind dropped');
      this.#dropped++;
      return;
    }
    if (!request.ok) {
      this.#log.debug({ from: source, code: request.code, reason: request.reason }, 'ChannelBind refused');
      this.#sendTo(encodeChannelBindError(request.transactionId, request.code, request.unknown), from.address, from.port);
      return;
    }
    const leg = this.#byUsername.get(request.username);
    if (!leg || !verifyChannelBindIntegrity(packet, leg.key)) {
      this.#log.debug({ from: source, username: request.username, reason: leg ? 'wrong key' : 'unknown username' }, 'ChannelBind refused');
      this.#sendTo(encodeChannelBindError(request.transactionId, 401), from.address, from.port);
      return;
    }
    const key = udpKeyOf(from.address, from.port, request.channel);
    // Replay: a ChannelBind carries no nonce, so one seen on the wire could be sent again from
    // elsewhere to steal the leg. A transaction id is good for one source: the same request again
    // from where the leg is bound is a retransmission (answered again); from anywhere else, refused.
    const tx = request.transactionId.toString('hex');
    if (leg.seenTx.includes(tx) && leg.udpKey !== key) {
      this.#log.debug({ from: source, allocation: leg.allocation.id, leg: leg.index }, 'ChannelBind refused: a replayed transaction from another address');
      this.#dropped++;
      return;
    }
    if (!leg.seenTx.includes(tx)) {
      leg.seenTx.push(tx);
      if (leg.seenTx.length > SEEN_TRANSACTIONS) leg.seenTx.shift();
    }
    const holder = this.#udpLegs.get(key);
    if (holder !== undefined && holder !== leg) {
      this.#log.debug({ from: source, channel: request.channel }, 'ChannelBind refused: channel bound to another leg from this address');
      this.#sendTo(encodeChannelBindError(request.transactionId, 400), from.address, from.port);
      return;
    }
    if (holder === undefined) {
      const moved = leg.udpKey !== undefined;
      this.#unbindUdp(leg);
      this.#unbindTcp(leg, 'rebound');
      leg.udpKey = key;
      leg.udpAddress = from.address;
      leg.udpPort = from.port;
      leg.udpChannel = request.channel;
      this.#udpLegs.set(key, leg);
      this.#log.debug({ allocation: leg.allocation.id, leg: leg.index, from: source, channel: request.channel, moved }, 'relay leg bound over UDP');
    }
    leg.allocation.lastActive = this.#now();
    this.#sendTo(encodeChannelBindSuccess(request.transactionId, source, leg.key), from.address, from.port);
  }

  #unbindUdp(leg: Leg): void {
    if (leg.udpKey === undefined) return;
    this.#udpLegs.delete(leg.udpKey);
    leg.udpKey = undefined;
  }

  #checkLeg(username: string, key: Buffer): Leg | undefined {
    const leg = this.#byUsername.get(username);
    if (!leg || leg.key.length !== key.length || !timingSafeEqual(leg.key, key)) return undefined;
    return leg;
  }

  // ---- relaying -------------------------------------------------------------------

  /**
   * Send `payload` from leg `from` to the allocation's other leg. `packet`,
   * when given, is the received ChannelData datagram around `payload`: its
   * header is rewritten in place and it is sent as it is.
   */
  #forward(from: Leg, payload: Buffer, packet: Buffer | undefined): void {
    const allocation = from.allocation;
    const now = this.#now();
    allocation.lastActive = now;
    const to = allocation.legs[from.index === 0 ? 1 : 0];
    if (this.#limits.kbps && !this.#takeBytes(from, payload.length, now)) {
      this.#dropped++;
      return;
    }
    if (to.udpKey !== undefined && this.#socket) {
      let out: Buffer;
      if (packet) {
        packet.writeUInt16BE(to.udpChannel, 0);
        out = packet.length === CHANNEL_DATA_HEADER + payload.length ? packet : packet.subarray(0, CHANNEL_DATA_HEADER + payload.length);
      } else {
        out = encodeChannelData(to.udpChannel, payload);
      }
      this.#socket.send(out, to.udpPort, to.udpAddress, this.#afterSend);
    } else if (to.tcpLink !== undefined) {
      if (payload.length > MAX_TCP_LEG_PAYLOAD || !this.#takeLinkPacket(to.tcpLink, now)) {
        this.#dropped++;
        return;
      }
      try {
        to.tcpLink.notify(RelayData, { ch: to.tcpCh, d: payload.toString('base64') });
      } catch (err) {
        this.#dropped++;
        this.#log.debug({ err: errorMessage(err), allocation: allocation.id }, 'relay.data not sent');
        return;
      }
    } else {
      this.#dropped++;
      return;
    }
    this.#packets++;
    this.#bytes += payload.length;
  }

  #afterSend = (err: Error | null): void => {
    if (err) {
      this.#dropped++;
      this.#log.trace({ err: err.message }, 'relayed datagram not sent');
    }
  };

  #sendTo(data: Buffer, address: string, port: number): void {
    this.#socket?.send(data, port, address, (err) => {
      if (err) this.#log.debug({ err: err.message }, 'ChannelBind answer not sent');
    });
  }

  #byteBurst(): number {
    return this.#limits.kbps ? (this.#limits.kbps * 1000) / 8 : 0;
  }

  #takeLinkPacket(link: Link, now: number): boolean {
    const state = this.#links.get(link);
    if (!state) return false;
    state.pktTokens = Math.min(TCP_LEG_MAX_PPS, state.pktTokens + (Math.max(0, now - state.pktTokensAt) / 1000) * TCP_LEG_MAX_PPS);
    state.pktTokensAt = now;
    if (state.pktTokens < 1) return false;
    state.pktTokens -= 1;
    return true;
  }

  #takeBytes(leg: Leg, bytes: number, now: number): boolean {
    const burst = this.#byteBurst();
    leg.byteTokens = Math.min(burst, leg.byteTokens + (Math.max(0, now - leg.byteTokensAt) / 1000) * burst);
    leg.byteTokensAt = now;
    if (leg.byteTokens < bytes) return false;
    leg.byteTokens -= bytes;
    return true;
  }
}
