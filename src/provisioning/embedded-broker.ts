/**
 * The optional embedded MQTT broker (provisioning.broker, aedes) for a
 * supernode box on a LAN with no broker. Plain MQTT, retained messages in
 * memory (lost when the process stops: the operator's desired
 * configurations should be published again, which `partyline provision`
 * does). With a user name and password set, every client must present
 * them. A real broker (Mosquitto, with TLS and per-phone ACLs) is the
 * recommendation; see README "Provisioning over MQTT".
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Aedes } from 'aedes';
import { PartylineError, errorMessage } from '../errors.js';
import type { Logger } from '../system/logging.js';

export interface EmbeddedBrokerOptions {
  listen: string;
  port: number;
  username?: string | undefined;
  password?: string | undefined;
  log: Logger;
}

function same(a: string, b: Buffer | string | undefined): boolean {
  if (b === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class EmbeddedBroker {
  readonly #o: EmbeddedBrokerOptions;
  #broker: Aedes | undefined;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(options: EmbeddedBrokerOptions) {
    this.#o = options;
  }

  get port(): number {
    const address = this.#server?.address();
    return typeof address === 'object' && address ? address.port : this.#o.port;
  }

  async start(): Promise<void> {
    const { username, password, log } = this.#o;
    const broker = await Aedes.createBroker({
      authenticate: (_client, user, pass, done) => {
        if (username === undefined || password === undefined) return done(null, true);
        const ok = user !== undefined && same(username, user) && same(password, pass ?? undefined);
        if (!ok) log.warn({ user }, 'embedded MQTT broker: login refused');
        done(null, ok);
      },
    });
    broker.on('clientError', (client, err) => log.debug({ client: client?.id, err: errorMessage(err) }, 'embedded MQTT broker: client error'));
    this.#broker = broker;
    const server = createServer(broker.handle);
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new PartylineError('ERR_LISTEN', `embedded MQTT broker cannot listen on ${this.#o.listen}:${this.#o.port}: ${err.message}`, { cause: err })));
      server.listen(this.#o.port, this.#o.listen, () => resolve());
    });
    log.info({ listen: this.#o.listen, port: this.port, auth: username !== undefined }, 'embedded MQTT broker started');
  }

  async stop(): Promise<void> {
    const broker = this.#broker;
    const server = this.#server;
    this.#broker = undefined;
    this.#server = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server) {
      for (const socket of this.#sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
