import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { callControl, ControlClient } from '../../src/control/client.js';
import { ControlRemoteError } from '../../src/control/errors.js';
import { MAX_REQUEST_LINE_BYTES } from '../../src/control/protocol.js';
import { ControlRegistry } from '../../src/control/registry.js';
import { ControlServer } from '../../src/control/server.js';
import { MAX_SOCKET_PATH_BYTES } from '../../src/control/socket-path.js';
import { PartylineError } from '../../src/errors.js';
import { memoryLogger } from '../helpers/log.js';
import { RawClient } from './raw-client.js';

let dir: string;
let path: string;
const servers: ControlServer[] = [];
const clients: RawClient[] = [];

beforeEach(async () => {
  dir = await mkdtemp('/tmp/plc-');
  path = join(dir, 'control.sock');
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Handlers released by the test: `hold` waits until `release()`. */
let release: () => void = () => undefined;
let lastSignal: AbortSignal | undefined;

function testRegistry(log = memoryLogger().log): ControlRegistry {
  const registry = new ControlRegistry({ log });
  registry.register('status', {
    args: z.strictObject({}),
    describe: 'status',
    handler: () => ({ user: 'alice', loggedIn: true }),
  });
  registry.register('echo', {
    args: z.strictObject({ text: z.string(), delayMs: z.number().int().min(0).max(1000).default(0) }),
    describe: 'answer with the text, after a delay',
    handler: async ({ text, delayMs }) => {
      if (delayMs > 0) await sleep(delayMs);
      return { text };
    },
  });
  registry.register('call', {
    args: z.strictObject({ user: z.string() }),
    describe: 'always busy',
    handler: ({ user }) => {
      throw new PartylineError('ERR_CALL_BUSY', `${user} is busy`);
    },
  });
  registry.register('hold', {
    args: z.strictObject({}),
    describe: 'answers when the test says so',
    handler: (_args, context) => {
      lastSignal = context.signal;
      return new Promise((resolve) => {
        release = () => resolve('released');
      });
    },
  });
  registry.register('bigint', { args: z.strictObject({}), describe: 'not JSON', handler: () => ({ n: 1n }) });
  return registry;
}

async function startServer(options: { log?: ReturnType<typeof memoryLogger>['log']; maxConnections?: number; at?: string } = {}): Promise<ControlServer> {
  const log = options.log ?? memoryLogger().log;
  const server = new ControlServer({ path: options.at ?? path, registry: testRegistry(log), log, ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}) });
  servers.push(server);
  await server.start();
  return server;
}

async function rawClient(at = path): Promise<RawClient> {
  const client = await RawClient.open(at);
  clients.push(client);
  return client;
}

/** A socket file left behind by a process that died without closing it. */
async function staleSocket(at: string): Promise<void> {
  const script = `require('node:net').createServer().listen(${JSON.stringify(at)}, () => process.kill(process.pid, 'SIGKILL'))`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  expect(lstatSync(at).isSocket()).toBe(true);
}

