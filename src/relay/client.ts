import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { AbortedError, TimeoutError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import { dialLink } from '../link/transport.js';
import type { DialOptions } from '../link/transport.js';
import { formatTransportAddress, sameIp } from '../nat/stun/address.js';
import type { TransportAddress } from '../nat/stun/address.js';
import { createTransactionId } from '../nat/stun/message.js';
import type { Logger } from '../system/logging.js';
import { encodeChannelBindRequest, parseChannelBindResponse } from './channel-bind.js';
import { CHANNEL_DATA_HEADER, MAX_CHANNEL, MIN_CHANNEL, channelDataProblem, encodeChannelData } from './channel-data.js';
import { RelayError } from './errors.js';
import { MAX_TCP_LEG_PAYLOAD, RelayAllocate, RelayBind, RelayClosed, RelayData, RelayRelease } from './messages.js';
import type { RelayAllocation, RelayCloseReason } from './messages.js';

/**
 * The node's side of the supernode relay (see `service.ts` for the
 * protocol). In short, for a call through the relay:
 *
 *     const a = await allocate(supernodeLink, 'bob', sessionId);      // allocator
 *     // send a.legs[1], a.udp, a.tcp to bob end to end; bind leg 0 yourself:
 *     const leg = a.udp ? await openUdpLeg({ udp, server: parse(a.udp), ...a.legs[0] })
 *                       : await bindTcp(supernodeLink, a.legs[0].username, a.legs[0].key);
 *     leg.onPacket((payload) => ...); leg.send(payload);
 *     // bob: openUdpLeg(... legs[1]) or dialTcpLeg({host, port of a.tcp, ...}, legs[1])
 *     await release(supernodeLink, a.allocation);                      // when the call ends
 *
 * Both kinds of leg have the same face (`transport`, `label`, `send`,
 * `onPacket`, `onClose`, `close`). Payloads are opaque to the relay: SRTP or
 * the connectivity checks' STUN.
 */

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Ask the supernode on `link` (an attached link) for a relay to `peer`.
 * Rejects with the relay's error (`ERR_RELAY_NOT_AUTHENTICATED`,
 * `ERR_RELAY_QUOTA`, `ERR_RELAY_FULL`, `ERR_RELAY_UNAVAILABLE`). Installs
 * the handlers for the `relay.closed` notices that allocation will bring
 * (see `onRelayClosed`).
 */
export async function allocate(link: Link, peer: string, session: string, options: RequestOptions = {}): Promise<RelayAllocation> {
  relayState(link);
  return link.request(RelayAllocate, { peer, session }, options);
}

/** Free an allocation this link made. False when the relay no longer had it. */
export async function release(link: Link, allocation: string, options: RequestOptions = {}): Promise<boolean> {
  return (await link.request(RelayRelease, { allocation }, options)).released;
}

/** Allocation-level `relay.closed` notices on `link` (idle expiry, shutdown); returns the unsubscribe function. */
export function onRelayClosed(link: Link, handler: (event: { allocation: string; reason: RelayCloseReason }) => void): () => void {
  const state = relayState(link);
  state.events.on('closed', handler);
  return () => state.events.off('closed', handler);
}

// ---- UDP legs -------------------------------------------------------------------

/** What a UDP leg needs of the node's UDP port (UdpEndpoint fits). */
export interface RelayUdpSocket {
  send(data: Buffer, to: TransportAddress): void;
  onDatagram(handler: (packet: Buffer, from: { address: string; port: number }) => boolean): () => void;
}

export interface BindUdpOptions {
  udp: RelayUdpSocket;
  /** The relay's UDP address (the allocation's `udp`). */
  server: TransportAddress;
  username: string;
  /** The leg key as the allocation gives it (base64). */
  key: string;
  /** 0x4000–0x4FFF; unique among this socket's legs at this relay. */
  channel: number;
  /** Wait between transmissions (default 200 ms). */
  rtoMs?: number;
  /** Transmissions after the first (default 3): the request gives up after (1 + retransmits) × rtoMs. */
  retransmits?: number;
  signal?: AbortSignal;
}

