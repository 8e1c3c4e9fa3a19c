import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import type { Link } from '../../src/link/link.js';
import { LinkServer, dialLink } from '../../src/link/transport.js';
import { TunnelOpen } from '../../src/overlay/messages.js';
import { LoginTunnelRelay, openLoginTunnel } from '../../src/overlay/tunnel.js';
import { until } from '../helpers/until.js';
import { memoryLogger } from '../helpers/log.js';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/**
 * A stand-in login server (a TCP listener that keeps what it accepts), a
 * supernode relaying login tunnels to it (at most two per link), and a
 * node's link to that supernode.
 */
async function tunnelLab(): Promise<{ accepted: Socket[]; relay: LoginTunnelRelay; link: Link }> {
  const accepted: Socket[] = [];
  const login = createServer((s) => accepted.push(s));
  await new Promise<void>((r) => login.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => {
    for (const s of accepted) s.destroy();
    login.close(() => r());
  }));
  const relay = new LoginTunnelRelay({ loginServer: { host: '127.0.0.1', port: (login.address() as AddressInfo).port }, log: memoryLogger().log, maxPerLink: 2 });
  const server = new LinkServer({ identity: generateIdentity(), network: 'lab', role: 'supernode', log: memoryLogger().log, host: '127.0.0.1', port: 0, onLink: ({ link }) => relay.serve(link) });
  await server.start();
  stops.push(() => server.stop());
  const { link } = await dialLink({ identity: generateIdentity(), network: 'lab', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port: server.port });
  stops.push(() => link.close());
  return { accepted, relay, link };
}

describe('LoginTunnelRelay limits', () => {
  it('opens at most maxPerLink tunnels even when asked for many at once', async () => {
    const { accepted, relay, link } = await tunnelLab();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => link.request(TunnelOpen, { target: 'login' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.code === 'ERR_TUNNEL_LIMIT')).toBe(true);
    expect(relay.openTunnels).toBe(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(accepted.length).toBe(2);
  });

  it('lets go of a tunnel as soon as the stream through it ends (a link over it closed cleanly)', async () => {
    const { accepted, relay, link } = await tunnelLab();
    for (let i = 0; i < 3; i++) {
      // More tunnels one after the other than the per-link limit: each must be gone before the next.
      const stream = await openLoginTunnel(link, { timeoutMs: 2_000 });
      expect(relay.openTunnels).toBe(1);
      stream.end();
      await until('tunnel released', async () => relay.openTunnels === 0, 2_000);
    }
    await until('login-server side closed', async () => accepted.every((s) => s.destroyed || s.readableEnded), 2_000);
  });
});
