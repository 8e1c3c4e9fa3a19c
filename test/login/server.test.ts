import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { issueCredential, verifyCredential } from '../../src/crypto/credential.js';
import type { UnsignedCredential } from '../../src/crypto/credential.js';
import { generateIdentity, parseIdentity } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import { RemoteError } from '../../src/link/link.js';
import type { Link } from '../../src/link/link.js';
import { LinkServer } from '../../src/link/transport.js';
import { AccountStore } from '../../src/login/account-store.js';
import { dialLoginServer, LOGIN_SERVER_ROLE, LoginError, loginWithPassword } from '../../src/login/client.js';
import { formatLoginServerKey, LOGIN_KEY_FILE } from '../../src/login/login-key.js';
import { Login } from '../../src/login/messages.js';
import { LoginServer } from '../../src/login/server.js';
import type { LoginServerOptions } from '../../src/login/server.js';
import { memoryLogger } from '../helpers/log.js';

const NETWORK = 'test';
const PASSWORD = 'correct horse battery';
const WRONG = 'Tr0ub4dor&3-wrong';
const HOUR = 3_600_000;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Started {
  server: LoginServer;
  dir: string;
  key: Buffer;
  logText: () => string;
  logLines: () => Array<Record<string, unknown>>;
}

async function startLoginServer(users: string[] = ['alice', 'bob'], extra: Partial<LoginServerOptions> = {}): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'partyline-login-server-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = AccountStore.open(dir);
  for (const user of users) await store.addUser(user, PASSWORD);
  store.close();
  const mem = memoryLogger('debug');
  const server = new LoginServer({ dataDir: dir, host: '127.0.0.1', port: 0, network: NETWORK, log: mem.log, ...extra });
  await server.start();
  cleanups.push(() => server.stop());
  return { server, dir, key: Buffer.from(server.publicKey, 'base64'), logText: mem.text, logLines: mem.lines };
}

async function dial(started: Started, identity: Identity = generateIdentity(), network = NETWORK, key = started.key): Promise<Link> {
  const link = await dialLoginServer({ host: '127.0.0.1', port: started.server.port, identity, network, loginServerKey: key, log: memoryLogger().log });
  cleanups.push(() => link.close());
  return link;
}

function login(started: Started, link: Link, identity: Identity, user: string, password: string, extra: { now?: () => number; supernode?: string } = {}) {
  return loginWithPassword({ link, user, password, loginServerKey: started.key, network: NETWORK, identity, ...extra });
}

function closed(link: Link): Promise<void> {
  return link.closed ? Promise.resolve() : new Promise((resolve) => link.once('close', () => resolve()));
}

