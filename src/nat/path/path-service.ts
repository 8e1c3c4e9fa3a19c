import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { PartylineError, errorMessage } from '../../errors.js';
import type { Messenger, Incoming, PeerDevice } from '../../overlay/route/messenger.js';
import type { Logger } from '../../system/logging.js';
import { formatHostPort, parseHostPort } from '../../util/host-port.js';
import type { TransportAddress } from '../stun/address.js';
import { formatTransportAddress, isUnspecified } from '../stun/address.js';
import type { UdpEndpoint } from '../udp-endpoint.js';
import { pathAnswerSchema, pathOfferSchema } from './messages.js';
import type { Candidate, PathAnswer, PathOffer, RelayOffer } from './messages.js';
import { PROBE_INTERVAL_MS, ProbeStats, decodeProbe, encodeProbe, pongFor } from './probe-traffic.js';
import { ConnectivitySession, randomCredential } from './session.js';
import type { PathKind, PathState, PathTransport, SessionTimings } from './session.js';

/** A relay allocation on the node's own supernode (src/relay/). */
export interface RelayAllocation {
  allocation: string;
  udp: string | null;
  tcp: string;
  legs: [{ username: string; key: string }, { username: string; key: string }];
}

/** One bound relay leg: what it sends goes to the other leg; what the other leg sends arrives here. */
export interface RelayLeg {
  transport: 'udp' | 'tcp';
  /** The relay's address, for reports. */
  label: string;
  send(payload: Buffer): void;
  onPacket(handler: (payload: Buffer) => void): void;
  /** The relay ended the leg (released, idle, supernode gone). */
  onClose?(handler: (reason: string) => void): void;
  close(): void;
}

/** What the path service needs of the relay code; the node wires it. */
export interface RelayOps {
  allocate(peerUser: string, session: string): Promise<RelayAllocation>;
  release(allocation: string): void;
  /** Bind a leg over UDP at `server` (`host:port`). */
  bindUdp(server: string, username: string, key: string): Promise<RelayLeg>;
  /** Bind a leg over TCP: on the node's own supernode link when `server` is that supernode, else on a link dialled to `server`. */
  bindTcp(server: string, username: string, key: string): Promise<RelayLeg>;
}

export interface PathServiceOptions {
  udp: UdpEndpoint;
  messenger: Messenger;
  log: Logger;
  /** The server-reflexive address NAT classification found (`host:port`), if any. */
  publicAddress: () => string | null;
  /** The network blocks UDP (NAT type `udp-blocked`): use TCP relay legs only. */
  udpBlocked: () => boolean;
  relay?: RelayOps;
  /** Interface addresses offered as host candidates (default: every non-internal IPv4 address). */
  hostAddresses?: () => string[];
  timings?: Partial<SessionTimings>;
  /** Answer probes from this user? (default: any authenticated user of the network). */
  acceptProbe?: (from: Incoming['from']) => boolean;
  /** Probe sessions answered at once (default 8). */
  maxAnswered?: number;
  /**
   * An offer for a call's media path (purpose `call`): the call layer says
   * whether it expects one for this session from this device, and takes the
   * path (a sink) once it runs; undefined refuses the offer.
   */
  callPath?: (session: string, from: Incoming['from']) => ((path: MediaPath) => void) | undefined;
}

/** A media path being set up or in use: the connectivity session and what it was set up with. */
export interface MediaPath {
  id: string;
  session: ConnectivitySession;
  local: { udp: boolean; relayLeg: 'udp' | 'tcp' | 'none' };
  remote: { udp: boolean; relayLeg: 'udp' | 'tcp' | 'none' };
  /** ms from the start of set-up (relay allocation, offer, answer) to the first selected path; null until then. */
  setupMs(): number | null;
  /** The kind of the path in use, null when none works now. */
  kind(): PathKind | null;
  candidates(): ProbeReport['candidates'];
  /** Release the session, its relay legs and allocation. */
  close(): void;
}