describe('control protocol over the socket', () => {
  it('answers a request, and a malformed line with an error while the connection stays usable', async () => {
    await startServer();
    const client = await rawClient();
    expect(await client.request({ v: 1, id: 1, command: 'status', args: {} })).toEqual({ v: 1, id: 1, ok: true, result: { user: 'alice', loggedIn: true } });
    client.send('{"id": 2, "command": \n');
    const broken = await client.next();
    expect(broken).toMatchObject({ id: null, ok: false, error: { code: 'ERR_CONTROL_REQUEST' } });
    expect((broken.error as { message: string }).message).toMatch(/^request is not valid JSON/);
    expect(await client.request({ id: 3, command: 'Status!' })).toMatchObject({ id: 3, ok: false, error: { code: 'ERR_CONTROL_REQUEST' } });
    expect(await client.request({ id: 4, command: 'status' })).toMatchObject({ id: 4, ok: true, result: { user: 'alice' } });
  });

  it('reports an unknown command, listing the available ones', async () => {
    await startServer();
    const client = await rawClient();
    expect(await client.request({ id: 1, command: 'dial', args: {} })).toEqual({
      v: 1,
      id: 1,
      ok: false,
      error: { code: 'ERR_CONTROL_UNKNOWN_COMMAND', message: 'unknown command "dial"; available: bigint, call, echo, hold, status' },
    });
  });

  it('reports bad arguments with path and expectation', async () => {
    await startServer();
    const client = await rawClient();
    expect(await client.request({ id: 1, command: 'echo', args: { text: 5, delayMs: 'soon' } })).toEqual({
      v: 1,
      id: 1,
      ok: false,
      error: {
        code: 'ERR_CONTROL_ARGS',
        message: 'echo: invalid arguments: text: expected a string, got 5; delayMs: expected a number, got "soon"',
      },
    });
  });

  it("reports a handler's typed error with its code, and a result that is not JSON as ERR_INTERNAL", async () => {
    await startServer();
    const client = await rawClient();
    expect(await client.request({ id: 1, command: 'call', args: { user: 'bob' } })).toMatchObject({ id: 1, ok: false, error: { code: 'ERR_CALL_BUSY', message: 'bob is busy' } });
    expect(await client.request({ id: 2, command: 'bigint', args: {} })).toMatchObject({ id: 2, ok: false, error: { code: 'ERR_INTERNAL' } });
    expect(await client.request({ id: 3, command: 'status' })).toMatchObject({ id: 3, ok: true });
  });

  it('closes the connection on a line over 64 KiB, after saying why, and keeps serving others', async () => {
    const logs = memoryLogger();
    await startServer({ log: logs.log });
    const client = await rawClient();
    client.send(`{"id":1,"command":"echo","args":{"text":"${'x'.repeat(MAX_REQUEST_LINE_BYTES)}"}}\n`);
    expect(await client.next()).toMatchObject({ id: null, ok: false, error: { code: 'ERR_CONTROL_LINE_TOO_LONG' } });
    await client.closed;
    expect(logs.lines().some((l) => l.msg === 'control request line too long; closing the connection')).toBe(true);
    const other = await rawClient();
    expect(await other.request({ id: 1, command: 'status' })).toMatchObject({ ok: true });
  });

  it('answers a client that half-closes after its requests (socat, nc -N), the last line without a newline, then closes', async () => {
    await startServer();
    const client = await rawClient();
    client.send(`${JSON.stringify({ id: 1, command: 'echo', args: { text: 'one', delayMs: 30 } })}\n`);
    client.socket.end(JSON.stringify({ id: 2, command: 'status' }));
    const answers = [await client.next(), await client.next()];
    expect(answers.map((a) => a.id).sort()).toEqual([1, 2]);
    expect(answers.every((a) => a.ok === true)).toBe(true);
    await client.closed;
  });

  it('answers pipelined requests by id, the quick one first', async () => {
    await startServer();
    const client = await rawClient();
    client.send(`${JSON.stringify({ id: 1, command: 'echo', args: { text: 'slow', delayMs: 100 } })}\n${JSON.stringify({ id: 2, command: 'echo', args: { text: 'quick' } })}\n`);
    expect(await client.next()).toMatchObject({ id: 2, result: { text: 'quick' } });
    expect(await client.next()).toMatchObject({ id: 1, result: { text: 'slow' } });
  });

  it('serves many clients at once, each getting its own answers', async () => {
    await startServer();
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, c) => {
        const client = new ControlClient({ path });
        try {
          return await Promise.all(
            Array.from({ length: 5 }, (_unused, r) => client.call('echo', { text: `${c}/${r}`, delayMs: (c * 7 + r * 13) % 20 })),
          );
        } finally {
          client.close();
        }
      }),
    );
    results.forEach((answers, c) => {
      expect(answers).toEqual(Array.from({ length: 5 }, (_, r) => ({ text: `${c}/${r}` })));
    });
  });

  it('answers connections over the limit with ERR_CONTROL_BUSY', async () => {
    const server = await startServer({ maxConnections: 2 });
    const first = await rawClient();
    const second = await rawClient();
    await first.request({ id: 1, command: 'status' });
    await second.request({ id: 1, command: 'status' });
    expect(server.connections).toBe(2);
    const third = await rawClient();
    expect(await third.next()).toMatchObject({ id: null, ok: false, error: { code: 'ERR_CONTROL_BUSY' } });
    await third.closed;
    first.close();
    await first.closed;
    await sleep(20);
    const fourth = await rawClient();
    expect(await fourth.request({ id: 1, command: 'status' })).toMatchObject({ ok: true });
  });
});

