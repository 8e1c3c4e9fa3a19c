import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { dialLink } from '../../src/link/transport.js';
import { createTransactionId } from '../../src/nat/stun/message.js';
import { encodeChannelBindRequest } from '../../src/relay/channel-bind.js';
import { decodeChannelData, encodeChannelData } from '../../src/relay/channel-data.js';
import { allocate, bindTcp, bindUdp, dialTcpLeg, onRelayClosed, openUdpLeg, release } from '../../src/relay/client.js';
import { RelayAllocate, RelayBind } from '../../src/relay/messages.js';
import { TCP_LEG_MAX_PPS } from '../../src/relay/service.js';
import { memoryLogger } from '../helpers/log.js';
import { until } from '../helpers/until.js';
import { attachNode, collect, dialAs, nodeUdp, sleep, startRelay } from './harness.js';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** A bare UDP socket on loopback (a hostile or confused client). */
async function rawSocket(): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { socket, port: socket.address().port, received };
}

function send(socket: Socket, data: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => socket.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

describe('relay allocation', () => {
  it('refuses a link that has not attached with a valid credential', async () => {
    const { tcpPort, relay } = await startRelay(stops);
    const { link } = await dialLink({ ...dialAs(tcpPort, 'mallory'), role: 'node' });
    stops.push(() => link.close());
    // A credential in the handshake is not an attach: allocations need an attached link.
    await expect(link.request(RelayAllocate, { peer: 'bob', session: 's1' })).rejects.toMatchObject({ code: 'ERR_RELAY_NOT_AUTHENTICATED' });
    expect(relay.stats().allocations).toBe(0);
  });

  it('hands an attached node two legs with their own credentials, the relay addresses and idleS', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call-1');
    expect(a).toMatchObject({ udp: `127.0.0.1:${h.udp.port}`, tcp: `127.0.0.1:${h.tcpPort}`, idleS: 30 });
    expect(a.legs[0].username).not.toBe(a.legs[1].username);
    expect(a.legs[0].key).not.toBe(a.legs[1].key);
    expect(Buffer.from(a.legs[0].key, 'base64').length).toBeGreaterThanOrEqual(16);
    expect(h.relay.stats()).toMatchObject({ allocations: 1, udpLegs: 0, tcpLegs: 0 });
    expect(h.mem.text()).not.toContain(a.legs[0].key);
  });

  it('says udp: null when the supernode relays without UDP', async () => {
    const h = await startRelay(stops, { udp: false });
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    expect((await allocate(alice.link, 'bob', 's')).udp).toBeNull();
  });

  it('enforces the per-user quota and the total, and a release gives the slot back', async () => {
    const h = await startRelay(stops, { limits: { perUserMax: 2, maxAllocations: 3 } });
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const carol = await attachNode(stops, h.tcpPort, 'carol');
    const first = await allocate(alice.link, 'bob', 's1');
    await allocate(alice.link, 'bob', 's2');
    await expect(allocate(alice.link, 'bob', 's3')).rejects.toMatchObject({ code: 'ERR_RELAY_QUOTA' });
    await allocate(carol.link, 'bob', 's4');
    await expect(allocate(carol.link, 'bob', 's5')).rejects.toMatchObject({ code: 'ERR_RELAY_FULL' });
    expect(await release(alice.link, first.allocation)).toBe(true);
    expect(await release(alice.link, first.allocation)).toBe(false);
    await expect(allocate(carol.link, 'bob', 's5')).resolves.toMatchObject({ idleS: 30 });
    expect(h.relay.stats().allocations).toBe(3);
  });

  it('only the allocator may release', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const mallory = await attachNode(stops, h.tcpPort, 'mallory');
    const a = await allocate(alice.link, 'bob', 's');
    expect(await release(mallory.link, a.allocation)).toBe(false);
    expect(h.relay.stats().allocations).toBe(1);
  });
});

