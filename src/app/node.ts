import { z } from 'zod';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { decodePublicKey } from '../config/formats.js';
import { readPasswordFromConfig } from '../config/password-file.js';
import { ControlRegistry } from '../control/registry.js';
import { ControlServer } from '../control/server.js';
import type { NodeRole, StatusReport } from '../control/status.js';

import type { Config } from '../config/schema.js';
import { loadOrCreateIdentity } from '../crypto/identity.js';
import type { Identity } from '../crypto/identity.js';
import { PartylineError, errorMessage } from '../errors.js';
import { LinkServer } from '../link/transport.js';
import type { PeerLink } from '../link/transport.js';
import type { LinkHandlers } from '../link/link.js';
import { CredentialKeeper } from '../overlay/credential-keeper.js';
import { isFinalLoginError } from '../overlay/credential-keeper.js';
import type { HostCache } from '../overlay/host-cache.js';
import { HostCacheSaver, loadHostCache } from '../overlay/host-cache-store.js';
import type { SupernodeInfo } from '../overlay/messages.js';
import { OverlayClient } from '../overlay/overlay-client.js';
import { SupernodePeers } from '../overlay/supernode-peers.js';
import { SupernodeService } from '../overlay/supernode-service.js';
import { LoginTunnelRelay } from '../overlay/tunnel.js';
import { classifyNat } from '../nat/nat-probe.js';
import { IndexService } from '../overlay/index/index-service.js';
import { NodeIndexPublish, NodeIndexSearch, RECORD_REFRESH_MS } from '../overlay/index/node-messages.js';
import type { NodeIndexSearchResponse } from '../overlay/index/node-messages.js';
import { nextSeq, signLocationRecord } from '../overlay/index/record.js';
import { DirectoryLookup } from '../login/messages.js';
import { dialLink } from '../link/transport.js';
import { UdpEndpoint } from '../nat/udp-endpoint.js';
import { RouteForward } from '../overlay/route/messages.js';
import { Messenger } from '../overlay/route/messenger.js';
import { Router } from '../overlay/route/router.js';
import { PathService } from '../nat/path/path-service.js';
import { MailboxService } from '../overlay/im/mailbox-service.js';
import { MAX_TEXT_LENGTH } from '../overlay/im/history.js';
import { PhoneSocial } from '../overlay/presence/phone-social.js';
import { PresenceService } from '../overlay/presence/presence-service.js';
import { SETTABLE_PRESENCE_STATES } from '../overlay/presence/state.js';
import type { SettablePresence } from '../overlay/presence/state.js';
import type { ProbeReport } from '../nat/path/path-service.js';
import { defaultHostAddresses } from '../nat/path/path-service.js';
import { verifyCredential } from '../crypto/credential.js';
import type { Link } from '../link/link.js';
import type { PeerDevice } from '../overlay/route/messenger.js';
import { CallManager } from '../call/call-manager.js';
import { SystemCapabilitySource, ipOf } from '../overlay/promotion/capabilities.js';
import { PROBE_DEFAULT_BYTES, ReachbackProber, probeThroughSupernode } from '../overlay/promotion/reachback.js';
import { MdnsDiscovery } from '../overlay/discovery/mdns.js';
import { LoginServer } from '../login/server.js';
import { SUPERNODE_POLICIES } from '../config/schema.js';
import { PromotionManager } from './promotion-manager.js';
import type { PromotionManagerStatus } from './promotion-manager.js';
import { PhoneApp } from '../phone/phone-app.js';
import { TonePlayer } from '../phone/tone-player.js';
import { openAudioDevice } from '../../hal/audio/index.js';
import { openKeypad, SimKeypad } from '../../hal/keypad/index.js';
import type { Keypad, KeypadSpec } from '../../hal/keypad/index.js';
import { openHookSwitch, openLeds, SimHookSwitch } from '../../hal/gpio/index.js';
import { AudioRinger, SimRinger } from '../../hal/ringer/index.js';
import type { Ringer } from '../../hal/ringer/index.js';
import { ringCadence } from '../../hal/tones/index.js';
import type { HookSwitch, Leds } from '../../hal/gpio/index.js';
import type { AudioDevice } from '../../hal/audio/types.js';
import type { PhoneStatus, ToneName } from '../phone/phone-app.js';
import type { CallLogEntry, CallView } from '../call/call-manager.js';
import type { CallMedia } from '../call/media.js';
import { MediaEngine } from '../media/engine/engine.js';
import type { AudioSpec } from '../media/engine/engine.js';
import { nodeRelayOps } from '../nat/path/relay-ops.js';
import { RelayService, attachedVia, relayLimitsFromConfig } from '../relay/service.js';
import { componentLogger } from '../system/logging.js';
import type { Logger } from '../system/logging.js';
import { formatHostPort, normalizeHostPort, parseHostPort } from '../util/host-port.js';
import { removeStaleTemporaries } from '../util/atomic-file.js';
import { randomPort, readNodeState, writeNodeState } from './node-state.js';

export const HOST_CACHE_FILE = 'host-cache.json';
/** NAT filters forget a flow after 30 s to a few minutes; our own probes must be forgotten before we probe again. */
const NAT_RECHECK_MIN_MS = 4 * 60_000;

export type { NodeRole } from '../control/status.js';

/** What a node embedded in another gets beyond its configuration (the sound-test service). */
export interface NodeExtras {
  /** Audio instead of hal.audio (the echo driver). */
  audio?: AudioSpec;
  /** Answer incoming calls after this many ms. */
  autoAnswerMs?: number;
  /** Fields added to `status()` by what runs beside the node (provisioning). */
  statusExtras?: () => Record<string, unknown>;
}

/** What a node tells what runs beside it (MQTT events): the handset and the call. Listeners must not throw. */
export interface NodeEvents {
  hook: ['off' | 'on'];
  call: [CallView | null];
}

/** LED pattern of a phone with no account: the power LED blinks slowly until it is provisioned. */
export const AWAITING_PROVISIONING_LEDS = { power: 'blink-slow' } as const;

/** What `ctl status` shows: the control API's StatusReport plus overlay details. */
export interface NodeStatus extends StatusReport {
  network: string;
  port: number;
  overlay: { state: string; lastError: string | null; alternates: string[] };
  credential: { expires: string; via: string | null } | null;
  nat: { type: string; publicAddress: string | null; reason?: string | null; checkedAt?: string | null };
  /** A phone that promoted itself: its supernode side (own port and device key). */
  promoted?: { address: string | null; since: string; attachedNodes: number; peers: number };
  /** Supernodes only. */
  attachedNodes?: number;
  peers?: number;
  /** Phones: the call now (null: none). */
  call?: CallView | null;
  /** Supernodes running the sound-test service: its account and whether it is logged in. */
  soundTest?: { user: string; loggedIn: boolean; call: CallView | null };
  /** Supernodes only: what the media relay carries. */
  relay?: { allocations: number; udpLegs: number; tcpLegs: number; packetsRelayed: number; bytesRelayed: number; dropped: number };
}

/**
 * A Partyline node: the one place that wires components together
 * (STYLE.md 3). An ordinary node attaches to a supernode through its
 * OverlayClient; a supernode (policy `always`; `auto` promotion comes later)
 * serves nodes, peers with other supernodes and relays login tunnels.
 */
