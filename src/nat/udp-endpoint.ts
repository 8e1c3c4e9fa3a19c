import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { PartylineError, errorMessage } from '../errors.js';
import type { Logger } from '../system/logging.js';
import type { TransportAddress } from './stun/address.js';
import { StunClient } from './stun/client.js';
import { isStunPacket } from './stun/message.js';
import { StunResponder } from './stun/responder.js';
import type { DelegatedRequest, StunEndpoint } from './stun/responder.js';

export type DatagramHandler = (packet: Buffer, from: RemoteInfo) => boolean;

export interface UdpEndpointOptions {
  host: string;
  port: number;
  log: Logger;
  /**
   * Serve STUN (supernodes): the advertised address of this port, and a
   * second port for RFC 5780's change-port test.
   */
  stunServer?: {
    advertise: string;
    alternatePort: number;
    /** Offer change-IP requests to another supernode (which calls answerOnBehalf); false = answer 420. */
    delegateChangeIp?: (request: DelegatedRequest) => boolean;
  };
}

/**
 * A node's one UDP port (DESIGN.md "Channels"): STUN, RTP/RTCP and relay
 * traffic share it and are told apart by the first byte (RFC 7983). STUN
 * answers to this node's own requests go to its StunClient; requests from
 * others go to the StunResponder on supernodes; anything else goes to the
 * handlers registered by media and relay code.
 */
export class UdpEndpoint {
  readonly client: StunClient;
  #options: UdpEndpointOptions;
  #socket: Socket | undefined;
  #alternate: Socket | undefined;
  #responder: StunResponder | undefined;
  #handlers: DatagramHandler[] = [];

  constructor(options: UdpEndpointOptions) {
    this.#options = options;
    this.client = new StunClient({ send: (data, to) => this.send(data, to), log: options.log });
  }

  get socket(): Socket {
    if (!this.#socket) throw new PartylineError('ERR_NOT_STARTED', 'UDP endpoint not started');
    return this.#socket;
  }

  get port(): number {
    return this.#socket?.address().port ?? 0;
  }

  get responder(): StunResponder | undefined {
    return this.#responder;
  }

  /** Handlers see every non-STUN datagram (and STUN nobody claimed) until one returns true. */
  onDatagram(handler: DatagramHandler): () => void {
    this.#handlers.push(handler);
    return () => {
      this.#handlers = this.#handlers.filter((h) => h !== handler);
    };
  }

  send(data: Buffer, to: TransportAddress): void {
    this.#socket?.send(data, to.port, to.address, (err) => {
      if (err) this.#options.log.debug({ to, err: errorMessage(err) }, 'datagram not sent');
    });
  }

  async start(): Promise<void> {
    if (this.#socket) return;
    const { host, port, stunServer } = this.#options;
    this.#socket = await bind(host, port, this.#options.log);
    this.#socket.on('message', (packet, from) => this.#receive(packet, from, 'primary'));
    if (stunServer) {
      try {
        this.#alternate = await bind(host, stunServer.alternatePort, this.#options.log);
        this.#alternate.on('message', (packet, from) => this.#receive(packet, from, 'alternate-port'));
      } catch (err) {
        this.#options.log.warn({ port: stunServer.alternatePort, err: errorMessage(err) }, 'no second STUN port: NAT filtering tests against this supernode will be inconclusive');
      }
      this.#responder = new StunResponder({
        endpoints: {
          primary: { address: stunServer.advertise, port: this.port },
          ...(this.#alternate ? { 'alternate-port': { address: stunServer.advertise, port: this.#alternate.address().port } } : {}),
        },
        log: this.#options.log,
        ...(stunServer.delegateChangeIp ? { delegateChangeIp: stunServer.delegateChangeIp } : {}),
      });
    }
  }

  /**
   * Answer a STUN request another supernode delegated to us (its change-IP
   * test), from our second port when we have one: the client is about to
   * probe our primary port for its mapping test, and an answer from that
   * same address would leave a NAT entry that skews the mapping it sees.
   */
  answerOnBehalf(packet: Buffer, client: TransportAddress): void {
    this.#responder?.answerOnBehalf(packet, client, (data, to) => this.#sendVia(data, to, this.#alternate ? 'alternate-port' : 'primary'));
  }

  async stop(): Promise<void> {
    this.client.close();
    const sockets = [this.#socket, this.#alternate].filter((s): s is Socket => s !== undefined);
    this.#socket = undefined;
    this.#alternate = undefined;
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  #receive(packet: Buffer, from: RemoteInfo, arrivedOn: StunEndpoint): void {
    if (isStunPacket(packet)) {
      if (arrivedOn === 'primary' && this.client.handleStunPacket(packet, from)) return;
      if (this.#responder) {
        const outcome = this.#responder.handleStunPacket(packet, from, (data, to, via) => this.#sendVia(data, to, via), arrivedOn);
        if (outcome !== 'not-request' && outcome !== 'unsupported-method') return;
      }
    }
    for (const handler of this.#handlers) {
      try {
        if (handler(packet, from)) return;
      } catch (err) {
        // One handler's bug must not take the port (and the process) down with it.
        this.#options.log.warn({ from: `${from.address}:${from.port}`, err: errorMessage(err) }, 'datagram handler failed');
        return;
      }
    }
  }

  #sendVia(data: Buffer, to: TransportAddress, via: StunEndpoint): void {
    const socket = via === 'alternate-port' ? this.#alternate : this.#socket;
    socket?.send(data, to.port, to.address, (err) => {
      if (err) this.#options.log.debug({ to, err: errorMessage(err) }, 'stun answer not sent');
    });
  }
}

function bind(host: string, port: number, log: Logger): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    socket.once('error', reject);
    socket.bind({ address: host, port }, () => {
      socket.off('error', reject);
      socket.on('error', (err) => log.warn({ port, err: err.message }, 'UDP socket error'));
      resolve(socket);
    });
  });
}
