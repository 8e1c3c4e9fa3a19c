/**
 * The provisioning agent: one MQTT connection beside the node (NodeHost).
 * It publishes `status` (with the last will `offline`), `info`, `event/*`
 * and `telemetry`, takes `config/desired` through the apply state machine
 * (apply-machine.ts) and answers `cmd/<name>`. Every message is validated;
 * a bad one gets a clear error (a `rejected` report or an error response)
 * and the agent keeps serving. Secrets in a desired configuration are never
 * echoed in reports, info or logs.
 */
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { PartylineNode } from '../app/node.js';
import type { CallView } from '../call/call-manager.js';
import { redactUrl } from '../config/redact.js';
import type { Config, MqttConfig } from '../config/schema.js';
import type { ProvisioningStatus } from '../control/status.js';
import { PartylineError, errorMessage } from '../errors.js';
import { SystemCapabilitySource } from '../overlay/promotion/capabilities.js';
import type { CapabilitySource } from '../overlay/promotion/capabilities.js';
import type { Logger } from '../system/logging.js';
import { applyStep, initialApplyState, resumeVerifying } from './apply-machine.js';
import type { ApplyAction, ApplyEvent, ApplyState } from './apply-machine.js';
import { runCommand } from './commands.js';
import type { LogLevels } from './log-levels.js';
import type { NodeHost } from './node-host.js';
import { buildInfo, buildTelemetry, readMachineFigures } from './reports.js';
import { ProvisioningStore } from './state-store.js';
import type { SavedProvisioning } from './state-store.js';
import {
  STATUS_OFFLINE, STATUS_ONLINE, classifyTopic, commandErrorId, decodeCommand, decodeDesired, deviceTopics, encodeReport, encodeResponse, isCommandName,
} from './topics.js';
import type { CommandResponse, ConfigVersion, DeviceTopics, Report } from './topics.js';
import { checkDesired, scrub, secretsIn } from './validate-desired.js';

/** Commands running at once; more get ERR_BUSY (a flood cannot pile up work). */
const MAX_COMMANDS_IN_FLIGHT = 8;
const POLL_MS = 250;
const INFO_CHECK_MS = 2000;

export interface ProvisioningAgentOptions {
  host: NodeHost;
  /** Broker URL (from provisioning.mqtt.url, mDNS, or the embedded broker). */
  url: string;
  mqtt: Pick<MqttConfig, 'username' | 'password' | 'caFile' | 'topicPrefix'>;
  loginTimeoutS: number;
  telemetryS: number;
  /** The configuration file (`--config`): a desired configuration is checked merged with it. */
  configFile: string | undefined;
  /** Load the layered configuration again (file, provisioned overlay, environment, command-line overrides). */
  reload: () => Promise<Config>;
  logLevels: LogLevels;
  log: Logger;
  firmware: string;
  capabilities?: CapabilitySource;
  now?: () => number;
}

export class ProvisioningAgent {
  readonly #o: ProvisioningAgentOptions;
  readonly #log: Logger;
  readonly #store: ProvisioningStore;
  readonly #topics: DeviceTopics;
  readonly #now: () => number;
  readonly #capabilities: CapabilitySource;
  #client: MqttClient | undefined;
  #state: ApplyState = initialApplyState();
  #saved: SavedProvisioning = { version: 1, applied: null, handled: null, verifying: null, lastGoodOverlay: false };
  /** Machine events and the actions they cause run one at a time. */
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #inFlight = 0;
  #lastReport: Report | undefined;
  #lastInfo = '';
  #lastCall = '';
  #startedAt = new Date().toISOString();
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;

  constructor(options: ProvisioningAgentOptions) {
    this.#o = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#capabilities = options.capabilities ?? new SystemCapabilitySource();
    const config = options.host.config;
    this.#store = new ProvisioningStore(config.node.stateDir);
    this.#topics = deviceTopics(options.mqtt.topicPrefix, options.host.node.identity.deviceId);
  }

  get topics(): DeviceTopics {
    return this.#topics;
  }