describe('ControlServer lifecycle', () => {
  it('creates the directory, listens with mode 0660, and removes the socket on stop (twice is harmless)', async () => {
    const nested = join(dir, 'run', 'partyline', 'control.sock');
    const server = await startServer({ at: nested });
    await server.start(); // idempotent
    const stats = await stat(nested);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o660);
    expect(server.listening).toBe(true);
    await server.stop();
    expect(existsSync(nested)).toBe(false);
    expect(server.listening).toBe(false);
    await server.stop();
    // and it can be started again
    await server.start();
    await expect(callControl(nested, 'status')).resolves.toMatchObject({ user: 'alice' });
  });

  it('replaces a stale socket file left by a dead node', async () => {
    await staleSocket(path);
    const logs = memoryLogger();
    await startServer({ log: logs.log });
    await expect(callControl(path, 'status')).resolves.toEqual({ user: 'alice', loggedIn: true });
    expect(logs.lines().some((l) => l.msg === 'removed a stale control socket left by a node that did not stop cleanly' && l.level === 40)).toBe(true);
  });

  it('does not steal the socket of a live node', async () => {
    await startServer();
    const intruder = new ControlServer({ path, registry: new ControlRegistry({ log: memoryLogger().log }), log: memoryLogger().log });
    const err = await intruder.start().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CONTROL_IN_USE', message: `another partyline node is serving ${path}` });
    await intruder.stop();
    // the first node's socket is still there and still answers
    expect(lstatSync(path).isSocket()).toBe(true);
    await expect(callControl(path, 'status')).resolves.toMatchObject({ user: 'alice' });
  });

  it('does not steal a socket some other program serves either', async () => {
    const foreign = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => foreign.listen(path, resolve));
    try {
      const server = new ControlServer({ path, registry: testRegistry(), log: memoryLogger().log });
      await expect(server.start()).rejects.toMatchObject({ code: 'ERR_CONTROL_IN_USE' });
    } finally {
      await new Promise<void>((resolve) => foreign.close(() => resolve()));
    }
  });

  it('refuses to replace a file that is not a socket', async () => {
    await writeFile(path, 'precious');
    const server = new ControlServer({ path, registry: testRegistry(), log: memoryLogger().log });
    await expect(server.start()).rejects.toMatchObject({
      code: 'ERR_CONTROL_NOT_SOCKET',
      message: `${path} exists and is not a socket; refusing to replace it (remove it, or set node.control to another path)`,
    });
    expect(readFileSync(path, 'utf8')).toBe('precious');
  });

  it('names the path and the limit when the path is too long, before touching the disk', async () => {
    const long = join(dir, 'd'.repeat(60), `${'s'.repeat(60)}.sock`);
    const server = new ControlServer({ path: long, registry: testRegistry(), log: memoryLogger().log });
    const err = await server.start().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CONTROL_PATH_TOO_LONG' });
    expect((err as Error).message).toBe(
      `control socket path is ${Buffer.byteLength(long)} bytes, over the ${MAX_SOCKET_PATH_BYTES}-byte limit of Unix socket paths: ${long} ` +
        '(set node.control, or --socket, to a shorter path)',
    );
    expect(existsSync(join(dir, 'd'.repeat(60)))).toBe(false);
    await expect(callControl(long, 'status')).rejects.toMatchObject({ code: 'ERR_CONTROL_PATH_TOO_LONG' });
  });

  it('reports a directory it may not create', async () => {
    if (process.getuid?.() === 0) return; // root may create anything
    await chmod(dir, 0o500);
    try {
      const server = new ControlServer({ path: join(dir, 'sub', 'c.sock'), registry: testRegistry(), log: memoryLogger().log });
      await expect(server.start()).rejects.toMatchObject({ code: 'ERR_CONTROL_LISTEN', message: expect.stringContaining(join(dir, 'sub', 'c.sock')) });
    } finally {
      await chmod(dir, 0o700);
    }
  });

  it('aborts running handlers and closes clients on stop, leaving no handles behind', async () => {
    const before = countResources();
    const server = await startServer();
    const client = new ControlClient({ path });
    const outcome = client.call('hold', {}, { timeoutMs: 5000 }).catch((err: unknown) => err);
    await waitUntil(() => lastSignal !== undefined && server.connections === 1);
    const signal = lastSignal!;
    await server.stop();
    expect(await outcome).toMatchObject({ code: 'ERR_CONTROL_CLOSED', message: 'the node closed the control connection before answering "hold"' });
    expect(signal.aborted).toBe(true);
    release();
    client.close();
    await sleep(20);
    expectNoLeaks(before);
  });
});

