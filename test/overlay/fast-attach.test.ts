import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { LinkServer } from '../../src/link/transport.js';
import { raceConnect } from '../../src/overlay/fast-attach.js';
import type { ConnectCandidate } from '../../src/overlay/fast-attach.js';
import { memoryLogger } from '../helpers/log.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const supernode = generateIdentity();

async function liveSupernode(): Promise<number> {
  const server = new LinkServer({ identity: supernode, network: 'lab', role: 'supernode', log: memoryLogger().log, host: '127.0.0.1', port: 0, onLink: () => undefined });
  await server.start();
  cleanups.push(() => server.stop());
  return server.port;
}

/** Accepts TCP and never speaks: the worst kind of stale host-cache entry. */
async function silentPort(): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => r());
  }));
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const port = await silentPort();
  await cleanups.pop()!();
  return port;
}

const candidate = (address: string, ...alt: number[]): ConnectCandidate => {
  const [host, port] = address.split(':');
  return { address, endpoints: [{ host: host!, port: Number(port) }, ...alt.map((p) => ({ host: host!, port: p }))] };
};

describe('raceConnect (parallel fast attach)', () => {
  it('picks the live supernode among refused and silent entries without waiting for the silent ones', async () => {
    const live = await liveSupernode();
    const silent1 = await silentPort();
    const silent2 = await silentPort();
    const refused = await closedPort();
    const failures: string[] = [];
    const result = await raceConnect(
      [candidate(`127.0.0.1:${refused}`), candidate(`127.0.0.1:${silent1}`), candidate(`127.0.0.1:${silent2}`), candidate(`127.0.0.1:${live}`)],
      { identity: generateIdentity(), network: 'lab', log: memoryLogger().log, handshakeTimeoutMs: 10_000, onFailure: (c) => failures.push(c.address) },
    );
    expect(result.candidate.address).toBe(`127.0.0.1:${live}`);
    expect(result.peer.deviceId).toBe(supernode.deviceId);
    // The refused entry was reported; the silent ones were still pending (aborted, not waited for).
    expect(failures).toEqual([`127.0.0.1:${refused}`]);
    result.link.close();
  });

  it('falls back to an extra port (443/80 style) when the primary port is closed', async () => {
    const live = await liveSupernode();
    const refused = await closedPort();
    const result = await raceConnect([candidate(`127.0.0.1:${refused}`, live)], { identity: generateIdentity(), network: 'lab', log: memoryLogger().log });
    expect(result.candidate.address).toBe(`127.0.0.1:${refused}`);
    expect(result.endpoint).toBe(`127.0.0.1:${live}`);
    result.link.close();
  });

  it('tries more candidates than it runs at once, and fails with a clear error when none answers', async () => {
    const refused = await Promise.all([1, 2, 3, 4].map(() => closedPort()));
    const failures: string[] = [];
    const err = await raceConnect(refused.map((p) => candidate(`127.0.0.1:${p}`)), {
      identity: generateIdentity(), network: 'lab', log: memoryLogger().log, parallel: 2, onFailure: (c) => failures.push(c.address),
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NO_SUPERNODE', message: expect.stringContaining('no supernode answered') });
    expect(failures.sort()).toEqual(refused.map((p) => `127.0.0.1:${p}`).sort());
  });

  it('says so when it knows no supernode at all', async () => {
    await expect(raceConnect([], { identity: generateIdentity(), network: 'lab', log: memoryLogger().log })).rejects.toMatchObject({
      code: 'ERR_NO_SUPERNODE',
      message: expect.stringContaining('host cache is empty'),
    });
  });
});