describe('relaying', () => {
  it('carries UDP to UDP both ways, with the payload untouched', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const [udpA, udpB] = [await nodeUdp(stops), await nodeUdp(stops)];
    const legA = await openUdpLeg({ udp: udpA, server: h.udpServer, ...a.legs[0] });
    const legB = await openUdpLeg({ udp: udpB, server: h.udpServer, ...a.legs[1] });
    stops.push(() => legA.close(), () => legB.close());
    expect(legA.mapped).toEqual({ address: '127.0.0.1', port: udpA.port });
    const [gotA, gotB] = [collect(legA), collect(legB)];
    for (let i = 0; i < 10; i++) {
      legA.send(Buffer.from(`a->b ${i}`));
      legB.send(Buffer.from(`b->a ${i}`));
    }
    await until('both directions delivered', async () => gotA.length === 10 && gotB.length === 10);
    expect(gotB.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `a->b ${i}`));
    expect(gotA.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `b->a ${i}`));
    expect(h.relay.stats()).toMatchObject({ allocations: 1, udpLegs: 2, tcpLegs: 0, packetsRelayed: 20, bytesRelayed: 20 * 6 });
  });

  it('carries UDP to TCP both ways; the TCP peer is attached elsewhere and its link outlives the attach deadline', async () => {
    const h = await startRelay(stops, { attachTimeoutMs: 300 });
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0] });
    const legB = await dialTcpLeg(dialAs(h.tcpPort, 'bob'), a.legs[1].username, a.legs[1].key);
    stops.push(() => legA.close(), () => legB.close());
    expect(legB.transport).toBe('tcp');
    await sleep(900); // three attach deadlines
    expect(legB.link.closed).toBe(false);
    const [gotA, gotB] = [collect(legA), collect(legB)];
    legA.send(Buffer.from([1, 2, 3]));
    legB.send(Buffer.from([4, 5, 6, 7]));
    await until('both directions delivered', async () => gotA.length === 1 && gotB.length === 1);
    expect(gotB[0]).toEqual(Buffer.from([1, 2, 3]));
    expect(gotA[0]).toEqual(Buffer.from([4, 5, 6, 7]));
    expect(h.relay.stats()).toMatchObject({ udpLegs: 1, tcpLegs: 1, packetsRelayed: 2 });
    expect(h.mem.lines().some((l) => l.msg === 'link kept without attach' && l.user === 'bob')).toBe(true);
  });

  it('carries TCP to TCP: the allocator on its attached link, the peer on a dialled one', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legA = await bindTcp(alice.link, a.legs[0].username, a.legs[0].key);
    const legB = await dialTcpLeg(dialAs(h.tcpPort, 'bob'), a.legs[1].username, a.legs[1].key);
    stops.push(() => legB.close());
    const [gotA, gotB] = [collect(legA), collect(legB)];
    const big = Buffer.alloc(1200, 0xab);
    legA.send(big);
    legB.send(Buffer.from('pong'));
    await until('both directions delivered', async () => gotA.length === 1 && gotB.length === 1);
    expect(gotB[0]).toEqual(big);
    expect(String(gotA[0])).toBe('pong');
    expect(h.relay.stats()).toMatchObject({ udpLegs: 0, tcpLegs: 2, packetsRelayed: 2, bytesRelayed: 1204 });
  });

  it('refuses a TCP leg on a link whose handshake had no credential, and the attach deadline still drops it', async () => {
    const h = await startRelay(stops, { attachTimeoutMs: 300 });
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const { link } = await dialLink({ ...dialAs(h.tcpPort, undefined), role: 'node' });
    stops.push(() => link.close());
    await expect(link.request(RelayBind, { username: a.legs[1].username, key: a.legs[1].key })).rejects.toMatchObject({ code: 'ERR_RELAY_NOT_AUTHENTICATED' });
    await until('link dropped', async () => link.closed);
    expect(h.relay.stats().tcpLegs).toBe(0);
  });
});

