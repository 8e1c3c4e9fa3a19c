import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { addressFamily, isUnspecified } from './address.js';
import type { TransportAddress } from './address.js';
import { StunError } from './errors.js';
import { isStunPacket } from './message.js';
import { StunResponder } from './responder.js';
import type { StunEndpoint, StunHandleOutcome, StunRemoteInfo, StunResponderOptions, StunSend } from './responder.js';

export { STUN_ENDPOINTS, StunResponder } from './responder.js';
export type { DelegatedRequest, StunEndpoint, StunHandleOutcome, StunRemoteInfo, StunResponderOptions, StunSend } from './responder.js';

/**
 * A STUN packet handler for a socket owned by someone else (the phone's
 * media socket, a relay's socket): call it for every datagram where
 * `isStunPacket(buf)` is true. Everything it sends goes through `send`
 * (`via` is always `primary` unless the responder was given alternates).
 */
export type StunPacketHandler = (buf: Buffer, rinfo: StunRemoteInfo, send: StunSend) => StunHandleOutcome;

/** `handleStunPacket` for one socket: a responder whose only endpoint is `local`. */
export function createStunHandler(local: TransportAddress, options: Omit<StunResponderOptions, 'endpoints'> = {}): StunPacketHandler {
  const responder = new StunResponder({ ...options, endpoints: { primary: local } });
  return (buf, rinfo, send) => responder.handleStunPacket(buf, rinfo, send);
}

export interface StunServerOptions extends Omit<StunResponderOptions, 'endpoints'> {
  /** IP address to bind (`0.0.0.0` or `::` for all; RFC 5780 features then need `advertisedAddress`). */
  address: string;
  /** UDP port (0: any free port; see `endpoints` after `start()`). */
  port: number;
  /** A second port on `address`, for change-port (0: any free port). */
  alternatePort?: number;
  /** A second IP address of this host, for change-IP; bound on the same port number(s). */
  alternateAddress?: string;
  /** Put in RESPONSE-ORIGIN/OTHER-ADDRESS instead of a wildcard `address`. */
  advertisedAddress?: string;
}

/**
 * A STUN server that owns its sockets: one for the primary address, and,
 * when configured, an alternate port, an alternate IP and both — the RFC
 * 5780 layout (Pa:Pp, Pa:Cp, Ca:Pp, Ca:Cp). The protocol work is the
 * `StunResponder`'s. `start()`/`stop()` are idempotent; `stop()` closes every
 * socket.
 */
export class StunServer {
  readonly #options: StunServerOptions;
  readonly #sockets = new Map<StunEndpoint, Socket>();
  readonly #ipv6 = new Set<StunEndpoint>();
  #endpoints: Partial<Record<StunEndpoint, TransportAddress>> = {};
  #responder: StunResponder | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: StunServerOptions) {
    for (const [name, value] of [['address', options.address], ['alternateAddress', options.alternateAddress], ['advertisedAddress', options.advertisedAddress]] as const) {
      if (value !== undefined && addressFamily(value) === undefined) {
        throw new StunError('ERR_STUN_CONFIG', `STUN server ${name}: ${JSON.stringify(value)} is not an IP address`);
      }
    }
    if (options.alternateAddress !== undefined && isUnspecified(options.alternateAddress)) {
      throw new StunError('ERR_STUN_CONFIG', `STUN server alternateAddress: expected a specific address, got ${options.alternateAddress}`);
    }
    this.#options = options;
  }

  /** The bound (advertised) address of each endpoint; empty before `start()`. */
  get endpoints(): Partial<Record<StunEndpoint, TransportAddress>> {
    return { ...this.#endpoints };
  }

  get responder(): StunResponder | undefined {
    return this.#responder;
  }

  /** Bind every socket. Rejects (and closes what was bound) when a bind fails. */
  start(): Promise<void> {
    if (this.#stopping) return this.#stopping.then(() => this.start());
    this.#starting ??= this.#start().catch(async (err: unknown) => {
      await this.#closeAll();
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  /** Close every socket. Harmless when not started or already stopped. */
  stop(): Promise<void> {
    if (this.#starting === undefined) return this.#stopping ?? Promise.resolve();
    const starting = this.#starting;
    this.#starting = undefined;
    this.#stopping = starting
      .catch(() => undefined)
      .then(() => this.#closeAll())
      .finally(() => {
        this.#stopping = undefined;
      });
    return this.#stopping;
  }

  /** Answer a request another server delegated to this one (see `StunResponder.answerOnBehalf`). */
  answerOnBehalf(packet: Buffer, client: TransportAddress): StunHandleOutcome {
    if (this.#responder === undefined) return 'malformed';
    return this.#responder.answerOnBehalf(packet, client, this.#send);
  }

  async #start(): Promise<void> {
    const o = this.#options;
    const primary = await this.#bind('primary', o.address, o.port);
    const altPort = o.alternatePort === undefined ? undefined : await this.#bind('alternate-port', o.address, o.alternatePort);
    if (o.alternateAddress !== undefined) {
      await this.#bind('alternate-ip', o.alternateAddress, primary.port);
      if (altPort !== undefined) await this.#bind('alternate-both', o.alternateAddress, altPort.port);
    }
    this.#responder = new StunResponder({
      endpoints: { ...this.#endpoints, primary },
      software: o.software,
      rateLimit: o.rateLimit,
      amplificationAllowance: o.amplificationAllowance,
      delegateChangeIp: o.delegateChangeIp,
      now: o.now,
      log: o.log,
    });
    for (const [endpoint, socket] of this.#sockets) {
      socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
        if (isStunPacket(msg)) this.#responder?.handleStunPacket(msg, rinfo, this.#send, endpoint);
      });
    }
    o.log?.info({ endpoints: this.#endpoints }, 'stun server started');
  }

  #bind(endpoint: StunEndpoint, address: string, port: number): Promise<TransportAddress> {
    const ipv6 = addressFamily(address) === 'IPv6';
    const socket = createSocket({ type: ipv6 ? 'udp6' : 'udp4' });
    this.#sockets.set(endpoint, socket);
    if (ipv6) this.#ipv6.add(endpoint);
    socket.on('error', (err) => this.#options.log?.warn({ err, endpoint }, 'stun socket error'));
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new StunError('ERR_STUN_BIND', `STUN server ${endpoint}: cannot bind ${address}:${port} (${err.message})`, { cause: err }));
      socket.once('error', onError);
      socket.bind(port, address, () => {
        socket.off('error', onError);
        const bound = socket.address();
        const advertised = isUnspecified(bound.address) && this.#options.advertisedAddress !== undefined ? this.#options.advertisedAddress : bound.address;
        const value = { address: advertised, port: bound.port };
        this.#endpoints[endpoint] = value;
        resolve(value);
      });
    });
  }

  readonly #send: StunSend = (data, to, via) => {
    const socket = this.#sockets.get(via);
    if (socket === undefined) return;
    const v4OnV6 = this.#ipv6.has(via) && !to.address.includes(':');
    socket.send(data, to.port, v4OnV6 ? `::ffff:${to.address}` : to.address, (err) => {
      if (err) this.#options.log?.debug({ err, to, via }, 'stun response not sent');
    });
  };

  async #closeAll(): Promise<void> {
    const sockets = [...this.#sockets.values()];
    this.#sockets.clear();
    this.#ipv6.clear();
    this.#endpoints = {};
    this.#responder = undefined;
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            try {
              socket.close(() => resolve());
            } catch {
              resolve(); // never bound or already closed: nothing to release
            }
          }),
      ),
    );
    if (sockets.length > 0) this.#options.log?.info('stun server stopped');
  }
}
