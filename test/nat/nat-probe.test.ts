/**
 * `classifyNat` over real UDP on loopback: STUN server A (127.0.0.1, with a
 * second port and — where the host allows — a second address 127.0.0.2) and
 * server B (127.0.0.3). Loopback itself is "open"; the NAT types come from a
 * user-space NAT (fake-nat.ts) between the client and the sockets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import type { NatBehaviour, NatType } from '../../src/nat/classify.js';
import { classifyNat } from '../../src/nat/nat-probe.js';
import { StunClient } from '../../src/nat/stun/client.js';
import { StunServer } from '../../src/nat/stun/server.js';
import type { StunServerOptions } from '../../src/nat/stun/server.js';
import type { TransportAddress } from '../../src/nat/stun/address.js';
import { FakeNat } from './fake-nat.js';
import { canBind, closeSocket, openUdpSockets, udpSocket } from './udp.js';

const manyAddresses = (await canBind('127.0.0.2')) && (await canBind('127.0.0.3'));

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function server(options: Partial<StunServerOptions> = {}): Promise<TransportAddress> {
  const s = new StunServer({ address: '127.0.0.1', port: 0, ...options });
  await s.start();
  cleanups.push(() => s.stop());
  return s.endpoints.primary!;
}

/** A client behind a FakeNat; its own (inside) address is 10.0.0.2:5000. */
function behindNat(mapping: NatBehaviour, filtering: NatBehaviour): StunClient {
  let client: StunClient | undefined = undefined;
  const nat = new FakeNat(mapping, filtering, (msg, rinfo) => client?.handleStunPacket(msg, rinfo));
  client = new StunClient({ send: (data, to) => nat.send(data, to) });
  cleanups.push(async () => {
    client?.close();
    await nat.close();
  });
  return client;
}
const INSIDE = [{ address: '10.0.0.2', port: 5000 }];
const EI: NatBehaviour = 'endpoint-independent';
const AD: NatBehaviour = 'address-dependent';
const APD: NatBehaviour = 'address-and-port-dependent';
const TIMEOUT = 300;

describe('classifyNat on loopback', () => {
  it('finds loopback open, before any test has to time out', async () => {
    const a = await server({ alternatePort: 0 });
    const socket = await udpSocket('127.0.0.1');
    cleanups.push(() => closeSocket(socket));
    const result = await classifyNat({ socket, servers: [a], timeoutMs: 5_000 });
    expect(result).toMatchObject({ type: 'open', mapping: EI, publicAddress: { address: '127.0.0.1', port: socket.address().port } });
    expect(result.publicAddress).toEqual({ address: '127.0.0.1', port: socket.address().port });
    // Settled by the answers, not by the 5 s deadline.
    expect(result.durationMs).toBeLessThan(2_500);
    expect(socket.listenerCount('message')).toBe(0);
  });

  it.skipIf(!manyAddresses)('finds loopback open with the full RFC 5780 server and B, filtering proven endpoint-independent', async () => {
    const a = await server({ alternatePort: 0, alternateAddress: '127.0.0.2' });
    const b = await server({ address: '127.0.0.3' });
    const result = await classifyNat({ bindAddress: '127.0.0.1', servers: [a, b], timeoutMs: 5_000 });
    expect(result).toMatchObject({ type: 'open', mapping: EI, filtering: EI });
    expect(result.durationMs).toBeLessThan(2_500);
    expect(result.results.changeIpAndPort).toMatchObject({ status: 'ok' });
    await expect.poll(openUdpSockets).toBe(5); // A's four sockets and B's: classifyNat closed its own
  });

  // With B present the mapping test towards A's other port is skipped (see nat-probe.ts), so a
  // dependent mapping is found (the type is symmetric) without telling address from address-and-port.
  it.skipIf(!manyAddresses).each([
    [EI, EI, 'full-cone', EI, EI],
    [EI, AD, 'restricted', EI, AD],
    [EI, APD, 'port-restricted', EI, APD],
    [AD, APD, 'symmetric', 'unknown', APD],
    [APD, APD, 'symmetric', 'unknown', APD],
    [APD, EI, 'symmetric', 'unknown', EI],
  ] as Array<[NatBehaviour, NatBehaviour, NatType, NatBehaviour | 'unknown', NatBehaviour]>)(
    'behind a NAT with %s mapping and %s filtering: %s',
    async (mapping, filtering, type, expectedMapping, expectedFiltering) => {
      const a = await server({ alternatePort: 0, alternateAddress: '127.0.0.2' });
      const b = await server({ address: '127.0.0.3' });
      const result = await classifyNat({ client: behindNat(mapping, filtering), servers: [a, b], localAddresses: INSIDE, timeoutMs: TIMEOUT });
      expect(result).toMatchObject({ type, mapping: expectedMapping, filtering: expectedFiltering });
      expect(result.publicAddress?.address).toBe('127.0.0.1');
      expect(result.publicAddress?.port).not.toBe(5000);
    },
  );

  it.skipIf(!manyAddresses)('with a single-address A (second port only) and B: cone NATs get the most restrictive filtering still possible', async () => {
    const a = await server({ alternatePort: 0 });
    const b = await server({ address: '127.0.0.3' });
    const full = await classifyNat({ client: behindNat(EI, EI), servers: [a, b], localAddresses: INSIDE, timeoutMs: TIMEOUT });
    expect(full).toMatchObject({ type: 'restricted', mapping: EI, filtering: 'unknown' });
    expect(full.reason).toMatch(/change-IP test was not possible/);
    const portRestricted = await classifyNat({ client: behindNat(EI, APD), servers: [a, b], localAddresses: INSIDE, timeoutMs: TIMEOUT });
    expect(portRestricted).toMatchObject({ type: 'port-restricted', mapping: EI, filtering: APD });
    const symmetric = await classifyNat({ client: behindNat(APD, APD), servers: [a, b], localAddresses: INSIDE, timeoutMs: TIMEOUT });
    expect(symmetric).toMatchObject({ type: 'symmetric', mapping: 'unknown' });
  });

  it('with A alone and no alternates, a NAT is unknown; no answer at all is udp-blocked', async () => {
    const a = await server();
    expect(await classifyNat({ client: behindNat(EI, EI), servers: [a], localAddresses: INSIDE, timeoutMs: TIMEOUT })).toMatchObject({
      type: 'unknown',
      mapping: 'unknown',
    });
    const silent = await udpSocket('127.0.0.1');
    cleanups.push(() => closeSocket(silent));
    const blocked = await classifyNat({ bindAddress: '127.0.0.1', servers: [{ address: '127.0.0.1', port: silent.address().port }], timeoutMs: 150 });
    expect(blocked).toMatchObject({ type: 'udp-blocked', mapping: 'unknown', filtering: 'unknown' });
    expect(blocked.publicAddress).toBeUndefined();
  });

  it('can be aborted, and leaves no socket of its own behind', async () => {
    const silent = await udpSocket('127.0.0.1');
    cleanups.push(() => closeSocket(silent));
    await expect.poll(openUdpSockets).toBe(1);
    const controller = new AbortController();
    const running = classifyNat({ bindAddress: '127.0.0.1', servers: [{ address: '127.0.0.1', port: silent.address().port }], timeoutMs: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(running).rejects.toThrow(AbortedError);
    await expect.poll(openUdpSockets).toBe(1);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(1);
  });
});
