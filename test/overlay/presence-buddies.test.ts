import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity } from '../../src/crypto/identity.js';
import type { Link } from '../../src/link/link.js';
import { dialLink, LinkServer } from '../../src/link/transport.js';
import { AccountStore } from '../../src/login/account-store.js';
import { dialLoginServer, loginWithPassword } from '../../src/login/client.js';
import { LoginServer } from '../../src/login/server.js';
import { BUDDIES_FILE, BuddyList } from '../../src/overlay/presence/buddies.js';
import { isFinalLoginError } from '../../src/overlay/credential-keeper.js';
import { openLoginLink } from '../../src/overlay/login-link.js';
import { LoginTunnelRelay } from '../../src/overlay/tunnel.js';
import { memoryLogger } from '../helpers/log.js';
import { until } from '../helpers/until.js';

/**
 * The buddy list on a phone against a real login server in this process:
 * straight to it, and through a supernode's login tunnel when the direct
 * way is blocked (a closed port here).
 */
const NETWORK = 'test';
const PASSWORD = 'correct horse battery';
const log = memoryLogger().log;

describe('BuddyList against the login server', () => {
  let dir: string;
  let server: LoginServer;
  let key: Buffer;
  let relay: LoginTunnelRelay;
  let supernode: LinkServer;
  let tunnelVia: Link;
  const identity = generateIdentity();
  let credential: Credential;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pl-buddies-'));
    const store = AccountStore.open(dir);
    for (const user of ['alice', 'bob', 'carol']) await store.addUser(user, PASSWORD);
    store.close();
    server = new LoginServer({ dataDir: dir, host: '127.0.0.1', port: 0, network: NETWORK, log });
    await server.start();
    key = Buffer.from(server.publicKey, 'base64');
    const link = await dialLoginServer({ host: '127.0.0.1', port: server.port, identity, network: NETWORK, loginServerKey: key, log });
    credential = await loginWithPassword({ link, user: 'alice', password: PASSWORD, loginServerKey: key, network: NETWORK, identity });
    link.close();
    relay = new LoginTunnelRelay({ loginServer: { host: '127.0.0.1', port: server.port }, log });
    supernode = new LinkServer({ identity: generateIdentity(), network: NETWORK, role: 'supernode', log, host: '127.0.0.1', port: 0, onLink: ({ link: l }) => relay.serve(l) });
    await supernode.start();
    tunnelVia = (await dialLink({ identity, network: NETWORK, role: 'node', log, host: '127.0.0.1', port: supernode.port })).link;
  });

  afterAll(async () => {
    tunnelVia?.close();
    await supernode?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const list = (options: { direct?: boolean; via?: boolean; stateDir?: string } = {}) => new BuddyList({
    stateDir: options.stateDir ?? dir,
    log,
    open: () => openLoginLink({
      identity, network: NETWORK, loginServerKey: key, credential: () => credential, log,
      // A closed port stands for a firewall that blocks the login server.
      loginServer: { host: '127.0.0.1', port: options.direct === false ? 1 : server.port },
      via: () => (options.via ? tunnelVia : undefined),
    }),
  });

  it('adds, lists and removes buddies on the login server, and keeps the last list on disk', async () => {
    const buddies = list();
    await buddies.load('alice');
    expect(await buddies.add('Bob')).toEqual([{ user: 'bob', addedAt: expect.any(Number) }]);
    expect((await buddies.add('carol')).map((b) => b.user)).toEqual(['bob', 'carol']);
    expect((await buddies.remove('carol')).map((b) => b.user)).toEqual(['bob']);
    // Another device of alice (another BuddyList) reads the same list.
    const other = list({ stateDir: mkdtempSync(join(tmpdir(), 'pl-buddies-other-')) });
    await other.load('alice');
    expect(other.list).toEqual([]);
    expect((await other.refresh()).map((b) => b.user)).toEqual(['bob']);
    // Saved, for when the login server is down; a list saved for another account is not used.
    const saved = JSON.parse(await readFile(join(dir, BUDDIES_FILE), 'utf8')) as { user: string; buddies: unknown[] };
    expect(saved).toMatchObject({ version: 1, user: 'alice', buddies: [{ user: 'bob' }] });
    const restarted = list();
    await restarted.load('alice');
    expect(restarted.list.map((b) => b.user)).toEqual(['bob']);
    const someoneElse = list();
    await someoneElse.load('carol');
    expect(someoneElse.list).toEqual([]);
  });

  it('says clearly why a buddy cannot be added', async () => {
    const buddies = list();
    await buddies.load('alice');
    await expect(buddies.add('nobody-here')).rejects.toMatchObject({ code: 'ERR_BUDDY_UNKNOWN_USER', message: expect.stringContaining('no such user "nobody-here"') });
    await expect(buddies.add('alice')).rejects.toMatchObject({ code: 'ERR_BUDDY_SELF' });
    await expect(buddies.add('not a name')).rejects.toMatchObject({ code: 'ERR_BUDDY_NAME' });
    const unreachable = list({ direct: false });
    await expect(unreachable.refresh()).rejects.toMatchObject({ code: 'ERR_BUDDY_UNREACHABLE' });
  });

  it('goes through the supernode\'s login tunnel when the login server cannot be reached directly, and lets go of the tunnel', async () => {
    const buddies = list({ direct: false, via: true });
    await buddies.load('alice');
    expect((await buddies.add('carol')).map((b) => b.user)).toEqual(['bob', 'carol']);
    expect((await buddies.refresh()).map((b) => b.user)).toEqual(['bob', 'carol']);
    // Each request used a tunnel and gave it back: the relay's limit of two per link is never reached.
    await until('the tunnels to close', async () => relay.openTunnels === 0, 2000);
    for (let i = 0; i < 3; i++) await buddies.refresh();
    await until('the tunnels to close again', async () => relay.openTunnels === 0, 2000);
  });

  it('opens the login link with or without a credential, says which way won, and passes final refusals on only when asked', async () => {
    const open = (options: Partial<Parameters<typeof openLoginLink>[0]> = {}) => openLoginLink({
      identity, network: NETWORK, loginServerKey: key, log, loginServer: { host: '127.0.0.1', port: server.port }, via: () => undefined, ...options,
    });
    // The account requests need the credential: none yet, no link.
    await expect(open({ credential: () => undefined })).rejects.toMatchObject({ code: 'ERR_NOT_LOGGED_IN' });
    // Logging in (CredentialKeeper) shows none; either way is reported.
    const direct = await open();
    expect(direct.path).toBe('direct');
    direct.link.close();
    const tunnelled = await open({ loginServer: { host: '127.0.0.1', port: 1 }, via: () => tunnelVia });
    expect(tunnelled.path).toBe('tunnel');
    tunnelled.link.close();
    // A login server that proves another key: ERR_LOGIN_SERVER_KEY only for a caller that counts it as final.
    const wrongKey = generateIdentity().signing.publicKey;
    await expect(open({ loginServerKey: wrongKey })).rejects.toMatchObject({ code: 'ERR_LOGIN_UNREACHABLE' });
    await expect(open({ loginServerKey: wrongKey, isFinal: isFinalLoginError })).rejects.toMatchObject({ code: 'ERR_LOGIN_SERVER_KEY' });
    await until('the tunnel to close', async () => relay.openTunnels === 0, 2000);
  });

  it('ignores an unreadable saved list', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'pl-buddies-bad-'));
    await writeFile(join(stateDir, BUDDIES_FILE), '{"version":1,"user":"alice","buddies":[{"user":""}]}');
    const mem = memoryLogger();
    const buddies = new BuddyList({ stateDir, log: mem.log, open: () => Promise.reject(new Error('unused')) });
    await buddies.load('alice');
    expect(buddies.list).toEqual([]);
    expect(mem.lines().some((l) => l.msg === 'saved buddy list is not usable: ignored (the login server has the list)')).toBe(true);
    rmSync(stateDir, { recursive: true, force: true });
  });
});