describe('LoginServer', () => {
  it('issues a credential that binds the keys the node proved in its handshake and records the login', async () => {
    const started = await startLoginServer();
    const identity = generateIdentity();
    const link = await dial(started, identity);
    const before = Date.now();
    const credential = await login(started, link, identity, ' Alice ', PASSWORD, { supernode: '192.0.2.7:5060' });

    // Anyone holding the login server's key can check it offline.
    const checked = verifyCredential(credential, { loginServerKey: started.key, network: NETWORK, now: Date.now(), noiseKey: identity.noise.publicKey });
    expect(checked).toMatchObject({
      user: 'alice',
      deviceId: identity.deviceId,
      deviceKey: identity.signing.publicKey.toString('base64'),
      noiseKey: identity.noise.publicKey.toString('base64'),
      network: NETWORK,
    });
    expect(credential.issued).toBeGreaterThanOrEqual(before);
    expect(credential.expires - credential.issued).toBe(8 * HOUR);

    const account = started.server.accounts.getUser('alice');
    expect(account).toMatchObject({ lastLoginAt: credential.issued, lastDeviceId: identity.deviceId, lastSupernode: '192.0.2.7:5060' });

    const line = started.logLines().find((l) => l.msg === 'login');
    expect(line).toMatchObject({ user: 'alice', deviceId: identity.deviceId });
    expect(started.logText()).not.toContain(PASSWORD);
  });

  it('keeps its key in login-key.json (mode 0600) and proves it in the handshake', async () => {
    const started = await startLoginServer();
    const path = join(started.dir, LOGIN_KEY_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const identity = parseIdentity(readFileSync(path, 'utf8'), path);
    expect(formatLoginServerKey(identity)).toBe(started.server.publicKey);
    expect(started.logLines().find((l) => l.msg === 'login server started')).toMatchObject({ port: started.server.port, publicKey: started.server.publicKey, network: NETWORK });

    // The same key after a restart: credentials in the field stay valid.
    const publicKey = started.server.publicKey;
    await started.server.stop();
    const again = new LoginServer({ dataDir: started.dir, host: '127.0.0.1', port: 0, network: NETWORK, log: memoryLogger().log });
    await again.start();
    cleanups.push(() => again.stop());
    expect(again.publicKey).toBe(publicKey);
  });

  it('refuses a wrong password and an unknown user with their own codes, and never logs the password', async () => {
    const started = await startLoginServer();
    const identity = generateIdentity();
    const link = await dial(started, identity);

    const wrong = await login(started, link, identity, 'alice', WRONG).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(RemoteError);
    expect(wrong).toMatchObject({ code: 'ERR_LOGIN_BAD_PASSWORD' });
    await expect(login(started, link, identity, 'carol', WRONG)).rejects.toMatchObject({ code: 'ERR_LOGIN_UNKNOWN_USER' });
    await expect(login(started, link, identity, 'not a name!', WRONG)).rejects.toMatchObject({ code: 'ERR_LOGIN_UNKNOWN_USER' });
    // The link survives a refusal: the right password on the same link works.
    await expect(login(started, link, identity, 'alice', PASSWORD)).resolves.toMatchObject({ user: 'alice' });

    expect(started.server.accounts.getUser('bob')?.lastLoginAt).toBeNull();
    const refused = started.logLines().filter((l) => l.msg === 'login refused');
    expect(refused.map((l) => l.code)).toEqual(['ERR_LOGIN_BAD_PASSWORD', 'ERR_LOGIN_UNKNOWN_USER', 'ERR_LOGIN_UNKNOWN_USER']);
    expect(started.logText()).not.toContain(WRONG);
    expect(started.logText()).not.toContain(PASSWORD);
  });

  it('blocks a user after 5 wrong passwords, even the right one, until the block period has passed', async () => {
    let clock = Date.parse('2030-01-01T00:00:00Z');
    const now = (): number => clock;
    const started = await startLoginServer(['alice'], { now });
    const identity = generateIdentity();

    // Five wrong guesses use up a link: the server closes it after the fifth answer.
    const first = await dial(started, identity);
    for (let i = 0; i < 5; i++) {
      await expect(login(started, first, identity, 'alice', WRONG, { now })).rejects.toMatchObject({ code: 'ERR_LOGIN_BAD_PASSWORD' });
    }
    await closed(first);

    const second = await dial(started, identity);
    const blocked = await login(started, second, identity, 'alice', PASSWORD, { now }).catch((e: unknown) => e);
    expect(blocked).toMatchObject({ code: 'ERR_LOGIN_RATE_LIMITED', message: expect.stringMatching(/retry in 60 s/) });
    expect(started.server.accounts.getUser('alice')?.lastLoginAt).toBeNull();

    clock += 61_000;
    const credential = await login(started, second, identity, 'alice', PASSWORD, { now });
    expect(credential.issued).toBe(clock);
    expect(started.server.accounts.getUser('alice')?.lastLoginAt).toBe(clock);
  });

  it('limits failures per source address across user names', async () => {
    const started = await startLoginServer(['alice'], { rateLimit: { address: { maxFailures: 3, windowMs: 60_000 } } });
    const identity = generateIdentity();
    const link = await dial(started, identity);
    for (const user of ['carol', 'dave', 'erin']) {
      await expect(login(started, link, identity, user, WRONG)).rejects.toMatchObject({ code: 'ERR_LOGIN_UNKNOWN_USER' });
    }
    await expect(login(started, link, identity, 'alice', PASSWORD)).rejects.toMatchObject({
      code: 'ERR_LOGIN_RATE_LIMITED',
      message: expect.stringContaining('from this address'),
    });
  });

  it('checks concurrent guesses for one user one at a time, so none slips past the limit', async () => {
    const started = await startLoginServer(['alice']);
    const identity = generateIdentity();
    const links = [await dial(started, identity), await dial(started, identity)];
    const results = await Promise.allSettled(
      links.flatMap((link) => Array.from({ length: 5 }, () => login(started, link, identity, 'alice', WRONG))),
    );
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'));
    expect(codes.filter((c) => c === 'ERR_LOGIN_BAD_PASSWORD')).toHaveLength(5);
    expect(codes.filter((c) => c === 'ERR_LOGIN_RATE_LIMITED')).toHaveLength(5);
  });

  it('answers at most 5 login requests on one link', async () => {
    const started = await startLoginServer(['alice']);
    const identity = generateIdentity();
    const link = await dial(started, identity);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => link.request(Login, { user: `user${i}`, password: WRONG })),
    );
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'));
    expect(codes.filter((c) => c === 'ERR_LOGIN_UNKNOWN_USER')).toHaveLength(5);
    expect(codes.filter((c) => c === 'ERR_LOGIN_RATE_LIMITED')).toHaveLength(1);
    await closed(link);
  });

  it('closes a link that stays idle', async () => {
    const started = await startLoginServer(['alice'], { idleTimeoutMs: 400 });
    const busy = await dial(started);
    const idle = await dial(started);
    const opened = Date.now();
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await busy.ping();
    }
    await closed(idle);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(400);
    expect(busy.closed).toBe(false);
  });

  it('refuses a dial when the peer does not prove the expected key or is not a login server', async () => {
    const started = await startLoginServer();
    const other = generateIdentity().signing.publicKey;
    const err = await dial(started, generateIdentity(), NETWORK, other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoginError);
    expect(err).toMatchObject({ code: 'ERR_LOGIN_SERVER_KEY', message: expect.stringContaining(`127.0.0.1:${started.server.port}`) });

    // An ordinary node whose key we expect, but that does not claim the role.
    const nodeIdentity = generateIdentity();
    const node = new LinkServer({ identity: nodeIdentity, network: NETWORK, role: 'node', log: memoryLogger().log, host: '127.0.0.1', port: 0, onLink: () => undefined });
    await node.start();
    cleanups.push(() => node.stop());
    await expect(dialLoginServer({ host: '127.0.0.1', port: node.port, identity: generateIdentity(), network: NETWORK, loginServerKey: nodeIdentity.signing.publicKey, log: memoryLogger().log }))
      .rejects.toMatchObject({ code: 'ERR_LOGIN_SERVER_KEY' });
  });

  it('fails the handshake with a node of another network', async () => {
    const started = await startLoginServer();
    const err = await dial(started, generateIdentity(), 'elsewhere').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: expect.stringMatching(/^ERR_NOISE_/) });
    await expect.poll(() => started.logLines().some((l) => l.msg === 'handshake failed')).toBe(true);
  });

  it('keeps serving other clients after a garbage TCP client', async () => {
    const started = await startLoginServer();
    const garbage = connect(started.server.port, '127.0.0.1');
    await new Promise((r) => garbage.once('connect', r));
    const gone = new Promise((r) => garbage.once('close', r));
    garbage.resume();
    garbage.write('POST /login HTTP/1.1\r\nContent-Length: 9999\r\n\r\n');
    await gone;
    const identity = generateIdentity();
    const link = await dial(started, identity);
    await expect(login(started, link, identity, 'bob', PASSWORD)).resolves.toMatchObject({ user: 'bob', deviceId: identity.deviceId });
  });

  it('stops cleanly, twice, leaves no timer or socket behind, and refuses further connections', async () => {
    const handles = (): string[] => process.getActiveResourcesInfo().filter((r) => /^(Timeout|Immediate|TCP)/.test(r)).sort();
    // Whatever earlier tests closed has finished closing (each test file runs in its own process).
    await expect.poll(handles).toEqual([]);
    const started = await startLoginServer();
    const identity = generateIdentity();
    const link = await dial(started, identity);
    await login(started, link, identity, 'alice', PASSWORD);
    const port = started.server.port;
    await Promise.all([started.server.stop(), started.server.stop()]);
    await started.server.stop();
    await closed(link);
    await expect.poll(handles).toEqual([]);
    expect(started.server.port).toBe(0);
    expect(() => started.server.accounts).toThrow(expect.objectContaining({ code: 'ERR_LOGIN_NOT_STARTED' }));
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    expect(started.logLines().some((l) => l.msg === 'login server stopped')).toBe(true);
  });

  it('lets a login in progress finish before the store closes on stop', async () => {
    const started = await startLoginServer();
    const identity = generateIdentity();
    const link = await dial(started, identity);
    const attempt = login(started, link, identity, 'alice', PASSWORD).catch((e: unknown) => e);
    await expect.poll(() => started.logLines().some((l) => l.msg === 'login attempt'), { interval: 1 }).toBe(true);
    await started.server.stop();
    // Either the answer made it out before the link closed, or the link closed under it;
    // never a check that found the store already closed.
    const outcome = await attempt;
    if (outcome instanceof Error) expect(outcome).toMatchObject({ code: 'ERR_LINK_CLOSED' });
    else expect(outcome).toMatchObject({ user: 'alice' });
    await new Promise((r) => setTimeout(r, 300)); // were the check still running, it would fail about now
    expect(started.logLines().filter((l) => l.level === 50)).toEqual([]);
  });

  it('refuses to start on a port that is taken, and leaves nothing open', async () => {
    const started = await startLoginServer();
    const dir = mkdtempSync(join(tmpdir(), 'partyline-login-server-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const clash = new LoginServer({ dataDir: dir, host: '127.0.0.1', port: started.server.port, network: NETWORK, log: memoryLogger().log });
    await expect(clash.start()).rejects.toMatchObject({ code: 'ERR_LOGIN_LISTEN' });
    await clash.stop();
    // The store it opened was closed again: a second server can use the directory.
    const ok = new LoginServer({ dataDir: dir, host: '127.0.0.1', port: 0, network: NETWORK, log: memoryLogger().log });
    await ok.start();
    cleanups.push(() => ok.stop());
    expect(ok.port).toBeGreaterThan(0);
  });
});