export interface ProbeReport {
  user: string;
  deviceId: string;
  /** The path in use at the end of the probe; null when none worked. */
  path: PathKind | null;
  rttMs: number | null;
  lossPct: number;
  sent: number;
  received: number;
  /** Relay allocation, offer and answer through the supernodes, checks: until the first path is selected, ms. */
  setupMs: number | null;
  /** What was tried, and how it went. */
  candidates: Array<{ kind: PathKind; origin: string; address: string; state: string; rttMs: number | null; checks: number }>;
  switches: Array<{ from: PathKind; to: PathKind; atMs: number; reason: string }>;
  local: { udp: boolean; relayLeg: 'udp' | 'tcp' | 'none' };
  remote: { udp: boolean; relayLeg: 'udp' | 'tcp' | 'none' };
}

interface Active {
  id: string;
  session: ConnectivitySession;
  tag: string;
  legs: RelayLeg[];
  allocation?: string;
  lastPacket: number;
  timer?: NodeJS.Timeout;
  /** Answered for a probe (closed when idle), not for a call (closed by the call). */
  probe?: boolean;
}

/**
 * Media paths between this device and another (DESIGN.md "Calls" → media
 * path): gathers candidates, makes a relay allocation, exchanges the offer
 * and answer sealed through the overlay, and runs a ConnectivitySession.
 * `probe()` is `ctl probe`; calls (later) use `open()` the same way.
 */
export class PathService {
  #options: PathServiceOptions;
  #log: Logger;
  #active = new Map<string, Active>();
  #detach: () => void;

