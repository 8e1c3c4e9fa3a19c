/**
 * A ChannelBind carries no nonce, and a valid one from a new source address
 * moves the leg there (NAT rebinding). Without a replay check, anyone who sees
 * one ChannelBind on the wire (same Wi-Fi) could send it again from their own
 * address and take the leg over. Found in review; this is the regression test.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { createTransactionId } from '../../src/nat/stun/message.js';
import { encodeChannelBindRequest } from '../../src/relay/channel-bind.js';
import { allocate, openUdpLeg } from '../../src/relay/client.js';
import { until } from '../helpers/until.js';
import { attachNode, nodeUdp, startRelay } from './harness.js';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function rawSocket(): Promise<{ socket: Socket; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { socket, received };
}

it('a ChannelBind replayed from another address does not move the leg to the replayer', async () => {
  const h = await startRelay(stops);
  const alice = await attachNode(stops, h.tcpPort, 'alice');
  const a = await allocate(alice.link, 'bob', 'call');
  // Alice binds leg 0 from her own socket; we keep the exact bytes she sent (what a sniffer sees).
  const victim = await rawSocket();
  const request = encodeChannelBindRequest({ transactionId: createTransactionId(), username: a.legs[0].username, channel: 0x4001, key: Buffer.from(a.legs[0].key, 'base64') });
  victim.socket.send(request, h.udpServer.port, '127.0.0.1');
  await until('victim bound', async () => victim.received.length === 1);
  // Bob binds leg 1 normally.
  const bobUdp = await nodeUdp(stops);
  const bobLeg = await openUdpLeg({ udp: bobUdp, server: h.udpServer, ...a.legs[1], refreshMs: 0 });
  stops.push(() => bobLeg.close());
  // Mallory knows no key: she replays Alice's packet from her own address.
  const mallory = await rawSocket();
  mallory.socket.send(request, h.udpServer.port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 200));
  bobLeg.send(Buffer.from('bob-media'));
  await new Promise((r) => setTimeout(r, 200));
  // The replay is refused: Bob's media still reaches Alice, not Mallory.
  expect(mallory.received.map((p) => p.subarray(4).toString())).not.toContain('bob-media');
  expect(victim.received.map((p) => p.subarray(4).toString())).toContain('bob-media');
});
