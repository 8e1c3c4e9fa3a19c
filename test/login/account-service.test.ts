import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import type { Link } from '../../src/link/link.js';
import { dialLink } from '../../src/link/transport.js';
import { AccountStore } from '../../src/login/account-store.js';
import { dialLoginServer, loginWithPassword } from '../../src/login/client.js';
import { BuddiesAdd, BuddiesList, BuddiesRemove, DirectoryLookup } from '../../src/login/messages.js';
import { LoginServer } from '../../src/login/server.js';
import { memoryLogger } from '../helpers/log.js';

const PASSWORD = 'correct horse battery';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'pl-accounts-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = AccountStore.open(dir, { scrypt: { N: 1024, r: 8, p: 1 } });
  for (const user of ['alice', 'bob', 'carol']) await store.addUser(user, PASSWORD);
  store.close();
  const server = new LoginServer({ dataDir: dir, host: '127.0.0.1', port: 0, network: 'lab', log: memoryLogger().log });
  await server.start();
  cleanups.push(() => server.stop());
  const key = Buffer.from(server.publicKey, 'base64');
  const loginAs = async (user: string, identity: Identity = generateIdentity()): Promise<{ identity: Identity; credential: Credential }> => {
    const link = await dialLoginServer({ host: '127.0.0.1', port: server.port, identity, network: 'lab', loginServerKey: key, log: memoryLogger().log });
    try {
      return { identity, credential: await loginWithPassword({ link, user, password: PASSWORD, supernode: '127.0.0.1:4000', loginServerKey: key, network: 'lab', identity }) };
    } finally {
      link.close();
    }
  };
  const connectWith = async (identity: Identity, credential?: Credential): Promise<Link> => {
    const { link } = await dialLink({ identity, network: 'lab', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port: server.port, ...(credential ? { credential: () => credential } : {}) });
    cleanups.push(() => link.close());
    return link;
  };
  return { server, loginAs, connectWith };
}

describe('login server account requests (directory fallback, buddy lists)', () => {
  it('answers the directory with the last login and supernode', async () => {
    const { loginAs, connectWith } = await setup();
    const alice = await loginAs('alice');
    await loginAs('bob');
    const link = await connectWith(alice.identity, alice.credential);
    const bob = await link.request(DirectoryLookup, { user: 'Bob' });
    expect(bob).toMatchObject({ user: 'bob', exists: true, lastSupernode: '127.0.0.1:4000' });
    expect(bob.lastLogin).toBeGreaterThan(Date.now() - 60_000);
    expect(await link.request(DirectoryLookup, { user: 'carol' })).toEqual({ user: 'carol', exists: true, lastLogin: null, lastSupernode: null });
    expect(await link.request(DirectoryLookup, { user: 'nobody' })).toEqual({ user: 'nobody', exists: false, lastLogin: null, lastSupernode: null });
  });

  it('keeps one buddy list per user, the same for every device', async () => {
    const { loginAs, connectWith } = await setup();
    const phone = await loginAs('alice');
    const laptop = await loginAs('alice');
    const onPhone = await connectWith(phone.identity, phone.credential);
    expect(await onPhone.request(BuddiesAdd, { user: 'bob' })).toMatchObject({ buddies: [{ user: 'bob' }] });
    await onPhone.request(BuddiesAdd, { user: 'carol' });
    const onLaptop = await connectWith(laptop.identity, laptop.credential);
    expect((await onLaptop.request(BuddiesList, {})).buddies.map((b) => b.user)).toEqual(['bob', 'carol']);
    expect((await onLaptop.request(BuddiesRemove, { user: 'bob' })).buddies.map((b) => b.user)).toEqual(['carol']);
    await expect(onLaptop.request(BuddiesAdd, { user: 'ghost' })).rejects.toMatchObject({ code: 'ERR_ACCOUNT_UNKNOWN' });
    await expect(onLaptop.request(BuddiesAdd, { user: 'alice' })).rejects.toMatchObject({ code: 'ERR_ACCOUNT_BUDDY_SELF' });
    // Bob's list is his own.
    const bob = await loginAs('bob');
    expect((await (await connectWith(bob.identity, bob.credential)).request(BuddiesList, {})).buddies).toEqual([]);
  });

  it('refuses without a credential, or with one presented from another device key', async () => {
    const { loginAs, connectWith } = await setup();
    const anonymous = await connectWith(generateIdentity());
    await expect(anonymous.request(BuddiesList, {})).rejects.toMatchObject({ code: 'ERR_NOT_AUTHENTICATED', message: expect.stringContaining('log in first') });
    await expect(anonymous.request(DirectoryLookup, { user: 'bob' })).rejects.toMatchObject({ code: 'ERR_NOT_AUTHENTICATED' });
    const alice = await loginAs('alice');
    // Somebody else's device presenting alice's credential: the server's handshake check refuses it and closes the link.
    const thief = await connectWith(generateIdentity(), alice.credential);
    await expect(thief.request(BuddiesList, {})).rejects.toMatchObject({ code: 'ERR_LINK_CLOSED' });
  });
});
