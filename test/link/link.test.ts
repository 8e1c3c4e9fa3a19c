import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { generateIdentity } from '../../src/crypto/identity.js';
import { PartylineError } from '../../src/errors.js';
import { RemoteError } from '../../src/link/link.js';
import type { Link } from '../../src/link/link.js';
import { LinkServer, dialLink } from '../../src/link/transport.js';
import type { PeerLink } from '../../src/link/transport.js';
import { defineNotice, defineRequest } from '../../src/wire/messages.js';
import { memoryLogger } from '../helpers/log.js';

const Echo = defineRequest('test.echo', z.object({ text: z.string().max(100) }).strict(), z.object({ text: z.string() }).strict());
const Fail = defineRequest('test.fail', z.object({}).strict(), z.object({}).strict());
const Slow = defineRequest('test.slow', z.object({}).strict(), z.object({}).strict());
const Unknown = defineRequest('test.unknown', z.object({}).strict(), z.object({}).strict());
const Ping = defineNotice('test.ping', z.object({ n: z.number().int() }).strict());

const serverIdentity = generateIdentity();
const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function startServer(extra: Partial<ConstructorParameters<typeof LinkServer>[0]> = {}) {
  const mem = memoryLogger();
  const links: PeerLink[] = [];
  const server = new LinkServer({
    identity: serverIdentity,
    network: 'test',
    role: 'supernode',
    log: mem.log,
    host: '127.0.0.1',
    port: 0,
    handshakeTimeoutMs: 500,
    onLink: (pl) => {
      links.push(pl);
      pl.link
        .handle(Echo, (req) => ({ text: req.text.toUpperCase() }))
        .handle(Fail, () => {
          throw new PartylineError('ERR_TEST_REFUSED', 'refused on purpose');
        })
        .handle(Slow, () => new Promise<Record<string, never>>(() => undefined))
        .onNotice(Ping, (body, link) => link.notify(Ping, { n: body.n + 1 }));
    },
    ...extra,
  });
  await server.start();
  stops.push(() => server.stop());
  return { server, mem, links };
}

async function dial(port: number): Promise<Link> {
  const { link } = await dialLink({ identity: generateIdentity(), network: 'test', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port });
  stops.push(() => link.close());
  return link;
}

describe('Link (requests and notices over a Noise channel)', () => {
  it('answers requests and notices', async () => {
    const { server } = await startServer();
    const link = await dial(server.port);
    await expect(link.request(Echo, { text: 'hi' })).resolves.toEqual({ text: 'HI' });
    const pong = new Promise<number>((r) => link.onNotice(Ping, (b) => r(b.n)));  // handlers may be added later too
    link.notify(Ping, { n: 41 });
    expect(await pong).toBe(42);
  });

  it('relays typed errors, answers unknown types and invalid bodies with an error', async () => {
    const { server } = await startServer();
    const link = await dial(server.port);
    await expect(link.request(Fail, {})).rejects.toMatchObject({ code: 'ERR_TEST_REFUSED', message: 'refused on purpose' });
    const unknown = await link.request(Unknown, {}).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(RemoteError);
    expect(unknown).toMatchObject({ code: 'ERR_WIRE_UNKNOWN_TYPE' });
    await expect(link.request(Echo, { text: 'x'.repeat(101) } as never)).rejects.toMatchObject({ code: 'ERR_WIRE_BODY', message: expect.stringContaining('test.echo.text') });
    expect(link.closed).toBe(false);
  });

  it('times out and honours AbortSignal', async () => {
    const { server } = await startServer();
    const link = await dial(server.port);
    await expect(link.request(Slow, {}, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    const ac = new AbortController();
    const pending = link.request(Slow, {}, { signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('disconnects a peer sending garbage with a logged typed error while other links continue', async () => {
    const { server, mem } = await startServer();
    const good = await dial(server.port);
    const garbage = connect(server.port, '127.0.0.1');
    await new Promise((r) => garbage.once('connect', r));
    const closed = new Promise((r) => garbage.once('close', r));
    garbage.resume();
    garbage.write(Buffer.from([0, 32, ...Buffer.alloc(32, 7)]));
    garbage.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await closed;
    await expect(good.request(Echo, { text: 'still here' })).resolves.toEqual({ text: 'STILL HERE' });
    const failure = mem.lines().find((l) => l.msg === 'handshake failed');
    expect(failure).toMatchObject({ code: 'ERR_WIRE_FRAME_TOO_LONG', err: 'frame: length 18245, expected at most 4448' });
  });

  it('drops a client that connects and never speaks', async () => {
    const { server, mem } = await startServer();
    const silent = connect(server.port, '127.0.0.1');
    const closed = new Promise((r) => silent.once('close', r));
    await closed;
    expect(mem.lines().find((l) => l.msg === 'handshake failed')).toMatchObject({ code: 'ERR_TIMEOUT' });
  });

  it('closes a link that floods messages', async () => {
    const { server, links } = await startServer({ link: { maxMessagesPerSecond: 10, burst: 10 } });
    const link = await dial(server.port);
    const closed = new Promise<Error | undefined>((r) => link.once('close', r));
    for (let i = 0; i < 50; i++) link.notify(Ping, { n: i });
    await closed;
    expect(links[0]!.link.closed).toBe(true);
  });

  it('refuses connections over the per-address limit', async () => {
    const { server } = await startServer({ maxPerAddress: 2 });
    await dial(server.port);
    await dial(server.port);
    await expect(dial(server.port)).rejects.toBeInstanceOf(PartylineError);
  });
});
