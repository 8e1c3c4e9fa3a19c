/**
 * A node with provisioning beside it: what `partyline start` runs. It
 * starts the node (NodeHost), the embedded broker when configured, and the
 * provisioning agent on the broker from provisioning.mqtt.url — or the
 * embedded one, or one announced on the LAN by mDNS. Without any broker it
 * is just the node. `start()`, `stop()` and `status()` are the node's.
 */
import type { PartylineNode, NodeStatus } from '../app/node.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { componentLogger } from '../system/logging.js';
import type { Logger } from '../system/logging.js';
// The MQTT client, the broker and mDNS are imported when used (~190 ms of start-up a phone without them does not pay).
import type { ProvisioningAgent } from './agent.js';
import type { BrokerDiscovery } from './broker-discovery.js';
import type { EmbeddedBroker } from './embedded-broker.js';
import { LogLevels } from './log-levels.js';
import { NodeHost } from './node-host.js';
import { firmwareVersion } from './reports.js';

const DISCOVERY_WINDOW_MS = 5_000;
const DISCOVERY_PAUSE_MS = 60_000;

export interface ProvisionedNodeOptions {
  config: Config;
  /** The root logger (the log-level command reaches every component's child of it). */
  log: Logger;
  /** `--config FILE`, read again when provisioning restarts the node. */
  configFile?: string | undefined;
  /** `--log-level`, kept over what the configuration says. */
  logLevel?: string | undefined;
}

export class ProvisionedNode {
  readonly #o: ProvisionedNodeOptions;
  readonly #log: Logger;
  readonly #logLevels: LogLevels;
  readonly #host: NodeHost;
  #agent: ProvisioningAgent | undefined;
  #agentClass: typeof ProvisioningAgent | undefined;
  #broker: EmbeddedBroker | undefined;
  #discovery: BrokerDiscovery | undefined;
  #discovering: AbortController | undefined;
  #stopped = false;

  constructor(options: ProvisionedNodeOptions) {
    this.#o = options;
    this.#logLevels = new LogLevels(options.log);
    this.#log = componentLogger(options.log, 'provisioning');
    this.#host = new NodeHost({
      config: options.config,
      log: options.log,
      extras: { statusExtras: () => (this.#agent ? { provisioning: this.#agent.status() } : {}) },
      onStarted: (node) => this.#agent?.nodeStarted(node),
    });
  }

  get node(): PartylineNode {
    return this.#host.node;
  }

  get agent(): ProvisioningAgent | undefined {
    return this.#agent;
  }

  status(): NodeStatus {
    return this.#host.status();
  }

  async start(): Promise<void> {
    const { provisioning, network, node } = this.#o.config;
    if (provisioning.broker.enabled) {
      const { EmbeddedBroker } = await import('./embedded-broker.js');
      this.#broker = new EmbeddedBroker({ ...provisioning.broker, log: componentLogger(this.#o.log, 'mqtt-broker') });
      await this.#broker.start();
      if (network.mdns) (await this.#mdns()).announce(node.name ?? `partyline broker ${this.#broker.port}`, this.#broker.port);
    }
    // Loaded before the node starts when it will be used, so that status shows provisioning from the first moment.
    if (provisioning.mqtt.url !== undefined || this.#broker) this.#agentClass = (await import('./agent.js')).ProvisioningAgent;
    await this.#host.start();
    const { url } = provisioning.mqtt;
    if (url !== undefined) await this.#startAgent(url);
    else if (this.#broker) await this.#startAgent(`mqtt://127.0.0.1:${this.#broker.port}`, provisioning.broker);
    else if (provisioning.discover && network.mdns) this.#discover();
    else this.#log.info('no MQTT broker configured (provisioning.mqtt.url): provisioning over MQTT is off');
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#discovering?.abort();
    await this.#agent?.stop().catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'stopping provisioning failed'));
    await this.#host.stop();
    await this.#broker?.stop();
    await this.#discovery?.stop();
  }

  async #startAgent(url: string, login?: { username?: string | undefined; password?: string | undefined }): Promise<void> {
    const config = this.#host.config;
    const mqtt = { ...config.provisioning.mqtt };
    if (mqtt.username === undefined && login?.username !== undefined) Object.assign(mqtt, { username: login.username, password: login.password });
    const ProvisioningAgent = this.#agentClass ?? (this.#agentClass = (await import('./agent.js')).ProvisioningAgent);
    this.#agent = new ProvisioningAgent({
      host: this.#host,
      url,
      mqtt,
      loginTimeoutS: config.provisioning.loginTimeoutS,
      telemetryS: config.provisioning.telemetryS,
      configFile: this.#o.configFile,
      reload: () => this.#reload(),
      logLevels: this.#logLevels,
      log: this.#log,
      firmware: firmwareVersion(),
    });
    await this.#agent.start();
  }

  /** Look for a broker on the LAN until one answers (a short browse, then a pause), in the background. */
  #discover(): void {
    const controller = new AbortController();
    this.#discovering = controller;
    const attempt = async (): Promise<void> => {
      const discovery = await this.#mdns();
      while (!controller.signal.aborted) {
        const url = await discovery.find(DISCOVERY_WINDOW_MS, controller.signal);
        if (controller.signal.aborted) return;
        if (url) {
          this.#log.info({ broker: url }, 'MQTT broker found on the LAN (mDNS)');
          await this.#startAgent(url);
          return;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, DISCOVERY_PAUSE_MS);
          timer.unref();
          controller.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
        });
      }
    };
    this.#log.info('no MQTT broker configured: looking for one on the LAN (mDNS _mqtt._tcp)');
    attempt().catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'MQTT broker discovery failed'));
  }

  async #mdns(): Promise<BrokerDiscovery> {
    if (!this.#discovery) {
      const { BrokerDiscovery } = await import('./broker-discovery.js');
      this.#discovery ??= new BrokerDiscovery(componentLogger(this.#o.log, 'mdns'));
    }
    return this.#discovery;
  }

  async #reload(): Promise<Config> {
    const { config } = await loadConfig(this.#o.configFile !== undefined ? { file: this.#o.configFile } : {});
    if (this.#o.logLevel) config.log.level = this.#o.logLevel as Config['log']['level'];
    return config;
  }
}