describe('rate caps', () => {
  it('sends one link at most TCP_LEG_MAX_PPS relay.data a second, however many legs it has, so fast UDP senders cannot get it closed', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const calls = [await allocate(alice.link, 'bob', 'call-1'), await allocate(alice.link, 'bob', 'call-2')];
    const { link } = await dialLink({ ...dialAs(h.tcpPort, 'bob'), role: 'node' });
    stops.push(() => link.close());
    const got: Buffer[] = [];
    const senders = [];
    for (const a of calls) {
      const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0] });
      stops.push(() => legA.close());
      senders.push(legA);
      const legB = await bindTcp(link, a.legs[1].username, a.legs[1].key);
      legB.onPacket((p) => got.push(p));
    }
    for (let burst = 0; burst < 8; burst++) {
      for (const legA of senders) for (let i = 0; i < 25; i++) legA.send(Buffer.alloc(100, i));
      await sleep(5); // in bursts the loopback socket buffers take without loss
    }
    await until('bursts handled', async () => h.relay.stats().packetsRelayed + h.relay.stats().dropped >= 400);
    await sleep(100);
    expect(got.length).toBeGreaterThanOrEqual(TCP_LEG_MAX_PPS);
    expect(got.length).toBeLessThan(TCP_LEG_MAX_PPS + 20);
    expect(h.relay.stats().dropped).toBe(400 - got.length);
    expect(link.closed).toBe(false);
  });

  it('caps each leg at limits.kbps', async () => {
    const h = await startRelay(stops, { limits: { kbps: 8 } }); // 1000 bytes a second, 1000 at once
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0] });
    const legB = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[1] });
    stops.push(() => legA.close(), () => legB.close());
    const gotB = collect(legB);
    for (let i = 0; i < 30; i++) legA.send(Buffer.alloc(100));
    await until('burst handled', async () => h.relay.stats().packetsRelayed + h.relay.stats().dropped >= 30);
    await sleep(50);
    expect(gotB.length).toBeGreaterThanOrEqual(10);
    expect(gotB.length).toBeLessThanOrEqual(11);
  });
});