export interface UdpBinding {
  /** This node's address as the relay saw it. */
  mapped: TransportAddress;
  rttMs: number;
  transmissions: number;
}

/**
 * One ChannelBind transaction: binds (or refreshes, or moves) a UDP leg.
 * Resolves once a response signed with the leg key arrives from `server`;
 * rejects with `ERR_RELAY_UNAUTHORIZED` (401: unknown leg or wrong key),
 * `ERR_RELAY_BIND_REFUSED` (another error, e.g. 400 when the channel is
 * taken), `TimeoutError` or `AbortedError`. Responses that fail their
 * integrity check are ignored (the transaction goes on).
 */
export function bindUdp(options: BindUdpOptions): Promise<UdpBinding> {
  const rtoMs = options.rtoMs ?? 200;
  const retransmits = options.retransmits ?? 3;
  const target = formatTransportAddress(options.server);
  if (options.signal?.aborted) return Promise.reject(new AbortedError(`ChannelBind to ${target}: aborted`));
  const key = Buffer.from(options.key, 'base64');
  const transactionId = createTransactionId();
  let request: Buffer;
  try {
    request = encodeChannelBindRequest({ transactionId, username: options.username, channel: options.channel, key });
  } catch (err) {
    return Promise.reject(err as Error);
  }
  return new Promise<UdpBinding>((resolve, reject) => {
    const started = performance.now();
    let transmissions = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | undefined, result?: UdpBinding): void => {
      clearTimeout(timer);
      detach();
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(result!);
    };
    const onAbort = (): void => finish(new AbortedError(`ChannelBind to ${target}: aborted`));
    const detach = options.udp.onDatagram((packet, from) => {
      if (packet.length < 20 || packet[0]! > 3 || !packet.subarray(8, 20).equals(transactionId)) return false;
      if (from.port !== options.server.port || !sameIp(from.address, options.server.address)) return false;
      let response;
      try {
        response = parseChannelBindResponse(packet, key);
      } catch (err) {
        // A forged or broken answer does not end the transaction; the real one may still come.
        if (!(err instanceof RelayError)) throw err;
        return true;
      }
      if (response.ok) finish(undefined, { mapped: response.mapped, rttMs: performance.now() - started, transmissions });
      else if (response.code === 401) finish(new RelayError('ERR_RELAY_UNAUTHORIZED', `ChannelBind to ${target}: 401 (unknown leg or wrong key)`));
      else finish(new RelayError('ERR_RELAY_BIND_REFUSED', `ChannelBind to ${target}: ${response.code} ${JSON.stringify(response.reason)}`));
      return true;
    });
    const transmit = (): void => {
      if (transmissions > retransmits) {
        finish(new TimeoutError(`ChannelBind to ${target}: no answer within ${(retransmits + 1) * rtoMs} ms (${transmissions} transmissions)`));
        return;
      }
      transmissions++;
      try {
        options.udp.send(request, options.server);
      } catch (err) {
        finish(new RelayError('ERR_RELAY_SEND', `ChannelBind to ${target}: ${errorMessage(err)}`, { cause: err }));
        return;
      }
      timer = setTimeout(transmit, rtoMs);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    transmit();
  });
}

type PacketHandler = (payload: Buffer) => void;
type CloseHandler = (reason: string) => void;

/** The face both leg kinds share. */
export interface RelayLegHandle {
  readonly transport: 'udp' | 'tcp';
  /** The relay's address, for reports. */
  readonly label: string;
  send(payload: Buffer): void;
  onPacket(handler: PacketHandler): void;
  onClose(handler: CloseHandler): void;
  close(): void;
}

export interface OpenUdpLegOptions extends Omit<BindUdpOptions, 'channel'> {
  /** Default: a random free one (retried on 400 "channel in use"). */
  channel?: number;
  /** Repeat the ChannelBind this often, so that a NAT rebinding moves the leg (default 30 s; 0 = never). */
  refreshMs?: number;
  log?: Logger;
}

/** Channels in use per UDP socket (unique per client address at a relay). */
const usedChannels = new WeakMap<RelayUdpSocket, Set<number>>();