  constructor(options: PathServiceOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#detach = options.udp.onDatagram((packet, from) => this.#datagram(packet, { address: from.address, port: from.port }));
    options.messenger.on('path.offer', (message) => this.#answerOffer(message));
  }

  get activeSessions(): number {
    return this.#active.size;
  }

  stop(): void {
    this.#detach();
    for (const active of [...this.#active.values()]) this.#close(active);
  }

  /**
   * Set up a media path to `user`'s device (the newest, or `deviceId`),
   * exchange probe packets for `durationMs`, and report what happened.
   */
  async probe(user: string, options: { durationMs?: number; deviceId?: string } = {}): Promise<ProbeReport> {
    const durationMs = options.durationMs ?? 2_000;
    const { devices, answer } = await this.#options.messenger.resolve(user);
    if (!answer.found) throw new PartylineError('ERR_NO_SUCH_USER', `no such user: ${user}`);
    const device = options.deviceId ? devices.find((d) => d.deviceId === options.deviceId) : devices[0];
    if (!device) throw new PartylineError('ERR_USER_OFFLINE', `${answer.user} has no device online to probe`);
    const tag = randomBytes(8).toString('hex');
    const path = await this.open(device, { purpose: 'probe', tag });
    const session = path.session;
    try {
      const stats = new ProbeStats();
      session.on('data', (data) => {
        const probe = decodeProbe(data);
        if (probe?.kind === 'pong' && probe.tag === tag) stats.pong(probe.seq, performance.now() - probe.sentAt);
      });
      await untilSelected(session, 3_000);
      if (session.selected) {
        const end = performance.now() + durationMs;
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (performance.now() >= end) {
              clearInterval(timer);
              resolve();
              return;
            }
            // No path for now (the selected one died and none took over yet): the ping counts as lost.
            const seq = stats.ping();
            session.send(encodeProbe({ kind: 'ping', seq, sentAt: performance.now(), tag }));
          }, PROBE_INTERVAL_MS);
        });
        await delay(300); // the last pongs
      }
      return {
        user: device.user,
        deviceId: device.deviceId,
        path: path.kind(),
        rttMs: stats.rttMs(),
        lossPct: stats.lossPct(),
        sent: stats.sent,
        received: stats.received,
        setupMs: path.setupMs(),
        candidates: path.candidates(),
        switches: [...session.switches],
        local: path.local,
        remote: path.remote,
      };
    } finally {
      path.close();
    }
  }

  /**
   * Set up a media path to one device: relay allocation on this node's
   * supernode, the sealed offer and answer, then connectivity checks. The
   * session is running when this resolves (wait for its `selected` event);
   * throws when the device refuses or does not answer.
   */
  async open(device: PeerDevice, options: { purpose: PathOffer['purpose']; session?: string; tag?: string }): Promise<MediaPath> {
    const id = options.session ?? randomCredential(12);
    const tag = options.tag ?? randomBytes(8).toString('hex');
    const ufrag = randomCredential(6);
    const pwd = randomCredential(18);
    const udp = !this.#options.udpBlocked();
    const active: Active = { id, session: undefined as unknown as ConnectivitySession, tag, legs: [], lastPacket: Date.now() };
    let relayOffer: RelayOffer | null = null;
    let ownLeg: RelayLeg | undefined;
    // Set-up time counts from here: relay allocation, offer and answer through the supernodes, checks.
    const started = performance.now();
    try {
      const relay = await this.#allocate(device, id);
      if (relay) {
        active.allocation = relay.allocation;
        ownLeg = await this.#bindLeg(relay.udp, relay.tcp, relay.legs[0], udp);
        if (ownLeg) {
          active.legs.push(ownLeg);
          relayOffer = { allocation: relay.allocation, udp: relay.udp, tcp: relay.tcp, username: relay.legs[1].username, key: relay.legs[1].key };
        }
      }
      const offer: PathOffer = { session: id, ufrag, pwd, candidates: await this.#candidates(udp), relay: relayOffer, udp, purpose: options.purpose, tag };
      const reply = await this.#options.messenger.request(device, { type: 'path.offer', body: offer }, 8_000);
      const parsed = pathAnswerSchema.safeParse(reply.body);
      if (!parsed.success) throw new PartylineError('ERR_PATH_ANSWER', `${device.user} sent a malformed path answer`);
      const remote = parsed.data;
      if (!remote.accepted || !remote.ufrag || !remote.pwd) throw new PartylineError('ERR_PATH_REFUSED', `${device.user} refused the media path${remote.reason ? `: ${remote.reason}` : ''}`);
      const session = new ConnectivitySession({ localUfrag: ufrag, localPwd: pwd, remoteUfrag: remote.ufrag, remotePwd: remote.pwd, controlling: true, log: this.#log, ...(this.#options.timings ? { timings: this.#options.timings } : {}) });
      active.session = session;
      this.#active.set(id, active);
      if (udp && remote.udp) for (const c of remote.candidates) this.#addDirect(session, c);
      if (ownLeg && remote.relayLeg !== 'none') this.#addRelay(session, ownLeg, ownLeg.transport === 'tcp' || remote.relayLeg === 'tcp' ? 'relay-tcp' : 'relay-udp');
      const path = this.#mediaPath(active, started, { udp, relayLeg: ownLeg?.transport ?? 'none' }, { udp: remote.udp, relayLeg: remote.relayLeg });
      session.start();
      return path;
    } catch (err) {
      this.#close(active);
      throw err;
    }
  }

  #mediaPath(active: Active, started: number, local: MediaPath['local'], remote: MediaPath['remote']): MediaPath {
    const session = active.session;
    let selectedAt: number | null = null;
    session.once('selected', () => {
      selectedAt = performance.now();
    });
    return {
      id: active.id,
      session,
      local,
      remote,
      setupMs: () => (selectedAt === null ? null : Math.round(selectedAt - started)),
      kind: () => session.selected?.transport.kind ?? null,
      candidates: () => session.paths().map((p) => ({ kind: p.transport.kind, origin: p.transport.origin, address: p.transport.label, state: p.state, rttMs: p.rttMs, checks: p.checksSent })),
      close: () => this.#close(active),
    };
  }

  async #allocate(device: PeerDevice, session: string): Promise<RelayAllocation | undefined> {
    const relay = this.#options.relay;
    if (!relay) return undefined;
    try {
      return await relay.allocate(device.user, session);
    } catch (err) {
      this.#log.warn({ code: (err as PartylineError).code, err: errorMessage(err) }, 'no relay allocation: only direct paths will be tried');
      return undefined;
    }
  }

  /** Bind a relay leg: over UDP when this network has UDP and the relay offers it, else (or when that fails) over TCP. */
  async #bindLeg(udpServer: string | null, tcpServer: string, leg: { username: string; key: string }, udp: boolean): Promise<RelayLeg | undefined> {
    const relay = this.#options.relay;
    if (!relay) return undefined;
    if (udp && udpServer) {
      try {
        return await relay.bindUdp(udpServer, leg.username, leg.key);
      } catch (err) {
        this.#log.info({ relay: udpServer, err: errorMessage(err) }, 'UDP relay leg failed: trying TCP');
      }
    }
    try {
      return await relay.bindTcp(tcpServer, leg.username, leg.key);
    } catch (err) {
      this.#log.warn({ relay: tcpServer, err: errorMessage(err) }, 'TCP relay leg failed');
      return undefined;
    }
  }

  async #candidates(udp: boolean): Promise<Candidate[]> {
    if (!udp) return [];
    const port = this.#options.udp.port;
    const out: Candidate[] = [];
    const hosts = this.#options.hostAddresses?.() ?? defaultHostAddresses();
    for (const host of hosts) out.push({ kind: 'host', address: formatHostPort({ host, port }) });
    const srflx = this.#options.publicAddress();
    if (srflx && !out.some((c) => c.address === srflx)) out.push({ kind: 'srflx', address: srflx });
    return out.slice(0, 16);
  }

  #addDirect(session: ConnectivitySession, candidate: Candidate): void {
    let remote: TransportAddress;
    try {
      const { host, port } = parseHostPort(candidate.address);
      if (isUnspecified(host)) return;
      remote = { address: host, port };
    } catch {
      return;
    }
    session.addPath(this.#directTransport(remote, candidate.kind), remote);
  }

  #directTransport(to: TransportAddress, origin: 'host' | 'srflx' | 'prflx'): PathTransport {
    const udp = this.#options.udp;
    return { kind: 'direct-udp', origin, label: formatTransportAddress(to), send: (packet) => udp.send(packet, to) };
  }

  #addRelay(session: ConnectivitySession, leg: RelayLeg, kind: PathKind): void {
    const path = session.addPath({ kind, origin: 'relay', label: leg.label, send: (packet) => leg.send(packet) });
    leg.onPacket((payload) => session.receiveRelay(payload, path));
    leg.onClose?.((reason) => session.pathDown(path, `relay leg closed (${reason})`));
  }

  /** The other side of probe(): take the offer, join its relay, answer, check, and echo pings. */
  async #answerOffer(message: Incoming): Promise<void> {
    const parsed = pathOfferSchema.safeParse(message.body);
    const refuse = (reason: string, session = 'invalid-session'): Promise<string> =>
      this.#options.messenger.reply(message, { type: 'path.answer', body: { session, accepted: false, reason, candidates: [], udp: false, relayLeg: 'none' } satisfies PathAnswer });
    if (!parsed.success) {
      await refuse('malformed offer');
      return;
    }
    const offer = parsed.data;
    // An offer is acted on at once or never: an old one is a replay (a supernode holding on to it).
    if (Math.abs(Date.now() - message.ts) > OFFER_MAX_AGE_MS) {
      this.#log.info({ from: message.from.user, ageS: Math.round((Date.now() - message.ts) / 1000) }, 'stale path offer ignored');
      return;
    }
    if (this.#active.has(offer.session)) {
      await refuse('session id in use', offer.session);
      return;
    }
    // A call's path is set up only for a call this device knows, with the device it is talking to.
    const sink = offer.purpose === 'call' ? this.#options.callPath?.(offer.session, message.from) : undefined;
    if (offer.purpose === 'call' && !sink) {
      await refuse('no such call', offer.session);
      return;
    }
    if (offer.purpose === 'probe') {
      if (this.#options.acceptProbe && !this.#options.acceptProbe(message.from)) {
        await refuse('probes from this user are not accepted', offer.session);
        return;
      }
      const probes = [...this.#active.values()].filter((a) => a.probe).length;
      if (probes >= (this.#options.maxAnswered ?? 8)) {
        await refuse('busy', offer.session);
        return;
      }
    }
    const udp = !this.#options.udpBlocked();
    const ufrag = randomCredential(6);
    const pwd = randomCredential(18);
    const session = new ConnectivitySession({ localUfrag: ufrag, localPwd: pwd, remoteUfrag: offer.ufrag, remotePwd: offer.pwd, controlling: false, log: this.#log, ...(this.#options.timings ? { timings: this.#options.timings } : {}) });
    const active: Active = { id: offer.session, session, tag: offer.tag, legs: [], lastPacket: Date.now(), probe: offer.purpose === 'probe' };
    this.#active.set(offer.session, active);
    const started = performance.now();
    let relayLeg: PathAnswer['relayLeg'] = 'none';
    if (offer.relay) {
      const leg = await this.#bindLeg(offer.relay.udp, offer.relay.tcp, offer.relay, udp);
      if (leg) {
        active.legs.push(leg);
        relayLeg = leg.transport;
        const offererLegTcp = !offer.udp || offer.relay.udp === null;
        this.#addRelay(session, leg, leg.transport === 'tcp' || offererLegTcp ? 'relay-tcp' : 'relay-udp');
      }
    }
    if (udp && offer.udp) for (const c of offer.candidates) this.#addDirect(session, c);
    if (sink) {
      const answer: PathAnswer = { session: offer.session, accepted: true, ufrag, pwd, candidates: await this.#candidates(udp), udp, relayLeg };
      sink(this.#mediaPath(active, started, { udp, relayLeg }, { udp: offer.udp, relayLeg: offer.relay ? (offer.udp && offer.relay.udp ? 'udp' : 'tcp') : 'none' }));
      session.start();
      try {
        await this.#options.messenger.reply(message, { type: 'path.answer', body: answer });
      } catch (err) {
        this.#log.info({ from: message.from.user, err: errorMessage(err) }, 'cannot answer a call path offer');
        this.#close(active);
      }
      return;
    }
    session.on('data', (data, path) => {
      active.lastPacket = Date.now();
      const probe = decodeProbe(data);
      if (probe?.kind !== 'ping' || probe.tag !== offer.tag) return;
      // Answer on the selected path, or the one the ping came on until one is selected.
      const pong = pongFor(data);
      if (!session.send(pong)) {
        try {
          path.transport.send(pong);
        } catch (err) {
          this.#log.debug({ path: path.transport.label, err: errorMessage(err) }, 'pong not sent');
        }
      }
    });
    const answer: PathAnswer = { session: offer.session, accepted: true, ufrag, pwd, candidates: await this.#candidates(udp), udp, relayLeg };
    session.start();
    try {
      await this.#options.messenger.reply(message, { type: 'path.answer', body: answer });
    } catch (err) {
      this.#log.info({ from: message.from.user, err: errorMessage(err) }, 'cannot answer a path offer');
      this.#close(active);
      return;
    }
    // A probe lasts seconds; close when nothing came for 5 s (or after 60 s at most).
    const answeredAt = Date.now();
    active.timer = setInterval(() => {
      if (Date.now() - active.lastPacket > 5_000 || Date.now() - answeredAt > 60_000) this.#close(active);
    }, 1_000);
    active.timer.unref();
  }

  #close(active: Active): void {
    clearInterval(active.timer);
    active.session?.close();
    for (const leg of active.legs) leg.close();
    if (active.allocation) this.#options.relay?.release(active.allocation);
    if (this.#active.get(active.id) === active) this.#active.delete(active.id);
  }

  /** Datagrams on the node's UDP port that belong to a media path session. */
  #datagram(packet: Buffer, from: TransportAddress): boolean {
    if (this.#active.size === 0) return false;
    const stun = (packet[0] ?? 255) <= 3;
    // Newest session first: an older one with the same peer may still be winding down.
    for (const active of [...this.#active.values()].reverse()) {
      const session = active.session;
      if (!session) continue;
      // STUN belongs to the session whose credentials or transaction it carries; other data goes by address.
      if (stun ? session.claims(packet) : session.pathTo(from) !== undefined) {
        active.lastPacket = Date.now();
        session.receiveDirect(packet, from, (to) => this.#directTransport(to, 'prflx'));
        return true;
      }
    }
    return false;
  }
}

/** How old a path offer may be when it arrives (signalling through two supernodes takes milliseconds). */
const OFFER_MAX_AGE_MS = 60_000;

/** The selected path once there is one; undefined when the session fails or after `timeoutMs`. */
export function untilSelected(session: ConnectivitySession, timeoutMs: number): Promise<PathState | undefined> {
  if (session.selected) return Promise.resolve(session.selected);
  return new Promise((resolve) => {
    const done = (path: PathState | undefined): void => {
      clearTimeout(timer);
      session.off('selected', onSelected);
      session.off('failed', onFailed);
      resolve(path);
    };
    const onSelected = (path: PathState): void => done(path);
    const onFailed = (): void => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    session.on('selected', onSelected);
    session.on('failed', onFailed);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Non-internal IPv4 interface addresses. */
export function defaultHostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (!info.internal && info.family === 'IPv4') out.push(info.address);
    }
  }
  return out.slice(0, 8);
}