  status(): ProvisioningStatus {
    const pending = this.#state.current?.version ?? this.#state.pending?.version ?? null;
    return { broker: redactUrl(this.#o.url), connected: this.#client?.connected ?? false, applied: this.#state.applied, pending, phase: this.#state.phase, topics: this.#topics.base };
  }

  async start(): Promise<void> {
    this.#saved = await this.#store.load();
    this.#state = initialApplyState(this.#saved);
    if (this.#saved.verifying !== null) {
      // The process stopped while a new configuration was being verified: it is the one running now; give it its time again.
      this.#log.info({ version: this.#saved.verifying }, 'verifying the configuration applied before the restart');
      this.#state = resumeVerifying(this.#state, this.#saved.verifying, this.#now(), this.#timing());
    }
    this.#state = { ...this.#state, idle: this.#o.host.node.idle };
    this.nodeStarted(this.#o.host.node);
    this.#client = connect(this.#o.url, await this.#clientOptions());
    const client = this.#client;
    client.on('connect', () => this.#onConnect());
    client.on('message', (topic, payload, packet) => this.#onMessage(topic, payload, packet.retain));
    client.on('error', (err) => this.#log.warn({ broker: redactUrl(this.#o.url), err: errorMessage(err) }, 'MQTT error'));
    client.on('offline', () => this.#log.warn({ broker: redactUrl(this.#o.url) }, 'MQTT broker unreachable; reconnecting'));
    this.#every(POLL_MS, () => this.#poll());
    this.#every(INFO_CHECK_MS, () => this.#publishInfo(false));
    if (this.#o.telemetryS > 0) this.#every(this.#o.telemetryS * 1000, () => void this.#publishTelemetry());
  }

  /** Wire a (re)started node's events to the event topics and publish what changed. */
  nodeStarted(node: PartylineNode): void {
    node.events.on('hook', (state) => this.#publishEvent('hook', { state }));
    node.events.on('call', (view) => this.#onCall(view));
    this.#startedAt = new Date(this.#now()).toISOString();
    this.#publishInfo(true);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    await this.#queue;
    const client = this.#client;
    if (!client) return;
    if (client.connected) {
      // Say goodbye ourselves: the last will is for when we cannot.
      await Promise.race([client.publishAsync(this.#topics.status, STATUS_OFFLINE, { qos: 1, retain: true }).catch(() => undefined), delay(2000)]);
    }
    await client.endAsync(true).catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'closing the MQTT connection failed'));
  }

  // ---- connection --------------------------------------------------------

  async #clientOptions(): Promise<IClientOptions> {
    const { username, password, caFile } = this.#o.mqtt;
    return {
      clientId: `partyline-${this.#topics.base.split('/').pop()}`,
      protocolVersion: 4,
      clean: true,
      resubscribe: false,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      keepalive: 30,
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(caFile !== undefined ? { ca: await readFile(caFile) } : {}),
      will: { topic: this.#topics.status, payload: Buffer.from(STATUS_OFFLINE), qos: 1, retain: true },
    };
  }

  #onConnect(): void {
    const client = this.#client!;
    this.#log.info({ broker: redactUrl(this.#o.url), topics: this.#topics.base }, 'MQTT connected');
    client.publish(this.#topics.status, STATUS_ONLINE, { qos: 1, retain: true });
    this.#publishInfo(true);
    // A broker that lost its retained messages (restarted without persistence) gets the last report again.
    if (this.#lastReport) client.publish(this.#topics.reported, encodeReport(this.#lastReport), { qos: 1, retain: true });
    client.subscribe([...this.#topics.subscriptions], { qos: 1 }, (err) => {
      if (err) this.#log.error({ err: errorMessage(err) }, 'cannot subscribe to the provisioning topics');
    });
  }

  #onMessage(topic: string, payload: Buffer, retained: boolean): void {
    const incoming = classifyTopic(this.#topics, topic);
    if (incoming.kind === 'desired') this.#enqueue(() => this.#onDesired(payload));
    else if (incoming.kind === 'command') void this.#onCommand(incoming.name, payload, retained);
  }

  // ---- desired configuration ----------------------------------------------

  async #onDesired(payload: Buffer): Promise<void> {
    let desired;
    try {
      desired = decodeDesired(payload);
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'desired configuration rejected');
      this.#report({ version: null, status: 'rejected', errors: [errorMessage(err)] });
      return;
    }
    if (desired === null) {
      this.#log.info('desired configuration cleared; keeping the configuration in effect');
      return;
    }
    const known = [this.#state.handled, this.#state.current?.version, this.#state.pending?.version].includes(desired.version);
    const errors = known ? [] : (await checkDesired(desired.config, { file: this.#o.configFile, stateDir: this.#o.host.config.node.stateDir })).errors;
    await this.#feed({ type: 'desired', version: desired.version, config: desired.config, errors });
  }

  async #feed(event: ApplyEvent): Promise<void> {
    const { state, actions } = applyStep(this.#state, event, this.#now(), this.#timing());
    this.#state = state;
    await this.#persist();
    for (const action of actions) await this.#run(action);
  }

  async #run(action: ApplyAction): Promise<void> {
    switch (action.type) {
      case 'unchanged':
        this.#log.info({ version: action.version }, 'desired configuration unchanged');
        return;
      case 'waiting':
        this.#log.info({ version: action.version }, 'desired configuration waits until the phone is idle');
        this.#publishInfo(true);
        return;
      case 'report':
        this.#report({ version: action.version, status: action.status, errors: action.errors });
        return;
      case 'commit':
        this.#saved = { ...this.#saved, applied: action.version, verifying: null };
        await this.#persist();
        return;
      case 'apply':
        await this.#apply(action.version, action.config);
        return;
      case 'rollback':
        await this.#rollback(action.version, action.reason);
        return;
    }
  }

  async #apply(version: ConfigVersion, partial: unknown): Promise<void> {
    const host = this.#o.host;
    let needsLogin: boolean;
    try {
      const hadOverlay = await this.#store.keepLastGood();
      this.#saved = { ...this.#saved, lastGoodOverlay: hadOverlay, verifying: version };
      await this.#persist();
      await this.#store.writeOverlay(partial);
      const config = await this.#o.reload();
      needsLogin = config.account.user !== undefined;
      if (isDeepStrictEqual(config, host.config)) {
        this.#log.info({ version }, 'desired configuration changes nothing in effect: no restart');
      } else {
        this.#log.info({ version }, 'applying the desired configuration: restarting the node');
        await host.restart(config);
      }
    } catch (err) {
      this.#log.error({ version, err: scrub(errorMessage(err), secretsIn(partial)) }, 'applying the desired configuration failed');
      await this.#feed({ type: 'apply-failed', reason: scrub(errorMessage(err), secretsIn(partial)) });
      return;
    }
    await this.#feed({ type: 'applied', needsLogin });
  }

  async #rollback(version: ConfigVersion, why: string): Promise<void> {
    const host = this.#o.host;
    const lastError = host.node.status().overlay.lastError;
    const reason = lastError ? `${why} (last error: ${lastError})` : why;
    this.#log.warn({ version, reason }, 'returning to the last known good configuration');
    try {
      await this.#store.restoreLastGood(this.#saved.lastGoodOverlay);
      this.#saved = { ...this.#saved, verifying: null };
      await this.#persist();
      await host.restart(await this.#o.reload());
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'cannot restart with the last known good configuration');
    }
    await this.#feed({ type: 'rolled-back', reason });
  }

  #report(body: Omit<Report, 'at'>): void {
    const report: Report = { ...body, at: new Date(this.#now()).toISOString() };
    this.#lastReport = report;
    this.#log.info({ version: report.version, status: report.status, errors: report.errors }, 'configuration report');
    this.#client?.publish(this.#topics.reported, encodeReport(report), { qos: 1, retain: true });
    this.#publishInfo(true);
  }

  /** Save the versions decided on; `verifying` is set by #apply and cleared by commit and rollback, around the file changes. */
  async #persist(): Promise<void> {
    this.#saved = { ...this.#saved, applied: this.#state.applied, handled: this.#state.handled };
    await this.#store.save(this.#saved);
  }

  #timing(): { loginTimeoutMs: number } {
    return { loginTimeoutMs: this.#o.loginTimeoutS * 1000 };
  }

  #enqueue(work: () => Promise<void>): void {
    this.#queued++;
    this.#queue = this.#queue
      .then(work)
      .catch((err: unknown) => this.#log.error({ err: errorMessage(err), stack: (err as Error)?.stack }, 'provisioning step failed'))
      .finally(() => {
        this.#queued--;
      });
  }

  /** Idle changes, login and the login deadline, fed to the machine (only when nothing else is queued). */
  #poll(): void {
    if (this.#stopped || this.#queued > 0) return;
    const node = this.#o.host.node;
    const idle = node.idle;
    const phase = this.#state.phase;
    if (idle !== this.#state.idle) this.#enqueue(() => this.#feed({ type: 'idle', idle }));
    else if (phase === 'verifying') this.#enqueue(() => this.#feed(node.loggedIn ? { type: 'logged-in' } : { type: 'tick' }));
  }

  // ---- commands ----------------------------------------------------------

  async #onCommand(name: string, payload: Buffer, retained: boolean): Promise<void> {
    if (retained) {
      // A retained command would run again at every reconnect: never act on one.
      this.#log.warn({ command: name }, 'retained MQTT command ignored (publish commands without the retain flag)');
      return;
    }
    let response: CommandResponse;
    let id: string | null = null;
    try {
      const request = decodeCommand(name, payload);
      id = request.id;
      if (!isCommandName(name)) throw new PartylineError('ERR_CONTROL_UNKNOWN_COMMAND', `unknown command ${name}`);
      if (this.#inFlight >= MAX_COMMANDS_IN_FLIGHT) throw new PartylineError('ERR_BUSY', `${MAX_COMMANDS_IN_FLIGHT} commands are running; try again`);
      this.#inFlight++;
      try {
        const result = await runCommand(name, request.args, {
          controls: () => this.#o.host.node.controls,
          logLevels: this.#o.logLevels,
          reboot: () => setImmediate(() => this.#enqueue(() => this.#reboot())),
        });
        response = { id, ok: true, result: result ?? null };
      } finally {
        this.#inFlight--;
      }
    } catch (err) {
      id ??= commandErrorId(err);
      const code = err instanceof PartylineError ? err.code : 'ERR_INTERNAL';
      response = { id, ok: false, error: { code, message: errorMessage(err) } };
      this.#log.info({ command: name, id, code }, 'MQTT command failed');
    }
    this.#client?.publish(this.#topics.response(name), encodeResponse(response), { qos: 1 });
  }

  async #reboot(): Promise<void> {
    this.#log.info('reboot requested over MQTT: restarting the node');
    try {
      await this.#o.host.restart(await this.#o.reload());
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'reboot failed');
    }
  }

  // ---- info, events, telemetry -----------------------------------------

  #publishInfo(force: boolean): void {
    const client = this.#client;
    if (!client?.connected) return;
    let body: string;
    try {
      const status = this.#o.host.node.status();
      body = JSON.stringify(buildInfo(status, { firmware: this.#o.firmware, name: this.#o.host.config.node.name, applied: this.#state.applied, pending: this.status().pending, startedAt: this.#startedAt }));
    } catch (err) {
      this.#log.debug({ err: errorMessage(err) }, 'info not available (node restarting)');
      return;
    }
    if (!force && body === this.#lastInfo) return;
    this.#lastInfo = body;
    client.publish(this.#topics.info, body, { qos: 1, retain: true });
  }

  #onCall(view: CallView | null): void {
    const key = view ? `${view.id}:${view.state}` : 'idle';
    if (key === this.#lastCall) return;
    this.#lastCall = key;
    this.#publishEvent('call', view ? { state: view.state, id: view.id, peer: view.peer, direction: view.direction, path: view.path } : { state: 'idle' });
    // Hanging up may make the phone idle: a configuration waiting for it goes now.
    this.#poll();
  }

  #publishEvent(kind: string, body: Record<string, unknown>): void {
    try {
      if (kind === 'hook') this.#poll();
      if (!this.#client?.connected) return;
      this.#client.publish(this.#topics.event(kind), JSON.stringify({ ...body, at: new Date(this.#now()).toISOString() }), { qos: 0 });
    } catch (err) {
      this.#log.warn({ kind, err: errorMessage(err) }, 'cannot publish an event');
    }
  }

  async #publishTelemetry(): Promise<void> {
    const client = this.#client;
    if (!client?.connected) return;
    const machine = await readMachineFigures(this.#capabilities).catch((err: unknown) => {
      this.#log.debug({ err: errorMessage(err) }, 'machine figures not available');
      return null;
    });
    try {
      const message = buildTelemetry(this.#o.host.node.status(), machine, process.memoryUsage.rss(), new Date(this.#now()));
      client.publish(this.#topics.telemetry, JSON.stringify(message), { qos: 0 });
    } catch (err) {
      this.#log.debug({ err: errorMessage(err) }, 'telemetry not available (node restarting)');
    }
  }

  #every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.#timers.push(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