export class PartylineNode {
  readonly config: Config;
  #log: Logger;
  #identity: Identity | undefined;
  #servers: LinkServer[] = [];
  #startedAt = 0;
  #hostCache: HostCache | undefined;
  #saver: HostCacheSaver | undefined;
  #credentials: CredentialKeeper | undefined;
  #overlay: OverlayClient | undefined;
  #peers: SupernodePeers | undefined;
  #service: SupernodeService | undefined;
  #loginTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #control: ControlServer | undefined;
  #udp: UdpEndpoint | undefined;
  #nat: NodeStatus['nat'] = { type: 'unknown', publicAddress: null, reason: 'not classified yet', checkedAt: null };
  #natTimer: NodeJS.Timeout | undefined;
  #classifying = false;
  #natCheckedAt = 0;
  #index: IndexService | undefined;
  #recordSeq: number | undefined;
  #publishTimer: NodeJS.Timeout | undefined;
  #router: Router | undefined;
  #messenger: Messenger | undefined;
  #paths: PathService | undefined;
  #relay: RelayService | undefined;
  #social: PhoneSocial | undefined;
  #socialTimer: NodeJS.Timeout | undefined;
  #presence: PresenceService | undefined;
  #mailbox: MailboxService | undefined;
  #calls: CallManager | undefined;
  #promotion: PromotionManager | undefined;
  /** The supernode side of a phone that promoted itself: a supernode node in this process, on its own port and key. */
  #promoted: PartylineNode | undefined;
  #promotedSince = 0;
  #prober: ReachbackProber | undefined;
  #mdns: MdnsDiscovery | undefined;
  #loginServer: LoginServer | undefined;
  #advertiseWarned = false;
  #phone: PhoneApp | undefined;
  #tones: TonePlayer | undefined;
  #hal: { keypad: Keypad; hook: HookSwitch; leds: Leds; ringer: Ringer; faults: string[] } | undefined;
  #soundTest: PartylineNode | undefined;
  #extras: NodeExtras;
  /** Control commands: served on the Unix socket, and later to MQTT and the terminal UI. */
  readonly controls: ControlRegistry;
  /** Handset and call changes (phones), for provisioning's `event/<kind>` topics. */
  readonly events = new EventEmitter<NodeEvents>();

  constructor(config: Config, log: Logger, extras: NodeExtras = {}) {
    this.config = config;
    this.#log = log;
    this.#extras = extras;
    this.controls = new ControlRegistry({ log: componentLogger(log, 'control') });
    this.controls.register('status', { args: z.object({}).strict(), describe: 'node status', handler: () => this.status() });
    this.controls.register('search', {
      args: z.object({ user: z.string().min(1).max(64) }).strict(),
      describe: 'find a user in the network (global index, then the login server)',
      handler: (args) => this.search(args.user),
    });
    this.controls.register('probe', {
      args: z.object({ user: z.string().min(1).max(64), seconds: z.number().min(0.2).max(20).optional() }).strict(),
      describe: 'set up a media path to a user and measure it: {path, rttMs, lossPct, candidates}',
      handler: (args) => this.probe(args.user, args.seconds),
    });
    this.#registerSocialControls();
    this.#registerCallControls();
  }

  get role(): NodeRole {
    return this.config.supernode.policy === 'always' ? 'supernode' : 'ordinary';
  }

