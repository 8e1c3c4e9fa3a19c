import { issueCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import type { Link } from '../../src/link/link.js';
import { LinkServer, dialLink } from '../../src/link/transport.js';
import { UdpEndpoint } from '../../src/nat/udp-endpoint.js';
import { HostCache } from '../../src/overlay/host-cache.js';
import { Attach } from '../../src/overlay/messages.js';
import { SupernodePeers } from '../../src/overlay/supernode-peers.js';
import { SupernodeService } from '../../src/overlay/supernode-service.js';
import { LoginTunnelRelay } from '../../src/overlay/tunnel.js';
import { RelayService, attachedVia } from '../../src/relay/service.js';
import type { RelayLimits } from '../../src/relay/service.js';
import { memoryLogger } from '../helpers/log.js';

/**
 * A supernode as node.ts builds one, cut to what the relay needs: a
 * SupernodeService whose shared handler table carries the relay's messages,
 * a LinkServer on 127.0.0.1, a UdpEndpoint answering STUN, and the
 * RelayService on both. Everything started is pushed onto `stops`.
 */
export const loginKey = generateSigningKeyPair();
const NETWORK = 'lab';

export function credentialFor(device: Identity, user: string, ttlMs = 3_600_000): Credential {
  const now = Date.now();
  return issueCredential(
    { user, deviceId: device.deviceId, deviceKey: device.signing.publicKey.toString('base64'), noiseKey: device.noise.publicKey.toString('base64'), network: NETWORK, issued: now, expires: now + ttlMs },
    loginKey,
  );
}

export interface RelayHarness {
  relay: RelayService;
  service: SupernodeService;
  udp: UdpEndpoint;
  tcpPort: number;
  udpServer: { address: string; port: number };
  mem: ReturnType<typeof memoryLogger>;
}

export async function startRelay(stops: Array<() => unknown>, options: { limits?: Partial<RelayLimits>; attachTimeoutMs?: number; udp?: boolean } = {}): Promise<RelayHarness> {
  const mem = memoryLogger();
  const identity = generateIdentity();
  const peers = new SupernodePeers({
    identity, network: NETWORK, log: mem.log, credential: () => undefined, self: () => ({ address: '127.0.0.1:1' }),
    hostCache: new HostCache(), onHostCacheChange: () => undefined, peerLinks: 4, keepAliveS: 60,
  });
  const service = new SupernodeService({
    network: NETWORK, log: mem.log, loginServerKey: loginKey.publicKey, keepAliveS: 60, attachTimeoutMs: options.attachTimeoutMs ?? 2000,
    maxNodes: 100, peers, self: () => ({ address: '127.0.0.1:1' }), tunnels: new LoginTunnelRelay({ loginServer: undefined, log: mem.log }),
  });
  service.start();
  const server = new LinkServer({
    identity, network: NETWORK, role: 'supernode', log: mem.log, host: '127.0.0.1', port: 0,
    link: { handlers: service.handlers }, onLink: (pl) => service.accept(pl),
  });
  await server.start();
  const udp = new UdpEndpoint({ host: '127.0.0.1', port: 0, log: mem.log, stunServer: { advertise: '127.0.0.1', alternatePort: 0 } });
  await udp.start();
  const tcpPort = server.port;
  const relay = new RelayService({
    log: mem.log,
    ...(options.limits ? { limits: options.limits } : {}),
    attached: attachedVia(service),
    admitRelayOnly: (link) => service.admitWithoutAttach(link),
    ...(options.udp === false ? {} : { udp }),
    udpAddress: () => `127.0.0.1:${udp.port}`,
    tcpAddress: () => `127.0.0.1:${tcpPort}`,
  });
  relay.register(service.handlers);
  relay.start();
  stops.push(() => udp.stop(), () => server.stop(), () => service.stop(), () => relay.stop());
  return { relay, service, udp, tcpPort, udpServer: { address: '127.0.0.1', port: udp.port }, mem };
}

export interface TestNode {
  identity: Identity;
  credential: Credential;
  link: Link;
}

/** A node attached to the supernode on `port` as `user`. */
export async function attachNode(stops: Array<() => unknown>, port: number, user: string): Promise<TestNode> {
  const identity = generateIdentity();
  const credential = credentialFor(identity, user);
  const { link } = await dialLink({ identity, network: NETWORK, role: 'node', credential: () => credential, log: memoryLogger().log, host: '127.0.0.1', port });
  stops.push(() => link.close());
  await link.request(Attach, { credential: { ...credential } });
  return { identity, credential, link };
}

/** A node's UDP port, as a phone has one. */
export async function nodeUdp(stops: Array<() => unknown>): Promise<UdpEndpoint> {
  const udp = new UdpEndpoint({ host: '127.0.0.1', port: 0, log: memoryLogger().log });
  await udp.start();
  stops.push(() => udp.stop());
  return udp;
}

/** Dial options for a node that is attached elsewhere and comes only for a TCP leg. */
export function dialAs(port: number, user: string | undefined) {
  const identity = generateIdentity();
  const credential = user ? credentialFor(identity, user) : undefined;
  const log = memoryLogger().log;
  return { identity, network: NETWORK, ...(credential ? { credential: () => credential } : {}), log, host: '127.0.0.1', port };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Collect what a leg receives. */
export function collect(leg: { onPacket(handler: (payload: Buffer) => void): void }): Buffer[] {
  const got: Buffer[] = [];
  leg.onPacket((payload) => got.push(Buffer.from(payload)));
  return got;
}