describe('leg authentication', () => {
  it('answers a ChannelBind with a wrong key with 401, binds nothing and relays nothing from there', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0] });
    stops.push(() => legA.close());
    const gotA = collect(legA);
    const wrongKey = Buffer.alloc(18, 7).toString('base64');
    const mallory = await nodeUdp(stops);
    await expect(bindUdp({ udp: mallory, server: h.udpServer, username: a.legs[1].username, key: wrongKey, channel: 0x4001 })).rejects.toMatchObject({ code: 'ERR_RELAY_UNAUTHORIZED' });
    await expect(bindUdp({ udp: mallory, server: h.udpServer, username: 'no-such.1', key: wrongKey, channel: 0x4001 })).rejects.toMatchObject({ code: 'ERR_RELAY_UNAUTHORIZED' });
    // A leg-1 key from another allocation does not open this one either.
    const other = await allocate(alice.link, 'carol', 'call-2');
    await expect(bindUdp({ udp: mallory, server: h.udpServer, username: a.legs[1].username, key: other.legs[1].key, channel: 0x4001 })).rejects.toMatchObject({ code: 'ERR_RELAY_UNAUTHORIZED' });
    const before = h.relay.stats().dropped;
    mallory.send(encodeChannelData(0x4001, Buffer.from('spoof')), h.udpServer);
    await until('dropped', async () => h.relay.stats().dropped > before);
    await sleep(50);
    expect(gotA).toEqual([]);
    expect(h.relay.stats()).toMatchObject({ udpLegs: 1, packetsRelayed: 0 });
    expect(h.mem.lines().some((l) => l.msg === 'ChannelBind refused' && l.reason === 'wrong key')).toBe(true);
    expect(h.mem.text()).not.toContain(a.legs[1].key);
  });

  it('refuses relay.bind with a wrong key', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    await expect(bindTcp(alice.link, a.legs[0].username, a.legs[1].key)).rejects.toMatchObject({ code: 'ERR_RELAY_UNAUTHORIZED' });
    expect(h.relay.stats().tcpLegs).toBe(0);
  });

  it('drops ChannelData from an address that did not bind, even on a bound channel number', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0], channel: 0x4444 });
    const legB = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[1], channel: 0x4444 });
    stops.push(() => legA.close(), () => legB.close());
    const gotB = collect(legB);
    const stranger = await rawSocket();
    for (let i = 0; i < 5; i++) await send(stranger.socket, encodeChannelData(0x4444, Buffer.from('x')), h.udp.port);
    await until('five dropped', async () => h.relay.stats().dropped >= 5);
    legA.send(Buffer.from('real'));
    await until('real packet delivered', async () => gotB.length === 1);
    expect(gotB.map(String)).toEqual(['real']);
    expect(stranger.received).toEqual([]);
    expect(h.relay.stats()).toMatchObject({ packetsRelayed: 1, dropped: 5 });
  });

  it('moves a leg that binds again from a new port (NAT rebinding)', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const [oldPort, newPort] = [await nodeUdp(stops), await nodeUdp(stops)];
    const legOld = await openUdpLeg({ udp: oldPort, server: h.udpServer, ...a.legs[0], channel: 0x4100 });
    const legB = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[1] });
    const legNew = await openUdpLeg({ udp: newPort, server: h.udpServer, ...a.legs[0], channel: 0x4200 });
    stops.push(() => legOld.close(), () => legB.close(), () => legNew.close());
    expect(legNew.mapped.port).toBe(newPort.port);
    const [gotOld, gotNew, gotB] = [collect(legOld), collect(legNew), collect(legB)];
    legB.send(Buffer.from('to alice'));
    await until('delivered at the new port', async () => gotNew.length === 1);
    legOld.send(Buffer.from('from the old port'));
    legNew.send(Buffer.from('from the new port'));
    await until('new port relayed', async () => gotB.length === 1);
    await sleep(50);
    expect(gotB.map(String)).toEqual(['from the new port']);
    expect(gotOld).toEqual([]);
    expect(h.relay.stats()).toMatchObject({ udpLegs: 2, packetsRelayed: 2, dropped: 1 });
  });

  it('refuses to bind a channel that another leg holds from the same address (400)', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const [a, b] = [await allocate(alice.link, 'bob', 'c1'), await allocate(alice.link, 'carol', 'c2')];
    const udp = await nodeUdp(stops);
    await bindUdp({ udp, server: h.udpServer, ...a.legs[0], channel: 0x4abc });
    await expect(bindUdp({ udp, server: h.udpServer, ...b.legs[0], channel: 0x4abc })).rejects.toMatchObject({ code: 'ERR_RELAY_BIND_REFUSED' });
    await expect(bindUdp({ udp, server: h.udpServer, ...b.legs[0], channel: 0x4abd })).resolves.toMatchObject({ mapped: { port: udp.port } });
  });
});

