import { mkdir } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { loadOrCreateIdentity } from '../crypto/identity.js';
import type { Identity } from '../crypto/identity.js';
import { PartylineError } from '../errors.js';
import { LinkServer } from '../link/transport.js';
import { componentLogger } from '../system/logging.js';
import type { Logger } from '../system/logging.js';
import { randomPort, readNodeState, writeNodeState } from './node-state.js';

/**
 * A Partyline node: identity, its port, and the Noise link listener. Later
 * stages attach the overlay, NAT traversal, calls and the phone here; this
 * is the only place that wires components together.
 */
export class PartylineNode {
  readonly config: Config;
  #log: Logger;
  #identity: Identity | undefined;
  #server: LinkServer | undefined;
  #startedAt = 0;

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.#log = log;
  }

  get identity(): Identity {
    if (!this.#identity) throw new PartylineError('ERR_NOT_STARTED', 'node not started');
    return this.#identity;
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  get uptimeS(): number {
    return this.#startedAt ? Math.round((Date.now() - this.#startedAt) / 1000) : 0;
  }

  async start(): Promise<void> {
    const { stateDir } = this.config.node;
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const { identity, created } = await loadOrCreateIdentity(stateDir);
    this.#identity = identity;
    if (created) this.#log.info({ deviceId: identity.deviceId, stateDir }, 'device identity created');
    this.#server = await this.#listen(identity);
    this.#startedAt = Date.now();
    this.#log.info({ deviceId: identity.deviceId, listen: this.config.node.listen, port: this.port, network: this.config.network.name }, 'node started');
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.stop();
    if (server) this.#log.info('node stopped');
  }

  /** Bind `node.port`, or the port chosen at first start (kept in node.json), or choose one now. */
  async #listen(identity: Identity): Promise<LinkServer> {
    const { stateDir, listen } = this.config.node;
    const configured = this.config.node.port;
    const saved = configured === 0 ? await readNodeState(stateDir) : undefined;
    const attempts = configured !== 0 || saved ? 1 : 5;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const port = configured || saved?.port || randomPort();
      const server = new LinkServer({
        identity,
        network: this.config.network.name,
        role: 'node',
        log: componentLogger(this.#log, 'link'),
        host: listen,
        port,
        maxConnections: this.config.supernode.maxNodes + 100,
        maxPerAddress: this.config.supernode.maxLinksPerAddress,
        onLink: ({ link, peer }) => {
          this.#log.debug({ peer: peer.deviceId, role: peer.role }, 'link accepted');
          link.once('close', () => this.#log.debug({ peer: peer.deviceId }, 'link closed'));
        },
      });
      try {
        await server.start();
        if (configured === 0 && !saved) await writeNodeState(stateDir, { version: 1, port });
        return server;
      } catch (err) {
        lastError = err;
        this.#log.warn({ port, err: (err as Error).message }, 'cannot listen on port');
      }
    }
    throw new PartylineError('ERR_LISTEN', `cannot listen on ${listen}: ${(lastError as Error)?.message}`, { cause: lastError });
  }
}
