import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { SecureChannel } from '../../src/crypto/secure-channel.js';
import type { SecureChannelOptions } from '../../src/crypto/secure-channel.js';
import { makeHandshakePayload, verifyHandshakePayload } from '../../src/crypto/handshake-payload.js';
import type { VerifiedPeer } from '../../src/crypto/handshake-payload.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  return [client, await accepted];
}

const alice = generateIdentity();
const bob = generateIdentity();

function opts(self: typeof alice, initiator: boolean, extra: Partial<SecureChannelOptions> = {}): SecureChannelOptions {
  return {
    initiator,
    staticKeyPair: self.noise,
    prologue: Buffer.from('partyline/1\ntest'),
    payload: makeHandshakePayload(self, { role: initiator ? 'node' : 'supernode' }),
    verifyPayload: verifyHandshakePayload,
    handshakeTimeoutMs: 2000,
    ...extra,
  };
}

function nextMessage(channel: SecureChannel): Promise<Buffer> {
  const next = new Promise<Buffer>((r) => channel.once('message', r));
  channel.start();
  return next;
}

describe('SecureChannel over TCP', () => {
  it.each(['XX', 'IK'] as const)('completes a %s handshake and carries messages both ways', async (pattern) => {
    const [a, b] = await socketPair();
    const [ca, cb] = await Promise.all([
      SecureChannel.establish(a, opts(alice, true, { pattern, ...(pattern === 'IK' ? { remoteStaticKey: bob.noise.publicKey } : {}) })),
      SecureChannel.establish(b, opts(bob, false)),
    ]);
    expect(ca.remoteStaticKey.equals(bob.noise.publicKey)).toBe(true);
    expect(cb.remoteStaticKey.equals(alice.noise.publicKey)).toBe(true);
    expect((ca.peer as VerifiedPeer).deviceId).toBe(bob.deviceId);
    expect((cb.peer as VerifiedPeer).deviceId).toBe(alice.deviceId);
    expect((cb.peer as VerifiedPeer).role).toBe('node');
    expect(ca.handshakeHash.equals(cb.handshakeHash)).toBe(true);
    const got = nextMessage(cb);
    ca.send(Buffer.from('hello bob'));
    expect((await got).toString()).toBe('hello bob');
    const back = nextMessage(ca);
    cb.send(Buffer.alloc(65519, 1));
    expect((await back).length).toBe(65519);
    ca.close();
    cb.close();
  });

  it('keeps both sides in step across rekeys', async () => {
    const [a, b] = await socketPair();
    const [ca, cb] = await Promise.all([
      SecureChannel.establish(a, { ...opts(alice, true), rekeyInterval: 3 }),
      SecureChannel.establish(b, { ...opts(bob, false), rekeyInterval: 3 }),
    ]);
    const received: string[] = [];
    const done = new Promise<void>((resolve) => cb.on('message', (m) => received.push(m.toString()) === 20 && resolve()));
    cb.start();
    for (let i = 0; i < 20; i++) ca.send(Buffer.from(`m${i}`));
    await done;
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    ca.close();
    cb.close();
  });

  it('fails the handshake when the networks (prologues) differ', async () => {
    const [a, b] = await socketPair();
    const results = await Promise.allSettled([
      SecureChannel.establish(a, opts(alice, true)),
      SecureChannel.establish(b, { ...opts(bob, false), prologue: Buffer.from('partyline/1\nother') }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('refuses an IK responder whose key is not the pinned one', async () => {
    const [a, b] = await socketPair();
    const results = await Promise.allSettled([
      SecureChannel.establish(a, opts(alice, true, { pattern: 'IK', remoteStaticKey: generateIdentity().noise.publicKey })),
      SecureChannel.establish(b, opts(bob, false)),
    ]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
  });

  it('refuses a peer whose identity key did not sign its noise key', async () => {
    const [a, b] = await socketPair();
    const results = await Promise.allSettled([
      SecureChannel.establish(a, opts(alice, true, { payload: makeHandshakePayload(bob) })),
      SecureChannel.establish(b, opts(bob, false)),
    ]);
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_NOISE_PAYLOAD_SIGNATURE' } });
  });

  it('drops a peer that never speaks after the handshake timeout', async () => {
    const [_a, b] = await socketPair();
    const started = Date.now();
    await expect(SecureChannel.establish(b, opts(bob, false, { handshakeTimeoutMs: 200 }))).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(b.destroyed).toBe(true);
  });

  it('closes with a typed error when the peer sends a forged transport frame', async () => {
    const [a, b] = await socketPair();
    const [ca, cb] = await Promise.all([SecureChannel.establish(a, opts(alice, true)), SecureChannel.establish(b, opts(bob, false))]);
    const closed = new Promise<Error | undefined>((r) => cb.once('close', r));
    cb.start();
    a.write(Buffer.concat([Buffer.from([0, 20]), Buffer.alloc(20, 0xab)]));
    const err = await closed;
    expect(err).toMatchObject({ code: 'ERR_NOISE_DECRYPT' });
    expect(cb.closed).toBe(true);
    ca.close();
  });
});

describe('SecureChannel backpressure', () => {
  it('drops a peer that stops reading instead of queueing without bound', async () => {
    const [a, b] = await socketPair();
    const [ca, cb] = await Promise.all([SecureChannel.establish(a, opts(alice, true)), SecureChannel.establish(b, opts(bob, false))]);
    // b never starts reading; the kernel buffers fill, then the user-space queue.
    b.pause();
    const closed = new Promise<Error | undefined>((r) => ca.once('close', r));
    let thrown: unknown;
    try {
      for (let i = 0; i < 10_000; i++) ca.send(Buffer.alloc(60_000));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'ERR_NOISE_BACKPRESSURE' });
    expect(await closed).toMatchObject({ code: 'ERR_NOISE_BACKPRESSURE' });
    cb.close(new Error('test done'));
  });
});