function pickChannel(udp: RelayUdpSocket): number {
  let used = usedChannels.get(udp);
  if (!used) usedChannels.set(udp, (used = new Set()));
  for (;;) {
    const channel = randomInt(MIN_CHANNEL, MAX_CHANNEL + 1);
    if (!used.has(channel)) return channel;
  }
}

/**
 * Bind a UDP leg and return it ready to carry media: `send` frames
 * payloads as ChannelData on the leg's channel, `onPacket` gets what the
 * other leg sent. The leg repeats its ChannelBind every `refreshMs`; a
 * refresh answered 401 (the allocation is gone) closes the leg.
 */
export async function openUdpLeg(options: OpenUdpLegOptions): Promise<UdpRelayLeg> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const channel = options.channel ?? pickChannel(options.udp);
    try {
      const binding = await bindUdp({ ...options, channel });
      return new UdpRelayLeg(options, channel, binding.mapped);
    } catch (err) {
      lastError = err;
      if (options.channel !== undefined || (err as RelayError).code !== 'ERR_RELAY_BIND_REFUSED') throw err;
    }
  }
  throw lastError;
}

export class UdpRelayLeg implements RelayLegHandle {
  readonly transport = 'udp';
  readonly label: string;
  readonly channel: number;
  /** This node's address as the relay saw it at the last bind. */
  mapped: TransportAddress;
  #options: OpenUdpLegOptions;
  #packetHandlers: PacketHandler[] = [];
  #closeHandlers: CloseHandler[] = [];
  #detach: () => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: OpenUdpLegOptions, channel: number, mapped: TransportAddress) {
    this.#options = options;
    this.channel = channel;
    this.mapped = mapped;
    this.label = `udp:${formatTransportAddress(options.server)}`;
    let used = usedChannels.get(options.udp);
    if (!used) usedChannels.set(options.udp, (used = new Set()));
    used.add(channel);
    const { server } = options;
    this.#detach = options.udp.onDatagram((packet, from) => {
      if (packet.length < CHANNEL_DATA_HEADER || packet.readUInt16BE(0) !== channel) return false;
      if (from.port !== server.port || !sameIp(from.address, server.address)) return false;
      if (channelDataProblem(packet) === undefined) {
        const payload = packet.subarray(CHANNEL_DATA_HEADER, CHANNEL_DATA_HEADER + packet.readUInt16BE(2));
        for (const handler of this.#packetHandlers) handler(payload);
      }
      return true;
    });
    const refreshMs = options.refreshMs ?? 30_000;
    if (refreshMs > 0) {
      this.#timer = setInterval(() => this.#refresh(), refreshMs);
      this.#timer.unref();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(payload: Buffer): void {
    if (this.#closed) throw new RelayError('ERR_RELAY_LEG_CLOSED', `${this.label}: leg closed`);
    this.#options.udp.send(encodeChannelData(this.channel, payload), this.#options.server);
  }

  onPacket(handler: PacketHandler): void {
    this.#packetHandlers.push(handler);
  }

  onClose(handler: CloseHandler): void {
    this.#closeHandlers.push(handler);
  }

  /** Stop receiving and refreshing (the allocation itself is the allocator's to release). Idempotent. */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#detach();
    usedChannels.get(this.#options.udp)?.delete(this.channel);
    for (const handler of this.#closeHandlers) handler(reason);
  }

  #refresh(): void {
    bindUdp({ ...this.#options, channel: this.channel }).then(
      (binding) => {
        this.mapped = binding.mapped;
      },
      (err: unknown) => {
        if ((err as RelayError).code === 'ERR_RELAY_UNAUTHORIZED') this.close('allocation gone');
        else this.#options.log?.debug({ relay: this.label, err: errorMessage(err) }, 'relay leg refresh failed');
      },
    );
  }
}

// ---- TCP legs -------------------------------------------------------------------

interface LinkRelayState {
  legs: Map<number, TcpRelayLeg>;
  events: EventEmitter<{ closed: [{ allocation: string; reason: RelayCloseReason }] }>;
}

const linkStates = new WeakMap<Link, LinkRelayState>();

/** The relay notices' handlers on a node's link, installed once. */
function relayState(link: Link): LinkRelayState {
  let state = linkStates.get(link);
  if (!state) {
    const created: LinkRelayState = { legs: new Map(), events: new EventEmitter() };
    state = created;
    linkStates.set(link, created);
    link.onNotice(RelayData, (body) => created.legs.get(body.ch)?.receive(Buffer.from(body.d, 'base64')));
    link.onNotice(RelayClosed, (body) => {
      if (body.ch === undefined) created.events.emit('closed', { allocation: body.allocation, reason: body.reason });
      else created.legs.get(body.ch)?.close(body.reason);
    });
    link.once('close', () => {
      for (const leg of [...created.legs.values()]) leg.close('link closed');
    });
  }
  return state;
}

export interface BindTcpOptions extends RequestOptions {
  /** Close the link when the leg closes (a link dialled just for this leg). */
  closeLink?: boolean;
}

/**
 * Bind a TCP leg on a Noise link to the relaying supernode (the allocator's
 * own attached link, or one from `dialTcpLeg`). Rejects with
 * `ERR_RELAY_UNAUTHORIZED` or `ERR_RELAY_NOT_AUTHENTICATED`.
 */
export async function bindTcp(link: Link, username: string, key: string, options: BindTcpOptions = {}): Promise<TcpRelayLeg> {
  const state = relayState(link);
  const { ch } = await link.request(RelayBind, { username, key }, options);
  const leg = new TcpRelayLeg(link, ch, options.closeLink ?? false);
  state.legs.get(ch)?.close('rebound');
  state.legs.set(ch, leg);
  return leg;
}

/**
 * Dial the relay's `tcp` address (role 'node', with this node's credential
 * in the handshake: the relay checks it) and bind a leg there; the link
 * closes with the leg.
 */
export async function dialTcpLeg(options: Omit<DialOptions, 'role' | 'setup'>, username: string, key: string, request: RequestOptions = {}): Promise<TcpRelayLeg> {
  const { link } = await dialLink({ ...options, role: 'node', setup: (l) => void relayState(l) });
  try {
    return await bindTcp(link, username, key, { ...request, closeLink: true });
  } catch (err) {
    link.close();
    throw err;
  }
}

export class TcpRelayLeg implements RelayLegHandle {
  readonly transport = 'tcp';
  readonly label: string;
  readonly link: Link;
  readonly ch: number;
  #closeLink: boolean;
  #packetHandlers: PacketHandler[] = [];
  #closeHandlers: CloseHandler[] = [];
  #closed = false;

  constructor(link: Link, ch: number, closeLink: boolean) {
    this.link = link;
    this.ch = ch;
    this.#closeLink = closeLink;
    this.label = `tcp:${link.remoteAddress ?? 'relay'}:${link.channel.remotePort ?? 0}`;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Send one datagram's worth (at most 1500 bytes) to the other leg. Keep under ~150 a second: the link's own limit is 200 messages/s. */
  send(payload: Buffer): void {
    if (this.#closed) throw new RelayError('ERR_RELAY_LEG_CLOSED', `${this.label}: leg closed`);
    if (payload.length > MAX_TCP_LEG_PAYLOAD) throw new RelayError('ERR_RELAY_PAYLOAD', `${this.label}: payload of ${payload.length} bytes, expected at most ${MAX_TCP_LEG_PAYLOAD}`);
    this.link.notify(RelayData, { ch: this.ch, d: payload.toString('base64') });
  }

  onPacket(handler: PacketHandler): void {
    this.#packetHandlers.push(handler);
  }

  onClose(handler: CloseHandler): void {
    this.#closeHandlers.push(handler);
  }

  /** @internal from the link's relay.data handler. */
  receive(payload: Buffer): void {
    if (this.#closed) return;
    for (const handler of this.#packetHandlers) handler(payload);
  }

  /** Stop using the leg (and close the link if it was dialled for it). Idempotent. */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    const state = linkStates.get(this.link);
    if (state?.legs.get(this.ch) === this) state.legs.delete(this.ch);
    if (this.#closeLink && !this.link.closed) this.link.close();
    for (const handler of this.#closeHandlers) handler(reason);
  }
}
