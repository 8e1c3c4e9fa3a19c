import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Credential } from '../crypto/credential.js';
import { makeHandshakePayload, verifyHandshakePayload } from '../crypto/handshake-payload.js';
import type { VerifiedPeer } from '../crypto/handshake-payload.js';
import type { Identity } from '../crypto/identity.js';
import { SecureChannel } from '../crypto/secure-channel.js';
import type { ByteStream, ChannelPattern } from '../crypto/secure-channel.js';
import { AbortedError, PartylineError, TimeoutError } from '../errors.js';
import type { Logger } from '../system/logging.js';
import { Link } from './link.js';
import type { LinkOptions } from './link.js';

export const PROTOCOL_PROLOGUE = 'partyline/1';

/** Both ends must agree on protocol and network, or the handshake fails. */
export function prologueFor(network: string): Buffer {
  return Buffer.from(`${PROTOCOL_PROLOGUE}\n${network}`, 'utf8');
}

export interface EndpointOptions {
  identity: Identity;
  network: string;
  /** Role announced in the handshake payload. */
  role: string;
  /** The credential to present, when this side has one. */
  credential?: () => Credential | undefined;
  log: Logger;
  handshakeTimeoutMs?: number;
  link?: Omit<LinkOptions, 'log'>;
}

export interface DialOptions extends EndpointOptions {
  host: string;
  port: number;
  /** Known Noise key of the peer: uses IK (one round trip less) and pins the key. */
  remoteStaticKey?: Buffer;
  pattern?: ChannelPattern;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  /** Register handlers here: the link starts receiving right after. */
  setup?: (link: Link, peer: VerifiedPeer) => void;
}

export interface PeerLink {
  link: Link;
  peer: VerifiedPeer;
}

function connectSocket(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError(`connect to ${host}:${port} aborted`));
      return;
    }
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onConnect = (): void => done();
    const onError = (err: Error): void => done(new PartylineError('ERR_CONNECT', `connect to ${host}:${port}: ${err.message}`, { cause: err }));
    const onAbort = (): void => done(new AbortedError(`connect to ${host}:${port} aborted`));
    const timer = setTimeout(() => done(new TimeoutError(`connect to ${host}:${port}: no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Open a Noise link to a peer: TCP connect, handshake (identity proof both ways), message link. */
export async function dialLink(options: DialOptions): Promise<PeerLink> {
  const socket = await connectSocket(options.host, options.port, options.connectTimeoutMs ?? 3000, options.signal);
  return establishLink(socket, options);
}

/**
 * Run the initiator's side of the handshake on an open byte stream (a TCP
 * socket, or a tunnel through a supernode) and return the message link.
 */
export async function establishLink(socket: ByteStream, options: Omit<DialOptions, 'connectTimeoutMs' | 'host' | 'port'> & { host?: string; port?: number }): Promise<PeerLink> {
  const pattern = options.pattern ?? (options.remoteStaticKey ? 'IK' : 'XX');
  const credential = options.credential?.();
  const channel = await SecureChannel.establish(socket, {
    initiator: true,
    pattern,
    staticKeyPair: options.identity.noise,
    ...(options.remoteStaticKey ? { remoteStaticKey: options.remoteStaticKey } : {}),
    prologue: prologueFor(options.network),
    payload: makeHandshakePayload(options.identity, { role: options.role, ...(credential ? { credential } : {}) }),
    verifyPayload: verifyHandshakePayload,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // Link log lines carry the peer address themselves: no child logger per link (memory on supernodes).
  const link = new Link(channel, { ...options.link, log: options.log });
  const peer = channel.peer as VerifiedPeer;
  try {
    options.setup?.(link, peer);
  } catch (err) {
    link.close(err as Error);
    throw err;
  }
  link.start();
  return { link, peer };
}

export interface LinkServerOptions extends EndpointOptions {
  host: string;
  port: number;
  /** Total connections (handshaking or established). */
  maxConnections?: number;
  /** Connections from one source address. */
  maxPerAddress?: number;
  /** Register handlers here: the link starts receiving right after. */
  onLink: (peerLink: PeerLink) => void;
}

/**
 * Accepts Noise links on a TCP port. Limits connections in total and per
 * source address; a peer that does not finish its handshake in time, or
 * sends garbage, is dropped with a logged typed error, and the server keeps
 * serving everyone else.
 */
export class LinkServer {
  #options: LinkServerOptions;
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #perAddress = new Map<string, number>();
  #log: Logger;

  constructor(options: LinkServerOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  get port(): number {
    const address = this.#server?.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  get connections(): number {
    return this.#sockets.size;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    server.on('error', (err) => this.#log.error({ err }, 'link server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#options.host, port: this.#options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const max = this.#options.maxConnections ?? 20_000;
    const maxPer = this.#options.maxPerAddress ?? 64;
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (this.#sockets.size >= max || fromAddress >= maxPer) {
      this.#log.warn({ peer: address, connections: this.#sockets.size, fromAddress }, 'connection refused: limit reached');
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    this.#perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      const n = (this.#perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, n);
    });
    socket.on('error', () => {
      /* reported through the channel or the handshake; the close handler cleans up */
    });
    const credential = this.#options.credential?.();
    SecureChannel.establish(socket, {
      initiator: false,
      staticKeyPair: this.#options.identity.noise,
      prologue: prologueFor(this.#options.network),
      payload: makeHandshakePayload(this.#options.identity, { role: this.#options.role, ...(credential ? { credential } : {}) }),
      verifyPayload: verifyHandshakePayload,
      handshakeTimeoutMs: this.#options.handshakeTimeoutMs ?? 5000,
    }).then(
      (channel) => {
        const peer = channel.peer as VerifiedPeer;
        const link = new Link(channel, { ...this.#options.link, log: this.#log });
        try {
          this.#options.onLink({ link, peer });
        } catch (err) {
          this.#log.error({ err }, 'link setup failed');
          link.close(err as Error);
          return;
        }
        link.start();
      },
      (err: PartylineError) => {
        this.#log.warn({ peer: address, code: err.code, err: err.message }, 'handshake failed');
      },
    );
  }
}