describe('ControlClient', () => {
  it('says clearly that no node is listening, for a missing socket and a stale one', async () => {
    const message = `no partyline node is listening on ${path} (is it running? is node.control / --socket right?)`;
    await expect(callControl(path, 'status')).rejects.toMatchObject({ code: 'ERR_CONTROL_UNREACHABLE', message });
    await staleSocket(path);
    await expect(callControl(path, 'status')).rejects.toMatchObject({ code: 'ERR_CONTROL_UNREACHABLE', message });
  });

  it("throws the node's error code and message", async () => {
    await startServer();
    const err = await callControl(path, 'call', { user: 'bob' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlRemoteError);
    expect(err).toMatchObject({ code: 'ERR_CALL_BUSY', message: 'bob is busy', command: 'call' });
  });

  it('times out, and a later answer to the abandoned call is ignored', async () => {
    const before = countResources();
    const server = await startServer();
    const client = new ControlClient({ path });
    await expect(client.call('hold', {}, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
      message: `no answer from ${path} to "hold" within 100 ms`,
    });
    release();
    await expect(client.call('status')).resolves.toMatchObject({ user: 'alice' });
    client.close();
    client.close();
    await expect(client.call('status')).rejects.toMatchObject({ code: 'ERR_CONTROL_CLOSED' });
    await server.stop();
    await sleep(20);
    expectNoLeaks(before);
  });

  it('can be aborted; the node drops the late answer and the connection', async () => {
    const server = await startServer();
    const controller = new AbortController();
    const pending = callControl(path, 'hold', {}, { signal: controller.signal });
    await waitUntil(() => lastSignal !== undefined);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED', message: 'hold: aborted' });
    // The node cannot tell a client that went away from one that only finished sending (half-close),
    // so the handler runs to its end; its answer then finds the connection gone.
    expect(server.connections).toBe(1);
    release();
    await waitUntil(() => server.connections === 0);
  });
});

/**
 * Open sockets and servers, and timers. The test runner's own timers come
 * and go, so a leak shows as more timers than before, not as a change.
 */
function countResources(): { handles: Record<string, number>; timers: number } {
  const handles: Record<string, number> = {};
  let timers = 0;
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'Timeout') timers++;
    else if (/Pipe|TCP|Connect/.test(kind)) handles[kind] = (handles[kind] ?? 0) + 1;
  }
  return { handles, timers };
}

function expectNoLeaks(before: ReturnType<typeof countResources>): void {
  const after = countResources();
  expect(after.handles).toEqual(before.handles);
  expect(after.timers).toBeLessThanOrEqual(before.timers);
}

async function waitUntil(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

beforeEach(() => {
  lastSignal = undefined;
  release = () => undefined;
});