  get identity(): Identity {
    if (!this.#identity) throw new PartylineError('ERR_NOT_STARTED', 'node not started');
    return this.#identity;
  }

  get port(): number {
    return this.#servers[0]?.port ?? 0;
  }

  get overlay(): OverlayClient | undefined {
    return this.#overlay;
  }

  /** Sealed messages to and from other devices (ordinary nodes with a login server key). */
  get messenger(): Messenger | undefined {
    return this.#messenger;
  }

  /** No call, and the handset down with nothing dialled (a node without a phone is always idle): when provisioning may restart it. */
  get idle(): boolean {
    if (this.#calls?.view()) return false;
    return this.#phone === undefined || this.#phone.status().state === 'idle';
  }

  get loggedIn(): boolean {
    const credential = this.#credentials?.current();
    if (!credential) return false;
    return this.role === 'supernode' ? true : this.#overlay?.state === 'attached';
  }

  async start(): Promise<void> {
    const { stateDir } = this.config.node;
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const leftovers = await removeStaleTemporaries(stateDir);
    if (leftovers.length > 0) this.#log.info({ files: leftovers }, 'removed temporary files an interrupted write left behind');
    const { identity, created } = await loadOrCreateIdentity(stateDir);
    this.#identity = identity;
    if (created) this.#log.info({ deviceId: identity.deviceId, stateDir }, 'device identity created');
    this.#startedAt = Date.now();

    await this.#openHostCache();
    if (this.config.loginServer.enabled) await this.#startLoginServer();
    this.#credentials = this.#credentialKeeper(identity);
    await this.#credentials.load();

    if (this.role === 'supernode') await this.#startSupernode(identity);
    else await this.#startOrdinary(identity);
    this.#startPromotionChecks();
    this.#control = new ControlServer({ path: this.config.node.control, registry: this.controls, log: componentLogger(this.#log, 'control') });
    await this.#control.start();
    this.#log.info({ deviceId: identity.deviceId, role: this.role, port: this.port, network: this.config.network.name, hostCache: this.#hostCache?.size }, 'node started');
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#loginTimer);
    clearInterval(this.#natTimer);
    clearInterval(this.#publishTimer);
    await this.#promotion?.stop();
    // A promoted phone's supernode side hands over first, while this phone is still attached elsewhere.
    await this.#stopPromoted('shutting down');
    await this.#mdns?.stop();
    await this.#handOver();
    await this.#soundTest?.stop().catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'stopping the sound-test service failed'));
    await this.#calls?.close().catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'ending calls failed'));
    await this.#tones?.close();
    await Promise.all([this.#hal?.keypad.close(), this.#hal?.hook.close(), this.#hal?.leds.close(), this.#hal?.ringer.close()]).catch(() => undefined);
    await this.#stopSocial();
    this.#messenger?.close();
    this.#paths?.stop();
    await this.#control?.stop();
    this.#index?.stop();
    // Reverse order of start: tell nodes and peers, then close the listeners, then flush state.
    this.#relay?.stop();
    this.#service?.stop();
    this.#peers?.stop();
    await this.#overlay?.stop();
    await Promise.all(this.#servers.map((s) => s.stop()));
    this.#servers = [];
    await this.#udp?.stop();
    await this.#saver?.stop();
    await this.#loginServer?.stop();
    this.#log.info('node stopped');
  }

  status(): NodeStatus {
    const credential = this.#credentials?.current();
    const attached = this.#overlay?.supernode;
    const status: NodeStatus = {
      user: this.#credentials?.user ?? null,
      deviceId: this.identity.deviceId,
      role: this.role,
      loggedIn: this.loggedIn,
      supernode: attached ? { address: attached.address, rttMs: Math.round(attached.rttMs * 100) / 100 } : null,
      hostCache: { size: this.#hostCache?.size ?? 0 },
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
      network: this.config.network.name,
      port: this.port,
      overlay: {
        state: this.role === 'supernode' ? 'serving' : !this.config.account.user ? 'awaiting-provisioning' : this.#overlay?.state ?? 'stopped',
        lastError: this.#overlay?.lastError ?? null,
        alternates: this.#overlay?.alternates.map((a) => a.address) ?? [],
      },
      credential: credential ? { expires: new Date(credential.expires).toISOString(), via: this.#credentials?.lastPath ?? null } : null,
      nat: { ...this.#nat },
    };
    if (this.role === 'ordinary') status.call = this.#calls?.view() ?? null;
    if (this.#phone) {
      const phone: PhoneStatus & { tone: ToneName | null; ringer: boolean } = { ...this.#phone.status(), tone: this.#tones?.playing ?? null, ringer: this.#hal?.ringer.state === 'ringing' };
      if (this.#hal?.faults.length) Object.assign(phone, { halFaults: [...this.#hal.faults] });
      status.phone = phone;
    }
    if (this.#hal) status.leds = this.#hal.leds.state();
    if (this.#extras.statusExtras) Object.assign(status, this.#extras.statusExtras());
    if (this.#soundTest) {
      const inner = this.#soundTest;
      status.soundTest = { user: this.config.supernode.soundTest.user ?? '', loggedIn: inner.loggedIn, call: inner.#calls?.view() ?? null };
    }
    if (this.#promotion) status.promotion = this.#promotion.status() satisfies PromotionManagerStatus;
    const promoted = this.#promoted;
    if (promoted) {
      status.role = 'supernode';
      status.promoted = {
        address: promoted.#selfInfo(promoted.identity)?.address ?? null,
        since: new Date(this.#promotedSince).toISOString(),
        attachedNodes: promoted.#service?.attachedCount ?? 0,
        peers: promoted.#peers?.size ?? 0,
      };
    }
    if (this.#service) status.attachedNodes = this.#service.attachedCount;
    if (this.#relay) status.relay = this.#relay.stats();
    if (this.#peers) status.peers = this.#peers.size;
    return status;
  }

  /** Look a user up: an ordinary node asks its supernode; a supernode asks the index itself. */
  async search(user: string): Promise<NodeIndexSearchResponse> {
    if (this.#index) return this.#index.answerSearch(user);
    const link = this.#overlay?.link;
    if (!link) throw new PartylineError('ERR_NOT_ATTACHED', 'not attached to a supernode: cannot search now');
    return link.request(NodeIndexSearch, { user }, { timeoutMs: 10_000 });
  }

  /** `ctl probe`: a media path to the user's newest device, measured for `seconds`. */
  async probe(user: string, seconds = 2): Promise<ProbeReport> {
    if (!this.#paths) throw new PartylineError('ERR_NOT_AVAILABLE', this.role === 'supernode' ? 'probe runs on phones, not on supernodes' : 'media paths need network.loginServer.publicKey (to check peers)');
    if (this.#overlay?.state !== 'attached') throw new PartylineError('ERR_NOT_ATTACHED', 'not attached to a supernode: cannot probe now');
    return this.#paths.probe(user, { durationMs: Math.round(seconds * 1000) });
  }

  /** A phone dialled this one directly: take sealed messages from it if its credential checks out. */
  #acceptDirect({ link, peer }: PeerLink): void {
    const { publicKey } = this.config.network.loginServer;
    const loginServerKey = publicKey ? decodePublicKey(publicKey) : undefined;
    const messenger = this.#messenger;
    if (!messenger || !loginServerKey || peer.role !== 'node') {
      link.close();
      return;
    }
    try {
      const credential = verifyCredential(peer.credential, { loginServerKey, network: this.config.network.name, now: Date.now(), noiseKey: link.channel.remoteStaticKey });
      messenger.serveDirect(link, { user: credential.user, deviceId: credential.deviceId });
      this.#log.debug({ user: credential.user, deviceId: credential.deviceId }, 'direct link from a phone');
    } catch (err) {
      this.#log.info({ deviceId: peer.deviceId, err: errorMessage(err) }, 'direct link refused');
      link.close();
    }
  }

  /** Dial a phone directly at the addresses of its record, pinning its certified Noise key (IK); the first to connect wins. */
  async #dialDirect(device: PeerDevice, timeoutMs: number): Promise<Link> {
    const identity = this.identity;
    const controller = new AbortController();
    const attempts = device.addresses.slice(0, 4).map(async (address) => {
      const { host, port } = parseHostPort(address);
      const { link } = await dialLink({
        identity,
        network: this.config.network.name,
        role: 'node',
        credential: () => this.#credentials?.current(),
        log: componentLogger(this.#log, 'link'),
        host,
        port,
        remoteStaticKey: device.noiseKey,
        connectTimeoutMs: timeoutMs,
        handshakeTimeoutMs: timeoutMs,
        signal: controller.signal,
      });
      return link;
    });
    try {
      const link = await Promise.any(attempts);
      controller.abort();
      // Another attempt may have connected too: keep one.
      for (const other of attempts) other.then((l) => l !== link && l.close(), () => undefined);
      return link;
    } catch {
      throw new PartylineError('ERR_NO_DIRECT_LINK', `no direct link to ${device.user}/${device.deviceId} at ${device.addresses.join(', ')}`);
    }
  }

  /** Publish this device's signed location record through its supernode (after attaching, then every 30 min). */
  #publishRecord(): void {
    const link = this.#overlay?.link;
    const attached = this.#overlay?.supernode;
    const credential = this.#credentials?.current();
    if (!link || !attached || !credential || !this.#identity) return;
    const now = Date.now();
    this.#recordSeq = nextSeq(this.#recordSeq, now);
    const { listen } = this.config.node;
    // Where other phones may dial this one directly: the public address, and the listen address or (listening on all) the interfaces'.
    const local = listen === '0.0.0.0' ? defaultHostAddresses().map((host) => formatHostPort({ host, port: this.port })) : [formatHostPort({ host: listen, port: this.port })];
    const addresses = [this.#nat.publicAddress, ...local]
      .filter((a): a is string => a !== null && !a.startsWith('0.0.0.0') && !a.startsWith('::'))
      .filter((a, i, all) => all.indexOf(a) === i);
    const record = signLocationRecord(
      { user: credential.user, device: { deviceId: this.#identity.deviceId, supernode: attached.advertised, addresses, since: attached.since }, seq: this.#recordSeq, issued: now },
      credential,
      this.#identity.signing,
    );
    link.request(NodeIndexPublish, { record: { ...record } }, { timeoutMs: 10_000 }).then(
      (answer) => this.#log.debug({ replicas: answer.replicas }, 'location record published'),
      (err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'cannot publish the location record'),
    );
  }

  async #openHostCache(): Promise<void> {
    const path = join(this.config.node.stateDir, HOST_CACHE_FILE);
    const now = Date.now();
    const { cache, warnings } = await loadHostCache(path, { now, capacity: this.config.network.hostCacheSize });
    for (const warning of warnings) this.#log.warn({ path, warning }, 'host cache');
    const seeded = cache.seed(this.config.network.bootstrap, now);
    this.#hostCache = cache;
    this.#saver = new HostCacheSaver({
      path,
      cache,
      intervalMs: 5_000,
      onError: (err) => this.#log.warn({ path, err: errorMessage(err) }, 'cannot save the host cache'),
    });
    if (seeded.length > 0) this.#saver.schedule();
  }

  #credentialKeeper(identity: Identity): CredentialKeeper {
    const { loginServer } = this.config.network;
    const key = loginServer.publicKey ? decodePublicKey(loginServer.publicKey) : undefined;
    if (!key) this.#log.warn('network.loginServer.publicKey is not set: this node cannot check or obtain credentials');
    return new CredentialKeeper({
      identity,
      network: this.config.network.name,
      stateDir: this.config.node.stateDir,
      log: componentLogger(this.#log, 'login'),
      user: this.config.account.user,
      password: () => readPasswordFromConfig(this.config),
      loginServer: loginServer.address ? parseHostPort(loginServer.address) : undefined,
      loginServerKey: key ? Buffer.from(key) : undefined,
    });
  }

  async #startOrdinary(identity: Identity): Promise<void> {
    // Phones listen for direct signalling links from other phones (calls on the same LAN or between public addresses).
    await this.#listen(identity, [], (peerLink) => this.#acceptDirect(peerLink));
    this.#udp = await this.#openUdp();
    this.#overlay = new OverlayClient({
      identity,
      network: this.config.network.name,
      log: componentLogger(this.#log, 'overlay'),
      hostCache: this.#hostCache!,
      onHostCacheChange: () => this.#saver?.schedule(),
      credentials: this.#credentials!,
      keepAliveS: this.config.network.keepAliveS,
    });
    // Classify the NAT whenever the node (re-)attaches, and every 5 minutes (DESIGN.md "Joining the network", step 4).
    const { publicKey } = this.config.network.loginServer;
    const loginServerKey = publicKey ? decodePublicKey(publicKey) : undefined;
    if (loginServerKey) {
      const overlay = this.#overlay;
      this.#messenger = new Messenger({
        identity,
        network: this.config.network.name,
        loginServerKey,
        credential: () => this.#credentials?.current(),
        link: () => overlay.link,
        search: (user) => this.search(user),
        log: componentLogger(this.#log, 'messages'),
        dialDirect: (device, timeoutMs) => this.#dialDirect(device, timeoutMs),
        selfSupernode: () => overlay.supernode?.advertised,
      });
      this.#paths = new PathService({
        udp: this.#udp,
        messenger: this.#messenger,
        log: componentLogger(this.#log, 'path'),
        publicAddress: () => this.#nat.publicAddress,
        udpBlocked: () => this.#nat.type === 'udp-blocked',
        callPath: (session, from) => this.#calls?.callPath(session, from),
        relay: nodeRelayOps({
          identity,
          network: this.config.network.name,
          credential: () => this.#credentials?.current(),
          link: () => overlay.link,
          supernode: () => overlay.supernode?.advertised,
          udp: this.#udp,
          log: componentLogger(this.#log, 'relay'),
        }),
      });
    }
    this.#startCalls();
    this.#overlay.on('attached', () => {
      const link = this.#overlay?.link;
      if (link) this.#messenger?.serve(link);
      this.#classifyNat();
      this.#publishRecord();
    });
    this.#publishTimer = setInterval(() => this.#publishRecord(), RECORD_REFRESH_MS);
    this.#publishTimer.unref();
    this.#natTimer = setInterval(() => this.#classifyNat(), 5 * 60_000);
    this.#natTimer.unref();
    await this.#startPhoneSocial(identity);
    this.#browseForSupernodes();
    if (!this.config.account.user) {
      this.#log.info('no account configured (account.user): waiting for provisioning');
      this.#hal ??= this.#openHal();
      for (const [name, state] of Object.entries(AWAITING_PROVISIONING_LEDS)) this.#hal.leds.set(name, state);
      return;
    }
    this.#overlay.start();
  }

  async #startSupernode(identity: Identity): Promise<void> {
    const log = componentLogger(this.#log, 'supernode');
    const { loginServer } = this.config.network;
    const key = loginServer.publicKey ? decodePublicKey(loginServer.publicKey) : undefined;
    // Known once the listener is bound.
    const advertised: { info?: SupernodeInfo } = {};
    this.#peers = new SupernodePeers({
      identity,
      network: this.config.network.name,
      log,
      credential: () => this.#credentials?.current(),
      self: () => advertised.info,
      hostCache: this.#hostCache!,
      onHostCacheChange: () => this.#saver?.schedule(),
      peerLinks: this.config.supernode.peerLinks,
      keepAliveS: this.config.network.keepAliveS,
      onStunDelegate: (packet, client) => this.#udp?.answerOnBehalf(packet, { address: client.host, port: client.port }),
      onPeer: (info) => {
        this.#index?.contactsFromPeers([info]);
        // A new supernode (one that just promoted itself, say): tell attached nodes soon, not at the next 30 s gossip.
        this.#service?.gossipSoon();
      },
    });
    this.#prober = new ReachbackProber({ log: componentLogger(log, 'reachback') });
    this.#service = new SupernodeService({
      network: this.config.network.name,
      log,
      loginServerKey: key ? Buffer.from(key) : undefined,
      keepAliveS: this.config.network.keepAliveS,
      attachTimeoutMs: this.config.supernode.attachTimeoutS * 1000,
      maxNodes: this.config.supernode.maxNodes,
      peers: this.#peers,
      self: () => advertised.info,
      tunnels: new LoginTunnelRelay({ loginServer: loginServer.address ? parseHostPort(loginServer.address) : undefined, log }),
      indexLinks: (peerLink) => (this.#index ? this.#index.accept(peerLink) : peerLink.link.close()),
      onNodeAttached: (link, credential) => {
        this.#prober?.serveNode(link);
        this.#index?.serveNode(link, credential);
        this.#router?.serveNode(link, credential);
        this.#presence?.serveNode(link, credential);
        this.#mailbox?.serveNode(link, credential);
      },
    });
    const service = this.#service;
    this.#router = new Router({
      log,
      self: () => advertised.info?.address,
      attached: (deviceId) => service.attachedDevice(deviceId),
      toSupernode: async (address, body) => {
        if (!this.#index) throw new PartylineError('ERR_ROUTE_UNREACHABLE', 'this supernode runs no index: it has no links to other supernodes');
        const index = this.#index;
        // An unknown supernode is dialled only when the recipient's own signed record names it.
        const mayDial = async (): Promise<boolean> => {
          const found = await index.search(body.to.user);
          return found.records.some((r) => r.device.deviceId === body.to.deviceId && normalizeHostPort(r.device.supernode) === normalizeHostPort(address));
        };
        return index.requestSupernode(address, RouteForward, body, { timeoutMs: 3_000, mayDial });
      },
    });
    this.#service.start();
    await this.#listen(identity, this.config.supernode.ports, (peerLink) => this.#service!.accept(peerLink), this.#service.handlers);
    advertised.info = this.#selfInfo(identity);
    this.#udp = await this.#openUdp(advertised.info ? parseHostPort(advertised.info.address).host : this.config.node.listen);
    this.#startRelay(log, () => advertised.info?.address);
    if (advertised.info && key) this.#startIndex(identity, advertised.info.address, Buffer.from(key));
    else log.warn('global index not started: it needs an advertised address and network.loginServer.publicKey');
    if (!advertised.info) log.warn('supernode.advertise is not set and node.listen is not a specific address: other supernodes cannot be told where this one is');
    this.#peers.start();
    this.#announce(advertised.info);
    this.#loginLoop(1000);
    if (advertised.info) await this.#startSoundTest(advertised.info.address);
    else if (this.config.supernode.soundTest.user) log.warn('sound-test service not started: it needs the supernode\'s advertised address');
  }

  /**
   * The sound-test service (supernode.soundTest): a phone inside this
   * process, logged in as the service account through this supernode,
   * that answers every call and plays the caller's audio back after
   * `delayMs` (the echo audio driver).
   */
  async #startSoundTest(address: string): Promise<void> {
    const settings = this.config.supernode.soundTest;
    if (!settings.user) return;
    const dir = join(this.config.node.stateDir, 'sound-test');
    const config: Config = {
      ...this.config,
      node: { ...this.config.node, stateDir: dir, port: 0, control: join(dir, 'control.sock') },
      network: { ...this.config.network, bootstrap: [address], mdns: false },
      account: {
        user: settings.user,
        ...(settings.password !== undefined ? { password: settings.password } : {}),
        ...(settings.passwordFile !== undefined ? { passwordFile: settings.passwordFile } : {}),
      },
      supernode: { ...this.config.supernode, policy: 'never', ports: [], soundTest: { delayMs: settings.delayMs } },
      calls: { ...this.config.calls, autoAnswer: true },
      loginServer: { ...this.config.loginServer, enabled: false },
    };
    const inner = new PartylineNode(config, componentLogger(this.#log, 'sound-test'), {
      audio: { driver: 'echo', sampleRate: this.config.hal.audio.sampleRate, delayMs: settings.delayMs },
      autoAnswerMs: 300,
    });
    try {
      await inner.start();
      this.#soundTest = inner;
      this.#log.info({ user: settings.user }, 'sound-test service started');
    } catch (err) {
      this.#log.error({ user: settings.user, err: errorMessage(err) }, 'cannot start the sound-test service');
      await inner.stop().catch(() => undefined);
    }
  }

  /** Media relay for attached nodes (and peers they call) on this supernode's UDP port and links. */
  #startRelay(log: Logger, address: () => string | undefined): void {
    const service = this.#service!;
    const udp = this.#udp;
    this.#relay = new RelayService({
      log: componentLogger(log, 'relay'),
      limits: relayLimitsFromConfig(this.config.supernode),
      attached: attachedVia(service),
      admitRelayOnly: (link) => {
        const credential = service.admitWithoutAttach(link);
        return { user: credential.user, deviceId: credential.deviceId };
      },
      ...(udp ? { udp } : {}),
      // The UDP port has the TCP port's number, on the advertised host.
      udpAddress: () => {
        const advertised = address();
        return advertised && udp ? formatHostPort({ host: parseHostPort(advertised).host, port: udp.port }) : null;
      },
      tcpAddress: address,
    });
    this.#relay.register(service.handlers);
    this.#relay.start();
  }

  /** The supernode's share of the global index (DESIGN.md "Supernode tier and global index"). */
  #startIndex(identity: Identity, address: string, loginServerKey: Buffer): void {
    const { loginServer } = this.config.network;
    this.#index = new IndexService({
      identity,
      network: this.config.network.name,
      address,
      loginServerKey,
      credential: () => this.#credentials?.current(),
      log: componentLogger(this.#log, 'index'),
      seeds: () => this.#peers?.list(20) ?? [],
      serveLink: (link) => {
        this.#router?.serveSupernode(link);
        this.#presence?.serveSupernode(link);
        this.#mailbox?.serveSupernode(link);
      },
      k: this.config.supernode.indexReplicas,
      presence: (user, holders) => this.#presence ? this.#presence.presenceOf(user, holders) : Promise.resolve(new Map()),
      ...(loginServer.address ? { fallback: (user: string) => this.#directoryLookup(user) } : {}),
    });
    this.#index.start();
    this.#startSocialSupernode(address, loginServerKey);
    this.#index.contactsFromPeers(this.#peers?.list(20) ?? []);
  }

  /** Presence and held messages on a supernode: both live with the index (the supernodes responsible for a user). */
  #startSocialSupernode(address: string, loginServerKey: Buffer): void {
    const index = this.#index!;
    const service = this.#service!;
    const log = componentLogger(this.#log, 'presence');
    this.#presence = new PresenceService({ index, network: this.config.network.name, loginServerKey, self: () => address, log });
    const presence = this.#presence;
    this.#mailbox = new MailboxService({
      index,
      presence,
      self: () => address,
      attached: (deviceId) => service.attachedDevice(deviceId),
      log: componentLogger(this.#log, 'mailbox'),
    });
    this.#presence.start();
    this.#mailbox.start();
  }

  /** Buddies, presence and instant messages on a phone (needs the login server key, like the Messenger). */
  async #startPhoneSocial(identity: Identity): Promise<void> {
    const messenger = this.#messenger;
    const overlay = this.#overlay;
    const { publicKey, address } = this.config.network.loginServer;
    const loginServerKey = publicKey ? decodePublicKey(publicKey) : undefined;
    if (!messenger || !overlay || !loginServerKey) return;
    this.#social = new PhoneSocial({
      identity,
      network: this.config.network.name,
      loginServerKey,
      loginServer: address ? parseHostPort(address) : undefined,
      stateDir: this.config.node.stateDir,
      user: this.config.account.user,
      credential: () => this.#credentials?.current(),
      attachment: () => {
        const link = overlay.link;
        const attached = overlay.supernode;
        return link && attached ? { link, supernode: attached.advertised } : undefined;
      },
      messenger,
      log: componentLogger(this.#log, 'social'),
    });
    const social = this.#social;
    await social.start();
    overlay.on('attached', () => {
      const link = overlay.link;
      if (link) social.attached(link).catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'presence and held messages after attaching failed'));
    });
    // A presence update lives as long as a record is considered fresh: sign it again with every record refresh.
    this.#socialTimer = setInterval(() => {
      social.presence.refresh().catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'presence refresh failed'));
    }, RECORD_REFRESH_MS);
    this.#socialTimer.unref();
  }

