/**
 * STUN server and client over real UDP sockets on loopback. 127.0.0.2 serves
 * as the server's second IP address (Linux routes all of 127/8 to lo).
 */
import type { RemoteInfo } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { TimeoutError } from '../../src/errors.js';
import { StunClient, stunBinding } from '../../src/nat/stun/client.js';
import { StunErrorResponseError } from '../../src/nat/stun/errors.js';
import { isStunPacket } from '../../src/nat/stun/message.js';
import { StunServer, createStunHandler } from '../../src/nat/stun/server.js';
import { canBind, closeSocket, openUdpSockets, udpSocket } from './udp.js';

const secondIp = await canBind('127.0.0.2');

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function server(options: Partial<ConstructorParameters<typeof StunServer>[0]> = {}): Promise<StunServer> {
  const s = new StunServer({ address: '127.0.0.1', port: 0, ...options });
  await s.start();
  cleanups.push(() => s.stop());
  return s;
}

async function socket(address = '127.0.0.1') {
  const s = await udpSocket(address);
  cleanups.push(() => closeSocket(s));
  return s;
}

describe('STUN server and client over UDP', () => {
  it('answers a Binding request with the socket address and RFC 5780 attributes', async () => {
    const srv = await server({ alternatePort: 0 });
    const { primary, 'alternate-port': alt } = srv.endpoints;
    const client = await socket();
    const result = await stunBinding(client, primary!);
    expect(result.mapped).toEqual({ address: '127.0.0.1', port: client.address().port });
    expect(result.source).toEqual(primary);
    expect(result.responseOrigin).toEqual(primary);
    expect(result.otherAddress).toEqual(alt);
    expect(result.software).toBe('partyline');
    expect(client.listenerCount('message')).toBe(0); // the temporary listener is gone
  });

  it('honours change-port from the second port, and refuses change-IP with 420 without a second IP', async () => {
    const srv = await server({ alternatePort: 0 });
    const client = await socket();
    const changed = await stunBinding(client, srv.endpoints.primary!, { changePort: true });
    expect(changed.source).toEqual(srv.endpoints['alternate-port']);
    expect(changed.responseOrigin).toEqual(srv.endpoints['alternate-port']);
    expect(changed.mapped.port).toBe(client.address().port);
    const refused = await stunBinding(client, srv.endpoints.primary!, { changeIp: true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StunErrorResponseError);
    expect(refused).toMatchObject({ errorCode: 420, unknownAttributes: [0x0003] });
  });

  it.skipIf(!secondIp)('honours change-IP and change-IP+port with a second address (the full RFC 5780 layout)', async () => {
    const srv = await server({ alternatePort: 0, alternateAddress: '127.0.0.2' });
    const e = srv.endpoints;
    expect(e['alternate-ip']).toEqual({ address: '127.0.0.2', port: e.primary!.port });
    expect(e['alternate-both']).toEqual({ address: '127.0.0.2', port: e['alternate-port']!.port });
    const client = await socket();
    const [plain, ip, both] = await Promise.all([
      stunBinding(client, e.primary!),
      stunBinding(client, e.primary!, { changeIp: true }),
      stunBinding(client, e.primary!, { changeIp: true, changePort: true }),
    ]);
    expect(plain.otherAddress).toEqual(e['alternate-both']);
    expect(ip.source).toEqual(e['alternate-ip']);
    expect(both.source).toEqual(e['alternate-both']);
    for (const r of [plain, ip, both]) expect(r.mapped).toEqual({ address: '127.0.0.1', port: client.address().port });
    // A request sent to the alternate IP is answered from there, with OTHER-ADDRESS pointing back.
    const fromAlt = await stunBinding(client, e['alternate-both']!);
    expect(fromAlt.source).toEqual(e['alternate-both']);
    expect(fromAlt.otherAddress).toEqual(e.primary);
  });

  it('times out against a silent port with the configured schedule', async () => {
    const silent = await socket();
    const client = await socket();
    const err = await stunBinding(client, { address: '127.0.0.1', port: silent.address().port }, { timeoutMs: 120, rtoMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toMatch(/no answer within 120 ms \(3 transmissions\)/);
  });

  it('shares one socket with RTP: the owner feeds STUN to its responder and client, the rest to the media path', async () => {
    // Two "phones", each with one media socket carrying STUN both ways and RTP.
    const phones = await Promise.all([socket(), socket()]);
    const rtp: Array<Array<Buffer>> = [[], []];
    const fed = phones.map((s) => new StunClient({ send: (data, to) => s.send(data, to.port, to.address) }));
    phones.forEach((s, i) => {
      const respond = createStunHandler({ address: '127.0.0.1', port: s.address().port });
      s.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
        if (!isStunPacket(msg)) return void rtp[i]!.push(msg);
        if (fed[i]!.handleStunPacket(msg, rinfo)) return;
        respond(msg, rinfo, (data, to) => s.send(data, to.port, to.address));
      });
    });
    const [a, b] = phones as [typeof phones[0], typeof phones[0]];
    const rtpPacket = Buffer.from([0x80, 0x6f, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1]);
    a.send(rtpPacket, b.address().port, '127.0.0.1');
    const [fromB, fromA] = await Promise.all([
      fed[0]!.binding({ address: '127.0.0.1', port: b.address().port }),
      fed[1]!.binding({ address: '127.0.0.1', port: a.address().port }),
    ]);
    expect(fromB.mapped).toEqual({ address: '127.0.0.1', port: a.address().port });
    expect(fromA.mapped).toEqual({ address: '127.0.0.1', port: b.address().port });
    await expect.poll(() => rtp[1]!.length).toBe(1);
    expect(rtp[1]![0]).toEqual(rtpPacket);
    expect(rtp[0]).toEqual([]);
  });

  it('starts and stops idempotently and leaves no socket behind', async () => {
    await expect.poll(openUdpSockets).toBe(0);
    const srv = new StunServer({ address: '127.0.0.1', port: 0, alternatePort: 0, ...(secondIp ? { alternateAddress: '127.0.0.2' } : {}) });
    await srv.stop(); // before start: harmless
    await Promise.all([srv.start(), srv.start()]);
    expect(openUdpSockets()).toBe(secondIp ? 4 : 2);
    const port = srv.endpoints.primary!.port;
    await Promise.all([srv.stop(), srv.stop()]);
    await srv.stop();
    expect(srv.endpoints).toEqual({});
    // libuv releases a closed socket's handle a moment after the close callback.
    await expect.poll(openUdpSockets).toBe(0);
    // The port is free again, and the server can start anew.
    await closeSocket(await udpSocket('127.0.0.1', port));
    await srv.start();
    expect(srv.endpoints.primary).toBeDefined();
    await srv.stop();
    await expect.poll(openUdpSockets).toBe(0);
  });

  it('fails to start on a taken port with a typed error and closes what it opened', async () => {
    const taken = await socket();
    await expect.poll(openUdpSockets).toBe(1);
    const srv = new StunServer({ address: '127.0.0.1', port: 0, alternatePort: taken.address().port });
    await expect(srv.start()).rejects.toMatchObject({ code: 'ERR_STUN_BIND' });
    await expect.poll(openUdpSockets).toBe(1);
    await srv.stop();
  });

  it('refuses a configuration with host names or a wildcard alternate address', () => {
    expect(() => new StunServer({ address: 'localhost', port: 0 })).toThrow(expect.objectContaining({ code: 'ERR_STUN_CONFIG' }));
    expect(() => new StunServer({ address: '127.0.0.1', port: 0, alternateAddress: '0.0.0.0' })).toThrow(expect.objectContaining({ code: 'ERR_STUN_CONFIG' }));
  });
});
