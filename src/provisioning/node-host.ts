/**
 * Runs the PartylineNode and replaces it with a new one when provisioning
 * applies a new configuration (stop → start in this process, with the same
 * state directory, identity and logger): what runs beside the node — the
 * MQTT connection, an embedded broker — stays up across the restart.
 */
import { PartylineNode } from '../app/node.js';
import type { NodeExtras, NodeStatus } from '../app/node.js';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../system/logging.js';

export interface NodeHostOptions {
  config: Config;
  log: Logger;
  extras?: NodeExtras;
  /** Called with each node once it has started (the first, and after every restart). */
  onStarted?: (node: PartylineNode) => void;
}

export class NodeHost {
  readonly #options: NodeHostOptions;
  #node: PartylineNode;
  #restarting: Promise<void> = Promise.resolve();
  #restarts = 0;
  #stopped = false;

  constructor(options: NodeHostOptions) {
    this.#options = options;
    this.#node = new PartylineNode(options.config, options.log, options.extras);
  }

  /** The node running now (during a restart: the one being replaced, until its successor has started). */
  get node(): PartylineNode {
    return this.#node;
  }

  get config(): Config {
    return this.#node.config;
  }

  /** How many times the node was restarted in this process. */
  get restarts(): number {
    return this.#restarts;
  }

  async start(): Promise<void> {
    await this.#node.start();
    this.#options.onStarted?.(this.#node);
  }

  status(): NodeStatus {
    return this.#node.status();
  }

  /**
   * Stop the node and start a new one with `config`. Restarts run one at a
   * time. Throws when the new node cannot start (it is stopped again; the
   * caller decides what to run instead).
   */
  restart(config: Config): Promise<void> {
    const run = this.#restarting.then(() => this.#restart(config));
    this.#restarting = run.catch(() => undefined);
    return run;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#restarting;
    await this.#node.stop();
  }

  async #restart(config: Config): Promise<void> {
    if (this.#stopped) return;
    const log = this.#options.log;
    await this.#node.stop();
    const next = new PartylineNode(config, log, this.#options.extras);
    this.#restarts++;
    try {
      await next.start();
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'node failed to start with the new configuration');
      await next.stop().catch((stopErr: unknown) => log.warn({ err: errorMessage(stopErr) }, 'stopping the failed node failed'));
      throw err;
    }
    this.#node = next;
    this.#options.onStarted?.(next);
  }
}
