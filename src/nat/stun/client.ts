import type { RemoteInfo, Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { AbortedError, TimeoutError } from '../../errors.js';
import { StunMethod } from './constants.js';
import { addressFamily, canonicalIp, formatTransportAddress } from './address.js';
import type { TransportAddress } from './address.js';
import type { StunAttribute } from './attributes.js';
import { StunError, StunErrorResponseError, StunUnknownAttributesError } from './errors.js';
import { createTransactionId, decodeStunMessage, encodeStunMessage, getAttribute, isStunPacket, verifyFingerprint } from './message.js';
import type { StunMessage } from './message.js';

/**
 * Retransmission (RFC 8489 §6.2.1). The RFC's defaults — RTO 500 ms, 7
 * transmissions, 39.5 s before giving up — are made for unknown paths; our
 * targets are a login in under a second and a NAT classification well
 * under one on a LAN. Our defaults: first RTO 100 ms, doubled after each
 * transmission, 3 retransmissions, and an overall deadline of 1000 ms —
 * transmissions at 0, 100, 300 and 700 ms. Callers on slower paths raise
 * `rtoMs`/`timeoutMs`; `transmissionSchedule` shows what a setting does.
 */
export const DEFAULT_RTO_MS = 100;
export const DEFAULT_RETRANSMITS = 3;
export const DEFAULT_BINDING_TIMEOUT_MS = 1000;

export interface BindingOptions {
  /** RFC 5780 CHANGE-REQUEST: ask the server to answer from its other IP address. */
  changeIp?: boolean;
  /** RFC 5780 CHANGE-REQUEST: ask the server to answer from its other port. */
  changePort?: boolean;
  /** Give up (TimeoutError) this long after the first transmission. */
  timeoutMs?: number;
  /** Transmissions after the first, as long as they fall before the deadline. */
  retransmits?: number;
  /** Wait before the first retransmission; doubled after each. */
  rtoMs?: number;
  signal?: AbortSignal;
}

export interface BindingResult {
  /** The reflexive address: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an old server. */
  mapped: TransportAddress;
  /** RFC 5780 RESPONSE-ORIGIN: the address the server says it answered from. */
  responseOrigin?: TransportAddress;
  /** RFC 5780 OTHER-ADDRESS: the server's alternate address (see `StunResponder`). */
  otherAddress?: TransportAddress;
  /** Where the response actually came from. */
  source: TransportAddress;
  /** From the first transmission to the response. */
  rttMs: number;
  /** Transmissions made (1 + retransmissions). */
  transmissions: number;
  software?: string;
}

/**
 * When the transmissions of one transaction go out, in ms after the first:
 * `[0, rto, 3·rto, 7·rto, ...]`, at most `1 + retransmits` of them, all
 * before `timeoutMs`. Pure.
 */
export function transmissionSchedule(rtoMs: number, retransmits: number, timeoutMs: number): number[] {
  const times = [0];
  let at = 0;
  let rto = rtoMs;
  for (let i = 0; i < retransmits; i++) {
    at += rto;
    rto *= 2;
    if (at >= timeoutMs) break;
    times.push(at);
  }
  return times;
}

export interface StunClientOptions {
  /** Sends a datagram from the client's socket. */
  send: (data: Buffer, to: TransportAddress) => void;
  /** SOFTWARE in requests (default `partyline`); empty to leave it out. */
  software?: string;
  /** Monotonic clock in ms (default `performance.now`). */
  now?: () => number;
  log?: Logger;
}

interface Pending {
  resolve: (result: BindingResult) => void;
  reject: (err: Error) => void;
  startedAt: number;
  transmissions: number;
}

/**
 * STUN Binding transactions over a UDP socket the client does not own.
 * Incoming datagrams reach it in one of two ways:
 *
 * - the socket owner feeds it: `client.handleStunPacket(buf, rinfo)` for
 *   every STUN datagram (`isStunPacket`), which returns true when the packet
 *   answered one of its transactions — the phone's media socket, shared with
 *   RTP and the STUN responder, works this way;
 * - `StunClient.forSocket(socket)` installs its own 'message' listener, which
 *   only looks at packets whose transaction id it is waiting for.
 *
 * Responses are matched by transaction id alone (a change-request answer
 * comes from another address); a FINGERPRINT, when present, must verify.
 */
export class StunClient {
  readonly #send: (data: Buffer, to: TransportAddress) => void;
  readonly #software: string;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #pending = new Map<string, Pending>();
  #detach: (() => void) | undefined;
  #closed = false;

  constructor(options: StunClientOptions) {
    this.#send = options.send;
    this.#software = options.software ?? 'partyline';
    this.#now = options.now ?? (() => performance.now());
    this.#log = options.log;
  }

  /** A client that sends from `socket` and listens on it; `close()` removes the listener (the socket stays open). */
  static forSocket(socket: Socket, options: Omit<StunClientOptions, 'send'> = {}): StunClient {
    const client = new StunClient({
      ...options,
      send: (data, to) => {
        const family = socket.address().family;
        const address = family === 'IPv6' && !to.address.includes(':') ? `::ffff:${to.address}` : to.address;
        socket.send(data, to.port, address, (err) => {
          if (err) options.log?.debug({ err, to }, 'stun request not sent');
        });
      },
    });
    const listener = (msg: Buffer, rinfo: RemoteInfo): void => {
      if (isStunPacket(msg)) client.handleStunPacket(msg, rinfo);
    };
    socket.on('message', listener);
    client.#detach = () => socket.off('message', listener);
    return client;
  }

  /** Transactions in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Offer a received datagram. True when it answered one of this client's
   * transactions (the caller should not pass it on), false otherwise.
   */
  handleStunPacket(packet: Buffer, rinfo: { address: string; port: number }): boolean {
    if (packet.length < 20 || !isStunPacket(packet)) return false;
    const key = packet.subarray(8, 20).toString('hex');
    const pending = this.#pending.get(key);
    if (pending === undefined) return false;
    let message: StunMessage;
    try {
      message = decodeStunMessage(packet);
    } catch (err) {
      if (!(err instanceof StunError)) throw err;
      if (err instanceof StunUnknownAttributesError && (err.header.class === 'success' || err.header.class === 'error')) {
        this.#settle(key)?.reject(err); // RFC 8489 §7.3.3: such a response fails the transaction
        return true;
      }
      this.#log?.debug({ code: err.code, from: rinfo }, 'malformed stun response ignored');
      return false;
    }
    if (message.class !== 'success' && message.class !== 'error') return false;
    if (message.method !== StunMethod.BINDING) return false;
    if (getAttribute(message, 'fingerprint') && !verifyFingerprint(packet)) {
      this.#log?.debug({ from: rinfo }, 'stun response with bad fingerprint ignored');
      return true;
    }
    const settled = this.#settle(key);
    if (settled === undefined) return true;
    if (message.class === 'error') {
      const error = getAttribute(message, 'error-code')?.value ?? { code: 500, reason: 'error response without ERROR-CODE' };
      settled.reject(new StunErrorResponseError(error.code, error.reason, getAttribute(message, 'unknown-attributes')?.value ?? []));
      return true;
    }
    const mapped = getAttribute(message, 'xor-mapped-address')?.value ?? getAttribute(message, 'mapped-address')?.value;
    if (mapped === undefined) {
      settled.reject(new StunError('ERR_STUN_NO_MAPPED_ADDRESS', `STUN response from ${formatTransportAddress(rinfo)}: no XOR-MAPPED-ADDRESS or MAPPED-ADDRESS`));
      return true;
    }
    const result: BindingResult = {
      mapped,
      source: { address: canonicalIp(rinfo.address) ?? rinfo.address, port: rinfo.port },
      rttMs: this.#now() - settled.startedAt,
      transmissions: settled.transmissions,
    };
    const origin = getAttribute(message, 'response-origin')?.value;
    const other = getAttribute(message, 'other-address')?.value;
    const software = getAttribute(message, 'software')?.value;
    if (origin) result.responseOrigin = origin;
    if (other) result.otherAddress = other;
    if (software !== undefined) result.software = software;
    settled.resolve(result);
    return true;
  }

  /**
   * One Binding transaction with `server`. Resolves with the mapped
   * address; rejects with `TimeoutError` (no answer in `timeoutMs`),
   * `AbortedError`, `StunErrorResponseError` (e.g. 420 to a change request
   * the server cannot honour) or `StunError`.
   */
  binding(server: TransportAddress, options: BindingOptions = {}): Promise<BindingResult> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_BINDING_TIMEOUT_MS;
    const schedule = transmissionSchedule(options.rtoMs ?? DEFAULT_RTO_MS, options.retransmits ?? DEFAULT_RETRANSMITS, timeoutMs);
    const target = formatTransportAddress(server);
    if (this.#closed) return Promise.reject(new StunError('ERR_STUN_CLOSED', `STUN binding to ${target}: client closed`));
    if (options.signal?.aborted) return Promise.reject(new AbortedError(`STUN binding to ${target}: aborted`));
    if (addressFamily(server.address) === undefined) {
      return Promise.reject(new StunError('ERR_STUN_ADDRESS', `STUN binding: server ${JSON.stringify(server.address)} is not an IP address`));
    }
    const transactionId = createTransactionId();
    const key = transactionId.toString('hex');
    const attributes: StunAttribute[] = [];
    if (options.changeIp || options.changePort) attributes.push({ kind: 'change-request', value: { changeIp: !!options.changeIp, changePort: !!options.changePort } });
    if (this.#software) attributes.push({ kind: 'software', value: this.#software });
    const request = encodeStunMessage({ method: StunMethod.BINDING, class: 'request', transactionId, attributes }, { fingerprint: true });

    return new Promise<BindingResult>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const cleanup = (): void => {
        for (const timer of timers) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => this.#settle(key)?.reject(new AbortedError(`STUN binding to ${target}: aborted`));
      const pending: Pending = {
        resolve: (result) => {
          cleanup();
          resolve(result);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
        startedAt: this.#now(),
        transmissions: 0,
      };
      this.#pending.set(key, pending);
      const transmit = (): void => {
        if (this.#pending.get(key) !== pending) return;
        try {
          this.#send(request, server);
          pending.transmissions++;
        } catch (err) {
          this.#settle(key)?.reject(new StunError('ERR_STUN_SEND', `STUN binding to ${target}: cannot send (${(err as Error).message})`, { cause: err }));
        }
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      for (const at of schedule.slice(1)) timers.push(setTimeout(transmit, at));
      timers.push(
        setTimeout(() => this.#settle(key)?.reject(new TimeoutError(`STUN binding to ${target}: no answer within ${timeoutMs} ms (${pending.transmissions} transmissions)`)), timeoutMs),
      );
      transmit();
    });
  }

  /** Fail every transaction in flight (StunError `ERR_STUN_CLOSED`) and detach from the socket. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#detach?.();
    this.#detach = undefined;
    for (const key of [...this.#pending.keys()]) this.#settle(key)?.reject(new StunError('ERR_STUN_CLOSED', 'STUN binding: client closed'));
  }

  #settle(key: string): Pending | undefined {
    const pending = this.#pending.get(key);
    this.#pending.delete(key);
    return pending;
  }
}

/**
 * One Binding transaction from `via`: a dedicated socket (a listener is
 * added for the duration and removed after) or a `StunClient` fed by the
 * owner of a shared socket.
 */
export async function stunBinding(via: Socket | StunClient, server: TransportAddress, options: BindingOptions = {}): Promise<BindingResult> {
  if (via instanceof StunClient) return via.binding(server, options);
  const client = StunClient.forSocket(via);
  try {
    return await client.binding(server, options);
  } finally {
    client.close();
  }
}