describe('allocation lifetime', () => {
  it('frees an idle allocation after idleS and tells the allocator, while one with traffic lives on', async () => {
    const h = await startRelay(stops, { limits: { idleS: 1 } });
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const closed: Array<{ allocation: string; reason: string }> = [];
    onRelayClosed(alice.link, (e) => closed.push(e));
    const idle = await allocate(alice.link, 'bob', 'idle');
    const busy = await allocate(alice.link, 'carol', 'busy');
    const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...busy.legs[0], refreshMs: 0 });
    const legB = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...busy.legs[1], refreshMs: 0 });
    stops.push(() => legA.close(), () => legB.close());
    const gotB = collect(legB);
    const started = Date.now();
    while (Date.now() - started < 2500) {
      legA.send(Buffer.from('voice'));
      await sleep(100);
    }
    expect(closed).toEqual([{ allocation: idle.allocation, reason: 'idle' }]);
    expect(h.relay.stats().allocations).toBe(1);
    expect(gotB.length).toBeGreaterThan(15);
    await until('busy one freed once quiet', async () => h.relay.stats().allocations === 0, 3000);
    expect(closed.map((c) => c.allocation)).toEqual([idle.allocation, busy.allocation]);
    await expect(bindUdp({ udp: await nodeUdp(stops), server: h.udpServer, ...busy.legs[0], channel: 0x4001 })).rejects.toMatchObject({ code: 'ERR_RELAY_UNAUTHORIZED' });
  });

  it('release frees the legs and closes the peer\'s relay-only link', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0] });
    const legB = await dialTcpLeg(dialAs(h.tcpPort, 'bob'), a.legs[1].username, a.legs[1].key);
    stops.push(() => legA.close());
    const reasons: string[] = [];
    legB.onClose((r) => reasons.push(r));
    expect(await release(alice.link, a.allocation)).toBe(true);
    await until('peer leg closed', async () => legB.closed && legB.link.closed);
    expect(reasons).toEqual(['released']);
    expect(h.relay.stats()).toMatchObject({ allocations: 0, udpLegs: 0, tcpLegs: 0 });
    expect(alice.link.closed).toBe(false);
    await expect(bindUdp({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0], channel: 0x4002 })).rejects.toMatchObject({ code: 'ERR_RELAY_UNAUTHORIZED' });
  });

  it('frees the allocations of an allocator whose link closes', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    await allocate(alice.link, 'carol', 'call-2');
    const legB = await dialTcpLeg(dialAs(h.tcpPort, 'bob'), a.legs[1].username, a.legs[1].key);
    alice.link.close();
    await until('freed', async () => h.relay.stats().allocations === 0);
    await until('peer leg closed', async () => legB.closed);
    expect(h.relay.stats()).toMatchObject({ udpLegs: 0, tcpLegs: 0 });
    // The user's quota came back with them.
    const again = await attachNode(stops, h.tcpPort, 'alice');
    for (let i = 0; i < 4; i++) await allocate(again.link, 'bob', `s${i}`);
  });

  it('frees everything on stop', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legB = await dialTcpLeg(dialAs(h.tcpPort, 'bob'), a.legs[1].username, a.legs[1].key);
    const closed: string[] = [];
    onRelayClosed(alice.link, (e) => closed.push(e.reason));
    h.relay.stop();
    h.relay.stop();
    await until('told and closed', async () => closed.length === 1 && legB.closed);
    expect(closed).toEqual(['shutdown']);
    expect(h.relay.stats().allocations).toBe(0);
    await expect(allocate(alice.link, 'bob', 'again')).rejects.toMatchObject({ code: 'ERR_RELAY_UNAVAILABLE' });
  });
});