describe('loginWithPassword', () => {
  /** A fake login server that answers every Login with whatever `answer` makes. */
  async function fakeServer(answer: (peerNoiseKey: Buffer, peer: { deviceId: string; identityKey: Buffer }, signer: Identity) => Record<string, unknown>) {
    const identity = generateIdentity();
    const server = new LinkServer({
      identity,
      network: NETWORK,
      role: LOGIN_SERVER_ROLE,
      log: memoryLogger().log,
      host: '127.0.0.1',
      port: 0,
      onLink: ({ link, peer }) => {
        link.handle(Login, () => ({ credential: answer(link.channel.remoteStaticKey, peer, identity), serverTime: Date.now() }));
      },
    });
    await server.start();
    cleanups.push(() => server.stop());
    return { server, identity };
  }

  async function loginAgainst(fake: { server: LinkServer; identity: Identity }, identity: Identity, loginServerKey = fake.identity.signing.publicKey) {
    const link = await dialLoginServer({ host: '127.0.0.1', port: fake.server.port, identity, network: NETWORK, loginServerKey: fake.identity.signing.publicKey, log: memoryLogger().log });
    cleanups.push(() => link.close());
    return loginWithPassword({ link, user: 'alice', password: PASSWORD, loginServerKey, network: NETWORK, identity });
  }

  const fields = (noiseKey: Buffer, peer: { deviceId: string; identityKey: Buffer }, now = Date.now()): UnsignedCredential => ({
    user: 'alice',
    deviceId: peer.deviceId,
    deviceKey: peer.identityKey.toString('base64'),
    noiseKey: noiseKey.toString('base64'),
    network: NETWORK,
    issued: now,
    expires: now + HOUR,
  });

  it('accepts a good credential from the fake server (the control case)', async () => {
    const fake = await fakeServer((noiseKey, peer, signer) => ({ ...issueCredential(fields(noiseKey, peer), signer.signing) }));
    const identity = generateIdentity();
    await expect(loginAgainst(fake, identity)).resolves.toMatchObject({ user: 'alice', deviceId: identity.deviceId });
  });

  it('rejects a credential signed by another key', async () => {
    const forger = generateIdentity();
    const fake = await fakeServer((noiseKey, peer) => ({ ...issueCredential(fields(noiseKey, peer), forger.signing) }));
    const err = await loginAgainst(fake, generateIdentity()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoginError);
    expect(err).toMatchObject({ code: 'ERR_LOGIN_BAD_CREDENTIAL', cause: expect.objectContaining({ code: 'ERR_CREDENTIAL_SIGNATURE' }) });
  });

  it('rejects a credential for another device, another Noise key, another user, or not yet valid', async () => {
    const stranger = generateIdentity();
    const cases: Array<[string, (noiseKey: Buffer, peer: { deviceId: string; identityKey: Buffer }) => UnsignedCredential]> = [
      ['device', (noiseKey) => fields(noiseKey, { deviceId: stranger.deviceId, identityKey: stranger.signing.publicKey })],
      ['noise key', (_noiseKey, peer) => fields(stranger.noise.publicKey, peer)],
      ['user', (noiseKey, peer) => ({ ...fields(noiseKey, peer), user: 'mallory' })],
      ['time', (noiseKey, peer) => fields(noiseKey, peer, Date.now() + 2 * HOUR)],
    ];
    for (const [what, make] of cases) {
      const fake = await fakeServer((noiseKey, peer, signer) => ({ ...issueCredential(make(noiseKey, peer), signer.signing) }));
      const err = await loginAgainst(fake, generateIdentity()).catch((e: unknown) => e);
      expect(err, what).toMatchObject({ code: 'ERR_LOGIN_BAD_CREDENTIAL' });
    }
  });

  it('rejects an answer that is not a credential at all', async () => {
    const fake = await fakeServer(() => ({ hello: 'world' }));
    await expect(loginAgainst(fake, generateIdentity())).rejects.toMatchObject({ code: 'ERR_LOGIN_BAD_CREDENTIAL' });
  });
});
