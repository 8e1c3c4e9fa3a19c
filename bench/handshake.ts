/**
 * bench/handshake: Noise handshake time and transport frame throughput over
 * real TCP on loopback (DESIGN.md "Channels").
 *
 *   npm run build && node dist/bench/handshake.js [--handshakes N] [--seconds S]
 *
 * Prints p50/p95 handshake times (XX and IK, TCP connect included, identity
 * proof verified) and messages/s and MB/s through one channel.
 */
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { generateIdentity } from '../src/crypto/identity.js';
import { makeHandshakePayload, verifyHandshakePayload } from '../src/crypto/handshake-payload.js';
import { SecureChannel } from '../src/crypto/secure-channel.js';
import type { ChannelPattern } from '../src/crypto/secure-channel.js';

const { values } = parseArgs({ options: { handshakes: { type: 'string', default: '300' }, seconds: { type: 'string', default: '3' } } });
const HANDSHAKES = Number(values.handshakes);
const SECONDS = Number(values.seconds);

const server = generateIdentity();
const client = generateIdentity();
const prologue = Buffer.from('partyline/1\nbench');

const accepted: Socket[] = [];
const tcp = createServer({ noDelay: true }, (socket) => {
  accepted.push(socket);
  SecureChannel.establish(socket, {
    initiator: false,
    staticKeyPair: server.noise,
    prologue,
    payload: makeHandshakePayload(server),
    verifyPayload: verifyHandshakePayload,
  }).then(
    (channel) => {
      channel.on('message', (m) => {
        if (m.length === 1) channel.send(m); // echo the short "done" marker only
      });
      channel.start();
    },
    (err: Error) => console.error('server handshake failed', err.message),
  );
});
await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
const port = (tcp.address() as AddressInfo).port;

async function open(pattern: ChannelPattern): Promise<SecureChannel> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise((r) => socket.once('connect', r));
  return SecureChannel.establish(socket, {
    initiator: true,
    pattern,
    staticKeyPair: client.noise,
    ...(pattern === 'IK' ? { remoteStaticKey: server.noise.publicKey } : {}),
    prologue,
    payload: makeHandshakePayload(client),
    verifyPayload: verifyHandshakePayload,
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

console.log(`Noise handshakes over TCP on loopback (${HANDSHAKES} each, connect + handshake + identity check)`);
for (const pattern of ['XX', 'IK'] as const) {
  const times: number[] = [];
  for (let i = 0; i < HANDSHAKES; i++) {
    const t = performance.now();
    const channel = await open(pattern);
    times.push(performance.now() - t);
    channel.close();
  }
  times.sort((a, b) => a - b);
  console.log(`  ${pattern}: p50 ${percentile(times, 50).toFixed(2)} ms  p95 ${percentile(times, 95).toFixed(2)} ms  (${(1000 / (times.reduce((a, b) => a + b, 0) / times.length)).toFixed(0)} handshakes/s sequential)`);
}

for (const size of [100, 1200, 16_000]) {
  const channel = await open('IK');
  const payload = Buffer.alloc(size, 0x55);
  const end = performance.now() + SECONDS * 1000;
  let sent = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 256; i++) channel.send(payload);
    sent += 256;
    if (channel.writableLength > 4 * 1024 * 1024) await new Promise((r) => setImmediate(r));
  }
  const marker = new Promise((r) => channel.once('message', r));
  channel.start();
  channel.send(Buffer.from([1]));
  await marker; // every frame before the marker was decrypted by the server
  const elapsed = (performance.now() - (end - SECONDS * 1000)) / 1000;
  console.log(`  frames of ${String(size).padStart(5)} B: ${(sent / elapsed).toFixed(0).padStart(7)} msg/s  ${((sent * size) / elapsed / 1e6).toFixed(1).padStart(6)} MB/s (encrypt + send + receive + decrypt)`);
  channel.close();
}
console.log('Seed figure: Skype encrypted every packet with AES-256 and RSA key exchange; no handshake timing was published.');
for (const s of accepted) s.destroy();
tcp.close();
