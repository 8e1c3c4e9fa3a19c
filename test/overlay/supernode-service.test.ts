import { afterEach, describe, expect, it } from 'vitest';
import { issueCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import { LinkServer, dialLink } from '../../src/link/transport.js';
import { HostCache } from '../../src/overlay/host-cache.js';
import { Attach } from '../../src/overlay/messages.js';
import { SupernodePeers } from '../../src/overlay/supernode-peers.js';
import { SupernodeService } from '../../src/overlay/supernode-service.js';
import { LoginTunnelRelay } from '../../src/overlay/tunnel.js';
import { memoryLogger } from '../helpers/log.js';

const loginKey = generateSigningKeyPair();
const supernode = generateIdentity();
const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

function credentialFor(device: Identity, user: string, ttlMs = 3_600_000): Credential {
  const now = Date.now();
  return issueCredential({ user, deviceId: device.deviceId, deviceKey: device.signing.publicKey.toString('base64'), noiseKey: device.noise.publicKey.toString('base64'), network: 'lab', issued: now, expires: now + ttlMs }, loginKey);
}

async function startSupernode(options: { maxNodes?: number; attachTimeoutMs?: number; trust?: boolean } = {}) {
  const mem = memoryLogger();
  const peers = new SupernodePeers({
    identity: supernode, network: 'lab', log: mem.log, credential: () => undefined, self: () => ({ address: '127.0.0.1:1' }),
    hostCache: new HostCache(), onHostCacheChange: () => undefined, peerLinks: 4, keepAliveS: 60,
  });
  const service = new SupernodeService({
    network: 'lab', log: mem.log, loginServerKey: options.trust === false ? undefined : loginKey.publicKey, keepAliveS: 60,
    attachTimeoutMs: options.attachTimeoutMs ?? 2000, maxNodes: options.maxNodes ?? 100, peers, self: () => ({ address: '127.0.0.1:1' }),
    tunnels: new LoginTunnelRelay({ loginServer: undefined, log: mem.log }),
  });
  service.start();
  const server = new LinkServer({ identity: supernode, network: 'lab', role: 'supernode', log: mem.log, host: '127.0.0.1', port: 0, onLink: (pl) => service.accept(pl) });
  await server.start();
  stops.push(() => server.stop(), () => service.stop());
  return { service, port: server.port, mem };
}

async function attach(port: number, device: Identity, credential: Credential) {
  const { link } = await dialLink({ identity: device, network: 'lab', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port });
  stops.push(() => link.close());
  return { link, answer: await link.request(Attach, { credential: { ...credential } }) };
}

describe('SupernodeService', () => {
  it('attaches a node with a valid credential and reports what it saw', async () => {
    const { service, port } = await startSupernode();
    const device = generateIdentity();
    const { answer } = await attach(port, device, credentialFor(device, 'alice'));
    expect(answer).toMatchObject({ keepAliveS: 60, user: 'alice', observed: expect.stringMatching(/^127\.0\.0\.1:\d+$/), supernodes: [{ address: '127.0.0.1:1' }] });
    expect(service.attachedNodes().map((n) => n.user)).toEqual(['alice']);
  });

  it('refuses nodes beyond maxNodes with ERR_ATTACH_FULL and keeps the others', async () => {
    const { service, port } = await startSupernode({ maxNodes: 1 });
    const a = generateIdentity();
    const b = generateIdentity();
    const first = await attach(port, a, credentialFor(a, 'alice'));
    await expect(attach(port, b, credentialFor(b, 'bob'))).rejects.toMatchObject({ code: 'ERR_ATTACH_FULL' });
    expect(service.attachedCount).toBe(1);
    await expect(first.link.ping()).resolves.toBeGreaterThan(0);
  });

  it('accepts a renewed credential on the same link', async () => {
    const { service, port } = await startSupernode();
    const device = generateIdentity();
    const { link } = await attach(port, device, credentialFor(device, 'alice', 60_000));
    const renewed = credentialFor(device, 'alice', 7_200_000);
    await link.request(Attach, { credential: { ...renewed } });
    expect(service.attachedCount).toBe(1);
    expect(service.attachedNodes()[0]!.expires).toBe(renewed.expires);
  });

  it('without a trust anchor it refuses every credential, clearly', async () => {
    const { port } = await startSupernode({ trust: false });
    const device = generateIdentity();
    await expect(attach(port, device, credentialFor(device, 'alice'))).rejects.toMatchObject({ code: 'ERR_ATTACH_NO_TRUST', message: expect.stringContaining('network.loginServer.publicKey') });
  });

  it('drops a link that shows no credential within the attach timeout', async () => {
    const { port, mem } = await startSupernode({ attachTimeoutMs: 200 });
    const { link } = await dialLink({ identity: generateIdentity(), network: 'lab', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port });
    await new Promise((r) => link.once('close', r));
    expect(mem.lines().some((l) => l.msg === 'dropping link: no credential in time')).toBe(true);
  });

  it('tells attached nodes where to go when it stops', async () => {
    const { service, port } = await startSupernode();
    const device = generateIdentity();
    const { link } = await attach(port, device, credentialFor(device, 'alice'));
    const { Leaving } = await import('../../src/overlay/messages.js');
    const leaving = new Promise<unknown>((r) => link.onNotice(Leaving, r));
    service.stop();
    expect(await leaving).toEqual({ supernodes: [] });
  });
});

describe('SupernodeService against hostile peers', () => {
  it('does not take a logged-in node for a supernode just because it says so', async () => {
    const { service, port } = await startSupernode();
    const mallory = generateIdentity();
    const { link } = await dialLink({ identity: mallory, network: 'lab', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port });
    stops.push(() => link.close());
    const closed = new Promise<Error | undefined>((r) => link.once('close', r));
    // Claims a supernode at an address that is not where it comes from (and where nobody with its key listens).
    await link.request(Attach, { credential: { ...credentialFor(mallory, 'mallory') }, supernode: { address: '127.0.0.1:9', publicKey: Buffer.alloc(32, 1).toString('base64') } });
    await closed;
    expect(service.attachedCount).toBe(0);
  });

  it('refuses supernode hints with duplicate extra ports at the schema', async () => {
    const { supernodeInfo } = await import('../../src/overlay/messages.js');
    expect(supernodeInfo.safeParse({ address: '10.0.0.1:4000', altPorts: [443, 443] }).success).toBe(false);
    expect(supernodeInfo.safeParse({ address: '10.0.0.1:4000', altPorts: [443, 80] }).success).toBe(true);
  });
});