  async #stopSocial(): Promise<void> {
    clearInterval(this.#socialTimer);
    this.#presence?.stop();
    this.#mailbox?.stop();
    await this.#social?.stop().catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'saying goodbye failed'));
  }

  /** Set this phone's presence (`in-call` comes from the call layer); it reaches online buddies through the supernodes. */
  setPresence(state: SettablePresence): Promise<void> {
    return this.#phoneSocial().setPresence(state);
  }

  #phoneSocial(): PhoneSocial {
    if (this.#social) return this.#social;
    throw new PartylineError('ERR_NOT_AVAILABLE', this.role === 'supernode' ? 'buddies, presence and messages are for phones, not supernodes' : 'buddies and messages need network.loginServer.publicKey');
  }

  /** `ctl buddies`, `ctl buddy add|remove`, `ctl message`, `ctl messages`, `ctl presence`. */
  #registerSocialControls(): void {
    const user = z.string().min(1).max(64);
    this.controls.register('buddies', {
      args: z.object({}).strict(),
      describe: 'the buddy list (kept by the login server) with presence: [{user, online, presence}]',
      handler: () => this.#phoneSocial().buddyList(),
    });
    this.controls.register('buddy.add', {
      args: z.object({ user }).strict(),
      describe: 'add a user to the buddy list',
      handler: (args) => this.#phoneSocial().addBuddy(args.user),
    });
    this.controls.register('buddy.remove', {
      args: z.object({ user }).strict(),
      describe: 'remove a user from the buddy list',
      handler: (args) => this.#phoneSocial().removeBuddy(args.user),
    });
    this.controls.register('message', {
      args: z.object({ user, text: z.string().min(1).max(MAX_TEXT_LENGTH) }).strict(),
      describe: 'send an instant message to every device of a user (held for offline ones): {id, to, devices, delivered, held}',
      handler: (args) => this.#phoneSocial().send(args.user, args.text),
    });
    this.controls.register('messages', {
      args: z.object({}).strict(),
      describe: 'instant messages received and sent: [{id, direction, from, to, time, text, delivered}]',
      handler: () => this.#phoneSocial().list(),
    });
    this.controls.register('presence', {
      args: z.object({ state: z.enum(SETTABLE_PRESENCE_STATES).optional() }).strict(),
      describe: 'show or set this phone\'s presence (online, in-call): {state}',
      handler: async (args) => {
        const social = this.#phoneSocial();
        if (args.state) await social.setPresence(args.state);
        return { state: social.presence.state };
      },
    });
  }

  /**
   * Supernode promotion (`ctl status` → `promotion`; src/app/promotion-manager.ts):
   * checks every `supernode.checkIntervalS`, the reach-back and bandwidth
   * probe through the current supernode, and the role switch — a phone
   * that promotes keeps being a phone and starts its supernode side beside
   * it (#promote); demotion hands that side's nodes and records over.
   */
  #startPromotionChecks(): void {
    this.#promotion = new PromotionManager({
      settings: () => this.config.supernode,
      log: componentLogger(this.#log, 'promotion'),
      capabilities: new SystemCapabilitySource(),
      nat: () => ({ type: this.#nat.type, publicAddress: this.#nat.publicAddress }),
      uptimeS: () => (Date.now() - this.#startedAt) / 1000,
      fixedSupernode: this.role === 'supernode',
      probe: (signal) => this.#probeReachback(signal),
      promote: () => this.#promote(),
      demote: (reason) => this.#stopPromoted(reason),
    });
    this.#promotion.start();
    this.controls.register('promotion', {
      args: z.object({ policy: z.enum(SUPERNODE_POLICIES).optional() }).strict(),
      describe: 'promotion status; with a policy (auto, never, always), set it for this run and check at once',
      handler: async (args) => {
        const promotion = this.#promotion!;
        return args.policy ? promotion.setPolicy(args.policy) : promotion.status();
      },
    });
  }

  /** The port a promoted phone serves on: supernode.port, else the phone's port + 1. */
  #supernodePort(): number {
    return this.config.supernode.port || this.port + 1;
  }

  #probeReachback(signal: AbortSignal): ReturnType<typeof probeThroughSupernode> | undefined {
    const link = this.#overlay?.link;
    const attached = this.#overlay?.supernode;
    if (!link || !attached) return undefined;
    return probeThroughSupernode({
      link,
      supernode: attached.address,
      host: this.config.node.listen,
      port: this.#supernodePort(),
      bytes: PROBE_DEFAULT_BYTES,
      log: componentLogger(this.#log, 'promotion'),
      signal,
    });
  }

  /**
   * Become a supernode while staying a phone: a supernode node in this
   * process (its own device key and state under <stateDir>/supernode, the
   * same account, port #supernodePort at the public address), joining the
   * supernodes this phone knows; its peers add it to their host caches and
   * pass it on to their nodes.
   */
  async #promote(): Promise<void> {
    if (this.#promoted || this.#stopped) return;
    const publicIp = this.#nat.publicAddress ? ipOf(this.#nat.publicAddress) : undefined;
    if (!publicIp) throw new PartylineError('ERR_PROMOTE', 'no public address known');
    const port = this.#supernodePort();
    const dir = join(this.config.node.stateDir, 'supernode');
    const known = this.#hostCache?.best(20, Date.now()).map((e) => e.address) ?? [];
    const attached = this.#overlay?.supernode?.address;
    const bootstrap = [...new Set([...(attached ? [attached] : []), ...known, ...this.config.network.bootstrap])];
    const config: Config = {
      ...this.config,
      node: { ...this.config.node, stateDir: dir, port, control: join(dir, 'control.sock') },
      network: { ...this.config.network, bootstrap },
      supernode: { ...this.config.supernode, policy: 'always', advertise: formatHostPort({ host: publicIp, port }), soundTest: { delayMs: this.config.supernode.soundTest.delayMs } },
      loginServer: { ...this.config.loginServer, enabled: false },
    };
    const inner = new PartylineNode(config, componentLogger(this.#log, 'supernode-side'));
    try {
      await inner.start();
    } catch (err) {
      await inner.stop().catch(() => undefined);
      throw err;
    }
    if (this.#stopped) {
      // The node began stopping while its supernode side started: do not leave it running.
      await inner.stop();
      return;
    }
    this.#promoted = inner;
    this.#promotedSince = Date.now();
  }

  /** Demotion or shutdown: the supernode side hands over its nodes and records, then stops. */
  async #stopPromoted(reason: string): Promise<void> {
    const inner = this.#promoted;
    if (!inner) return;
    this.#promoted = undefined;
    this.#log.info({ reason }, 'supernode side stepping down');
    await inner.stop();
  }

  /**
   * A supernode stepping down (shutdown, demotion): give its index records
   * to the next closest supernodes, then move its attached nodes to other
   * supernodes before their links close — they keep their credentials.
   */
  async #handOver(): Promise<void> {
    if (!this.#service) return;
    await this.#index?.handOver(2_000).catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'index hand-over failed'));
    await this.#service.leave(3_000);
  }

  /** The login server in this process (loginServer.enabled: the supernode box); this node uses it unless network.loginServer says otherwise. */
  async #startLoginServer(): Promise<void> {
    const settings = this.config.loginServer;
    const { host, port } = parseHostPort(settings.listen);
    const server = new LoginServer({
      dataDir: settings.dataDir ?? join(this.config.node.stateDir, 'login'),
      host,
      port,
      network: this.config.network.name,
      credentialTtlMs: Math.round(settings.credentialHours * 3_600_000),
      log: componentLogger(this.#log, 'login-server'),
    });
    await server.start();
    this.#loginServer = server;
    const own = this.config.network.loginServer;
    const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    this.config.network.loginServer = {
      ...own,
      address: own.address ?? formatHostPort({ host: local, port: server.port }),
      publicKey: own.publicKey ?? server.publicKey,
    };
  }

  /** mDNS (network.mdns): a supernode announces itself, and its login server when it runs one. */
  #announce(info: SupernodeInfo | undefined): void {
    if (!this.config.network.mdns || !info) return;
    const mdns = (this.#mdns ??= new MdnsDiscovery({ log: componentLogger(this.#log, 'mdns'), network: this.config.network.name }));
    const name = this.config.node.name ?? `partyline ${this.identity.deviceId.slice(0, 8)}`;
    mdns.announce({ role: 'supernode', network: this.config.network.name, port: parseHostPort(info.address).port, key: this.identity.noise.publicKey.toString('base64'), name });
    if (this.#loginServer) mdns.announce({ role: 'login', network: this.config.network.name, port: this.#loginServer.port, key: this.#loginServer.publicKey, name: `${name} login` });
  }

  /** mDNS: a phone that knows no supernode (empty host cache, no bootstrap) looks for one on the LAN. */
  #browseForSupernodes(): void {
    if (!this.config.network.mdns || (this.#hostCache?.size ?? 0) > 0) return;
    const mdns = (this.#mdns ??= new MdnsDiscovery({ log: componentLogger(this.#log, 'mdns'), network: this.config.network.name }));
    mdns.browse('supernode', (found) => {
      const cache = this.#hostCache;
      if (!cache || this.#stopped) return;
      try {
        const added = cache.add({ address: found.address, publicKey: found.key }, 'mdns', Date.now());
        if (added.status === 'rejected') return;
        this.#log.info({ address: found.address, name: found.name }, 'found a supernode on the LAN (mDNS)');
        this.#saver?.schedule();
        this.#overlay?.retryNow();
      } catch (err) {
        this.#log.debug({ address: found.address, err: errorMessage(err) }, 'ignored an mDNS answer');
      }
    });
  }

  /** Calls on a phone: needs the messenger and media paths (so the login server key). */
  #startCalls(): void {
    const messenger = this.#messenger;
    const paths = this.#paths;
    if (!messenger || !paths) return;
    this.#calls = new CallManager({
      messenger,
      openPath: (device, session) => paths.open(device, { purpose: 'call', session }),
      openMedia: () => this.#openMedia(),
      codec: () => ({ sampleRate: this.config.hal.audio.sampleRate, bitrate: this.config.calls.bitrate, srtpProfile: this.config.calls.srtpProfile, dtx: this.config.calls.dtx }),
      capabilities: () => ({ cores: cpus().length || 1, load: Math.round((loadavg()[0] ?? 0) * 100) / 100, publicAddress: this.#nat.type === 'open', kbps: 0 }),
      log: componentLogger(this.#log, 'call'),
      ringTimeoutS: () => this.config.calls.ringTimeoutS,
      ...(this.#extras.autoAnswerMs !== undefined ? { autoAnswerMs: this.#extras.autoAnswerMs } : this.config.calls.autoAnswer ? { autoAnswerMs: 0 } : {}),
    });
    this.#startPhone(this.#calls);
    // Buddies see "in call" while there is one.
    let inCall = false;
    this.#calls.on('state', (view) => {
      const now = view !== null;
      if (now === inCall || !this.#social) return;
      inCall = now;
      this.#social.setPresence(now ? 'in-call' : 'online').catch((err: unknown) => this.#log.debug({ err: errorMessage(err) }, 'presence not updated'));
    });
  }

  /**
   * The phone application (src/phone/): handset, keypad and LEDs on top of
   * the call layer. With the sim HAL the handset and keys are driven by
   * `ctl hook` and `ctl keys`; tones, ringer and LEDs show in `ctl status`.
   */
  #startPhone(calls: CallManager): void {
    this.#hal = this.#openHal();
    const { leds, ringer } = this.#hal;
    const tones = new TonePlayer({ open: () => this.#toneDevice(), country: () => this.config.phone.toneCountry, log: componentLogger(this.#log, 'phone') });
    this.#tones = tones;
    this.#phone = new PhoneApp(
      {
        calls,
        tone: (name) => tones.play(name),
        ring: (on) => (on ? ringer.start(ringCadence(this.config.phone.toneCountry)) : ringer.stop()),
        led: (name, state) => leds.set(name, state),
        mute: (muted) => calls.setMute(muted),
        volume: (level) => calls.setVolume(level),
        setTimeout: (fn, ms) => setTimeout(fn, ms),
        clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
        log: componentLogger(this.#log, 'phone'),
      },
      () => this.config.phone,
    );
    const phone = this.#phone;
    calls.on('state', (view) => phone.callChanged(view));
    calls.on('ended', (entry) => phone.callEnded(entry));
    calls.on('state', (view) => this.events.emit('call', view));
    const hal = this.#hal!;
    hal.keypad.on('key', (key) => phone.key(key));
    hal.hook.on('off-hook', () => phone.offHook());
    hal.hook.on('on-hook', () => phone.onHook());
    hal.hook.on('off-hook', () => this.events.emit('hook', 'off'));
    hal.hook.on('on-hook', () => this.events.emit('hook', 'on'));
    if (hal.hook.state === 'off-hook') phone.offHook();
  }

  /**
   * The phone's hardware (hal.keypad, hal.hook, hal.leds). A driver that
   * cannot start (no sysfs GPIO, node-hid missing) is named in the log and in
   * `ctl status` (phone.halFaults), and its sim twin stands in, so the phone
   * still serves `ctl` and calls.
   */
  #openHal(): { keypad: Keypad; hook: HookSwitch; leds: Leds; ringer: Ringer; faults: string[] } {
    const { keypad, hook, leds, ringer, audio } = this.config.hal;
    const log = (component: string): Logger => componentLogger(this.#log, component);
    const faults: string[] = [];
    const open = <T>(what: string, real: () => T, sim: () => T): T => {
      try {
        return real();
      } catch (err) {
        faults.push(`${what}: ${errorMessage(err)}`);
        this.#log.error({ err: errorMessage(err) }, `${what} driver failed to start; using the sim driver`);
        return sim();
      }
    };
    return {
      keypad: open('keypad', () => openKeypad(keypad as KeypadSpec, { log: log('keypad') }), () => openKeypad({ driver: 'sim' })),
      hook: open('hook switch', () => openHookSwitch(hook, { log: log('hook') }), () => openHookSwitch({ driver: 'sim' })),
      leds: open('leds', () => openLeds(leds, { log: log('leds') }), () => openLeds({ driver: 'sim' })),
      ringer:
        ringer.driver === 'alsa'
          ? new AudioRinger({
              open: () => openAudioDevice({ driver: 'alsa', sampleRate: audio.sampleRate, device: ringer.device }),
              onError: (err) => this.#log.warn({ err: errorMessage(err) }, 'ringer failed'),
            })
          : new SimRinger(),
      faults,
    };
  }

  /**
   * The handset for tones outside calls (hal.audio). With the sim driver the
   * tones are recorded next to the call recording (`<output>.tones.wav`), so
   * the two writers never share a file.
   */
  #toneDevice(): AudioDevice {
    const audio = this.config.hal.audio;
    if (this.#extras.audio) return openAudioDevice({ driver: 'sim', sampleRate: audio.sampleRate });
    if (audio.driver === 'alsa') return openAudioDevice({ driver: 'alsa', sampleRate: audio.sampleRate, device: audio.device });
    return openAudioDevice({ driver: 'sim', sampleRate: audio.sampleRate, ...(audio.output ? { output: audio.output.replace(/(\.wav)?$/i, '.tones.wav') } : {}) });
  }

  #phoneApp(): PhoneApp {
    if (this.#phone) return this.#phone;
    throw new PartylineError('ERR_NOT_AVAILABLE', this.role === 'supernode' ? 'a supernode has no handset' : 'the phone needs network.loginServer.publicKey (for calls)');
  }

  /** The media engine for one call: a worker thread with the handset audio (hal.audio). */
  async #openMedia(): Promise<CallMedia> {
    const audio = this.config.hal.audio;
    const spec: AudioSpec = this.#extras.audio ?? (audio.driver === 'alsa'
      ? { driver: 'alsa', sampleRate: audio.sampleRate, device: audio.device }
      : { driver: 'sim', sampleRate: audio.sampleRate, ...(audio.input ? { input: audio.input } : {}), ...(audio.output ? { output: audio.output } : {}) });
    return MediaEngine.start({ audio: spec, log: componentLogger(this.#log, 'media') });
  }

  #phoneCalls(): CallManager {
    if (this.#calls) return this.#calls;
    throw new PartylineError('ERR_NOT_AVAILABLE', this.role === 'supernode' ? 'calls are placed and taken by phones, not supernodes' : 'calls need network.loginServer.publicKey (to check peers)');
  }

  /** `ctl call`, `answer`, `hangup`, `hold`, `resume`, `dtmf`, `conference add`, `calls`. */
  #registerCallControls(): void {
    const user = z.string().min(1).max(64);
    const none = z.object({}).strict();
    this.controls.register('call', {
      args: z.object({ user }).strict(),
      describe: 'call a user: rings all of the user\'s devices; returns once one rings (the call as in status)',
      handler: (args) => this.#phoneCalls().call(args.user),
    });
    this.controls.register('answer', { args: none, describe: 'answer the ringing call', handler: () => this.#phoneCalls().answer() });
    this.controls.register('hangup', { args: none, describe: 'end the call, cancel it while it rings out, or decline it while it rings here', handler: () => this.#phoneCalls().hangup() });
    this.controls.register('hold', { args: none, describe: 'put the call on hold (media keeps flowing as silence)', handler: () => this.#phoneCalls().hold(true) });
    this.controls.register('resume', { args: none, describe: 'take the call off hold', handler: () => this.#phoneCalls().hold(false) });
    this.controls.register('dtmf', {
      args: z.object({ digits: z.string().regex(/^[0-9*#A-Da-d]{1,32}$/, 'expected 1-32 of 0-9 * # A-D') }).strict(),
      describe: 'send DTMF digits in the call (RFC 4733 telephone events)',
      handler: (args) => this.#phoneCalls().dtmf(args.digits.toUpperCase()),
    });
    this.controls.register('conference.add', {
      args: z.object({ user }).strict(),
      describe: 'add a user to the call (a conference of up to 6; the most capable party mixes)',
      handler: (args) => this.#phoneCalls().conferenceAdd(args.user),
    });
    this.controls.register('hook', {
      args: z.object({ state: z.enum(['off', 'on']) }).strict(),
      describe: 'lift (off) or replace (on) the handset of the sim HAL: {state, display, ...}',
      handler: (args) => {
        const phone = this.#phoneApp();
        // Through the sim hook switch when that is the driver (the same path as a real one); else straight to the phone.
        const hook = this.#hal?.hook;
        if (hook instanceof SimHookSwitch) {
          if (args.state === 'off') hook.lift();
          else hook.replace();
        } else if (args.state === 'off') phone.offHook();
        else phone.onHook();
        return phone.status();
      },
    });
    this.controls.register('keys', {
      args: z.object({ keys: z.string().regex(/^([0-9*#]+|redial|hold|mute|volume-up|volume-down|speaker|conference)$/, 'expected digits (0-9 * #) or one function key: redial, hold, mute, volume-up, volume-down, speaker, conference') }).strict(),
      describe: 'press keys on the sim keypad: digits, or one function key: {state, display, ...}',
      handler: (args) => {
        const phone = this.#phoneApp();
        const keypad = this.#hal?.keypad;
        const press = (key: string): void => {
          if (keypad instanceof SimKeypad) keypad.press(key);
          else phone.key(key);
        };
        if (/^[0-9*#]+$/.test(args.keys)) for (const key of args.keys) press(key);
        else press(args.keys);
        return phone.status();
      },
    });
    this.controls.register('calls', {
      args: none,
      describe: 'the call log, newest first: [{id, peer, direction, outcome, reason, startedAt, durationS, missed}]',
      handler: (): CallLogEntry[] => this.#phoneCalls().history(),
    });
  }

  /** The login server's last-login record for a user: the index's fallback. */
  async #directoryLookup(user: string): Promise<{ exists: boolean; lastLogin: number | null; lastSupernode: string | null } | undefined> {
    const credential = this.#credentials?.current();
    const address = this.config.network.loginServer.address;
    if (!credential || !address || !this.#identity) return undefined;
    const { host, port } = parseHostPort(address);
    const { link } = await dialLink({ identity: this.#identity, network: this.config.network.name, role: 'supernode', credential: () => credential, log: this.#log, host, port, connectTimeoutMs: 2000 });
    try {
      const answer = await link.request(DirectoryLookup, { user }, { timeoutMs: 5000 });
      return { exists: answer.exists, lastLogin: answer.lastLogin, lastSupernode: answer.lastSupernode };
    } finally {
      link.close();
    }
  }

  /** A supernode logs in like any node (with its service account), directly, retrying until it can. */
  #loginLoop(retryMs: number): void {
    const credentials = this.#credentials!;
    if (this.#stopped || !credentials.canLogin) return;
    if (!credentials.needsRenewal()) {
      this.#loginTimer = setTimeout(() => this.#loginLoop(1000), 60_000);
      this.#loginTimer.unref();
      return;
    }
    credentials.login().then(
      () => {
        if (this.#stopped) return;
        this.#peers?.maintain();
        this.#loginTimer = setTimeout(() => this.#loginLoop(1000), 60_000);
        this.#loginTimer.unref();
      },
      (err: unknown) => {
        if (this.#stopped) return;
        const wait = isFinalLoginError(err) ? 60_000 : Math.min(30_000, retryMs * 2);
        this.#log.warn({ code: (err as PartylineError).code, err: errorMessage(err), retryInMs: wait }, 'supernode login failed');
        this.#loginTimer = setTimeout(() => this.#loginLoop(wait), wait);
        this.#loginTimer.unref();
      },
    );
  }

  /** The node's UDP port: the same number as its TCP port; supernodes answer STUN on it. */
  async #openUdp(stunAdvertise?: string): Promise<UdpEndpoint> {
    const port = this.port;
    const peers = this.#peers;
    const udp = new UdpEndpoint({
      host: this.config.node.listen,
      port,
      log: componentLogger(this.#log, 'udp'),
      ...(stunAdvertise
        ? {
            stunServer: {
              advertise: stunAdvertise,
              alternatePort: this.config.supernode.stunAltPort,
              delegateChangeIp: (request) => peers?.delegateStun(request.packet, { host: request.source.address, port: request.source.port }) ?? false,
            },
          }
        : {}),
    });
    try {
      await udp.start();
    } catch (err) {
      throw new PartylineError('ERR_LISTEN', `cannot bind UDP ${this.config.node.listen}:${port}: ${errorMessage(err)}`, { cause: err });
    }
    return udp;
  }

  /** NAT type and public address, by STUN against the current supernode and an alternate. */
  #classifyNat(): void {
    const overlay = this.#overlay;
    const udp = this.#udp;
    const attached = overlay?.supernode;
    if (!overlay || !udp || !attached || this.#classifying) return;
    // Our own earlier probes leave the NAT's filters open towards the supernodes for a while;
    // classifying again too soon would mistake that for an open filter.
    if (this.#natCheckedAt && Date.now() - this.#natCheckedAt < NAT_RECHECK_MIN_MS) return;
    const servers = [attached.address, ...overlay.alternates.map((a) => a.address)]
      .slice(0, 2)
      .map((a) => {
        const { host, port } = parseHostPort(a);
        return { address: host, port };
      });
    this.#classifying = true;
    classifyNat({ socket: udp.socket, client: udp.client, servers, log: componentLogger(this.#log, 'nat') })
      .then((verdict) => {
        const publicAddress = verdict.publicAddress ? formatHostPort({ host: verdict.publicAddress.address, port: verdict.publicAddress.port }) : null;
        const changed = verdict.type !== this.#nat.type || publicAddress !== this.#nat.publicAddress;
        this.#natCheckedAt = Date.now();
        this.#nat = { type: verdict.type, publicAddress, reason: verdict.reason ?? null, checkedAt: new Date(this.#natCheckedAt).toISOString() };
        const log = changed ? this.#log.info.bind(this.#log) : this.#log.debug.bind(this.#log);
        log({ type: verdict.type, publicAddress, mapping: verdict.mapping, filtering: verdict.filtering, ms: Math.round(verdict.durationMs) }, 'NAT classified');
      })
      .catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'NAT classification failed'))
      .finally(() => {
        this.#classifying = false;
      });
  }

  #selfInfo(identity: Identity): SupernodeInfo | undefined {
    const publicKey = identity.noise.publicKey.toString('base64');
    const altPorts = this.#servers.slice(1).map((s) => s.port);
    const extra = altPorts.length > 0 ? { altPorts } : {};
    if (this.config.supernode.advertise) return { address: this.config.supernode.advertise, publicKey, ...extra };
    const { listen } = this.config.node;
    const specific = (isIPv4(listen) && listen !== '0.0.0.0') || (isIPv6(listen) && listen !== '::');
    if (specific) return { address: formatHostPort({ host: listen, port: this.port }), publicKey, ...extra };
    // Listening on every interface: the first interface address (a LAN box, a server with its public address on eth0).
    const host = defaultHostAddresses()[0];
    if (!host) return undefined;
    if (!this.#advertiseWarned) {
      this.#advertiseWarned = true;
      this.#log.warn({ address: formatHostPort({ host, port: this.port }) }, 'supernode.advertise is not set: advertising the first interface address; set it when others reach this node at another address (a cloud VM behind 1:1 NAT, several interfaces)');
    }
    return { address: formatHostPort({ host, port: this.port }), publicKey, ...extra };
  }

  /** Bind `node.port` (or the port chosen at first start, kept in node.json, or choose one now) and any extra ports. */
  async #listen(identity: Identity, extraPorts: readonly number[], onLink: (peerLink: PeerLink) => void, handlers?: LinkHandlers): Promise<void> {
    const { stateDir, listen } = this.config.node;
    const configured = this.config.node.port;
    const saved = configured === 0 ? await readNodeState(stateDir) : undefined;
    const attempts = configured !== 0 || saved ? 1 : 5;
    const make = (port: number): LinkServer =>
      new LinkServer({
        identity,
        network: this.config.network.name,
        role: this.role === 'supernode' ? 'supernode' : 'node',
        log: componentLogger(this.#log, 'link'),
        host: listen,
        port,
        maxConnections: this.role === 'supernode' ? this.config.supernode.maxNodes + 100 : 64,
        maxPerAddress: this.config.supernode.maxLinksPerAddress,
        ...(handlers ? { link: { handlers } } : {}),
        onLink,
      });
    let lastError: unknown;
    for (let i = 0; i < attempts && this.#servers.length === 0; i++) {
      const port = configured || saved?.port || randomPort();
      const server = make(port);
      try {
        await server.start();
        this.#servers.push(server);
        if (configured === 0 && !saved) await writeNodeState(stateDir, { version: 1, port: server.port });
      } catch (err) {
        lastError = err;
        this.#log.warn({ port, err: errorMessage(err) }, 'cannot listen on port');
      }
    }
    if (this.#servers.length === 0) {
      throw new PartylineError('ERR_LISTEN', `cannot listen on ${listen}: ${errorMessage(lastError)}`, { cause: lastError });
    }
    for (const port of extraPorts) {
      const server = make(port);
      try {
        await server.start();
        this.#servers.push(server);
      } catch (err) {
        this.#log.warn({ port, err: errorMessage(err) }, 'cannot listen on extra supernode port');
      }
    }
  }
}