describe('hostile input', () => {
  it('drops garbage on the UDP port and keeps relaying', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legA = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0], channel: 0x4010 });
    const legB = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[1] });
    stops.push(() => legA.close(), () => legB.close());
    const gotB = collect(legB);
    const hostile = await rawSocket();
    let seed = 0x5eed;
    const random = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => random(256)));
    const validBind = encodeChannelBindRequest({ transactionId: createTransactionId(), username: a.legs[0].username, channel: 0x4010, key: Buffer.alloc(18) });
    for (let i = 0; i < 600; i++) {
      let packet: Buffer;
      switch (random(6)) {
        case 0: // ChannelData with lying lengths and channel numbers
          packet = Buffer.concat([Buffer.from([0x40 + random(16), random(256), random(256), random(256)]), bytes(random(40))]);
          break;
        case 1: // truncated headers
          packet = Buffer.from([0x40 + random(16)]).subarray(0, random(2));
          break;
        case 2: { // a ChannelBind with flipped bits
          packet = Buffer.from(validBind);
          packet[20 + random(packet.length - 20)]! ^= 1 << random(8);
          break;
        }
        case 3: // ChannelBind header, noise after it
          packet = Buffer.concat([validBind.subarray(0, 20), bytes(4 * random(20))]);
          packet.writeUInt16BE(packet.length - 20, 2);
          break;
        case 4: // a ChannelBind truncated
          packet = validBind.subarray(0, random(validBind.length));
          break;
        default:
          packet = bytes(random(120));
      }
      await send(hostile.socket, packet, h.udp.port);
    }
    await sleep(100);
    legA.send(Buffer.from('still here'));
    await until('relayed after the storm', async () => gotB.length === 1);
    expect(String(gotB[0])).toBe('still here');
    expect(h.relay.stats()).toMatchObject({ allocations: 1, udpLegs: 2, packetsRelayed: 1 });
    expect(h.relay.stats().dropped).toBeGreaterThan(50);
    // Nothing a stranger sent earned it relayed media; answers are STUN errors (first byte 0x01) only.
    expect(hostile.received.length).toBeGreaterThan(0);
    expect(hostile.received.every((m) => m[0] === 0x01)).toBe(true);
  });

  it('rate-limits ChannelBind floods per source and still serves others', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const flooder = await rawSocket();
    const request = encodeChannelBindRequest({ transactionId: createTransactionId(), username: a.legs[0].username, channel: 0x4001, key: Buffer.alloc(18) });
    for (let i = 0; i < 400; i++) await send(flooder.socket, request, h.udp.port);
    await sleep(100);
    // Every answer was a 401 and the flood got fewer answers than requests.
    expect(flooder.received.length).toBeGreaterThan(50);
    expect(flooder.received.length).toBeLessThan(400);
    const leg = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[0] });
    leg.close();
  });

  it('ignores relay.data for a channel the link did not bind', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const legB = await openUdpLeg({ udp: await nodeUdp(stops), server: h.udpServer, ...a.legs[1] });
    stops.push(() => legB.close());
    const gotB = collect(legB);
    const { RelayData } = await import('../../src/relay/messages.js');
    alice.link.notify(RelayData, { ch: 1, d: Buffer.from('nope').toString('base64') });
    await until('dropped', async () => h.relay.stats().dropped === 1);
    expect(gotB).toEqual([]);
    expect(alice.link.closed).toBe(false);
  });

  it('delivers what the relay sends as ChannelData the client can decode', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    const a = await allocate(alice.link, 'bob', 'call');
    const raw = await rawSocket();
    const udpA = await nodeUdp(stops);
    const legA = await openUdpLeg({ udp: udpA, server: h.udpServer, ...a.legs[0] });
    stops.push(() => legA.close());
    // Leg 1 bound from a raw socket with the client codec's request: the relay's ChannelData must decode.
    const rawUdp = {
      send: (data: Buffer, to: { address: string; port: number }) => raw.socket.send(data, to.port, to.address),
      onDatagram: (handler: (p: Buffer, f: { address: string; port: number }) => boolean) => {
        const l = (m: Buffer, r: { address: string; port: number }): void => void handler(m, r);
        raw.socket.on('message', l);
        return () => raw.socket.off('message', l);
      },
    };
    await bindUdp({ udp: rawUdp, server: h.udpServer, ...a.legs[1], channel: 0x4fff });
    legA.send(Buffer.from('hello'));
    await until('received', async () => raw.received.some((m) => m[0] === 0x4f));
    const data = decodeChannelData(raw.received.find((m) => m[0] === 0x4f)!);
    expect(data.channel).toBe(0x4fff);
    expect(String(data.payload)).toBe('hello');
  });
});

describe('admitWithoutAttach', () => {
  it('refuses an attached link and an expired handshake credential', async () => {
    const h = await startRelay(stops);
    const alice = await attachNode(stops, h.tcpPort, 'alice');
    expect(() => h.service.admitWithoutAttach(alice.link)).toThrow(expect.objectContaining({ code: 'ERR_ATTACH_STATE' }));
    const { credentialFor } = await import('./harness.js');
    const identity = generateIdentity();
    const expired = credentialFor(identity, 'bob', -1000);
    const a = await allocate(alice.link, 'bob', 'call');
    const { link } = await dialLink({ identity, network: 'lab', role: 'node', credential: () => expired, log: memoryLogger().log, host: '127.0.0.1', port: h.tcpPort });
    stops.push(() => link.close());
    await expect(link.request(RelayBind, { username: a.legs[1].username, key: a.legs[1].key })).rejects.toMatchObject({
      code: 'ERR_RELAY_NOT_AUTHENTICATED',
      message: expect.stringContaining('expired'),
    });
  });
});
