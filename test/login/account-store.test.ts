import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import * as crypto from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AccountError } from '../../src/errors.js';
import { ACCOUNT_DB_FILE, AccountStore } from '../../src/login/account-store.js';
import { ACCOUNT_DB_VERSION } from '../../src/login/account-schema.js';
import { parsePasswordHash } from '../../src/login/password.js';

// Wrap scrypt so a test can count the hashing work done per login check.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof crypto>();
  return { ...actual, scrypt: vi.fn(actual.scrypt) };
});

const require = createRequire(import.meta.url);
interface RawDb {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  prepare(sql: string): { get(...p: unknown[]): unknown; run(...p: unknown[]): unknown };
  exec(sql: string): unknown;
  close(): void;
}
const Database = require('better-sqlite3') as new (file: string, options?: { readonly?: boolean }) => RawDb;

const FAST = { N: 1024, r: 8, p: 1 };

let dir: string;
let clock: number;
const stores: AccountStore[] = [];

function open(options: { scrypt?: { N: number; r: number; p: number } } = {}): AccountStore {
  const store = AccountStore.open(dir, { now: () => clock, scrypt: FAST, ...options });
  stores.push(store);
  return store;
}

function openError(): AccountError {
  try {
    open();
  } catch (err) {
    expect(err).toBeInstanceOf(AccountError);
    return err as AccountError;
  }
  throw new Error('open() succeeded');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'partyline-accounts-'));
  clock = 1_700_000_000_000;
});

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AccountStore', () => {
  it('adds, gets and lists users, normalising names', async () => {
    const store = open();
    const added = await store.addUser('Alice', 'alice password');
    expect(added).toEqual({ name: 'alice', createdAt: clock, lastLoginAt: null, lastSupernode: null, lastDeviceId: null });
    clock += 1000;
    await store.addUser('bob', 'bob password');
    expect(store.getUser('ALICE')).toEqual(added);
    expect(store.getUser('carol')).toBeUndefined();
    expect(store.listUsers().map((u) => u.name)).toEqual(['alice', 'bob']);
    expect(store.listUsers()[1]?.createdAt).toBe(clock);
    // Never the hash.
    expect(JSON.stringify(store.listUsers())).not.toMatch(/scrypt/);
    expect(Object.keys(store.getUser('bob') ?? {}).sort()).toEqual(['createdAt', 'lastDeviceId', 'lastLoginAt', 'lastSupernode', 'name']);
  });

  it('refuses a duplicate name, also after normalisation', async () => {
    const store = open();
    await store.addUser('alice', 'alice password');
    await expect(store.addUser('alice', 'other password')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_EXISTS', message: 'user "alice": already exists' });
    await expect(store.addUser(' ALICE ', 'other password')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_EXISTS' });
    expect(await store.verifyPassword('alice', 'alice password')).toBe(true);
  });

  it('refuses bad names and short passwords', async () => {
    const store = open();
    await expect(store.addUser('Al ice', 'long enough')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_NAME_INVALID' });
    await expect(store.addUser('alice', 'short')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_PASSWORD_INVALID' });
    expect(store.listUsers()).toEqual([]);
  });

  it('verifies passwords', async () => {
    const store = open();
    await store.addUser('alice', 'alice password');
    expect(await store.verifyPassword('alice', 'alice password')).toBe(true);
    expect(await store.verifyPassword('Alice', 'alice password')).toBe(true);
    expect(await store.verifyPassword('alice', 'Alice password')).toBe(false);
    expect(await store.verifyPassword('nobody-here', 'alice password')).toBe(false);
    expect(await store.verifyPassword('Al ice', 'alice password')).toBe(false);
    expect(await store.verifyPassword('alice', '')).toBe(false);
  });

  it('does the same scrypt work for unknown users and invalid names as for a wrong password', async () => {
    const params = { N: 2048, r: 8, p: 1 };
    const store = open({ scrypt: params });
    await store.addUser('alice', 'alice password');
    const spy = vi.mocked(crypto.scrypt);
    for (const name of ['alice', 'zed', 'Al ice']) {
      spy.mockClear();
      expect(await store.verifyPassword(name, 'wrong password')).toBe(false);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0]?.[3]).toMatchObject(params);
    }
  });

  it('deletes users and their buddy entries', async () => {
    const store = open();
    await store.addUser('alice', 'alice password');
    await store.addUser('bob', 'bob password');
    store.addBuddy('alice', 'bob');
    store.addBuddy('bob', 'alice');
    store.deleteUser('BOB');
    expect(store.getUser('bob')).toBeUndefined();
    expect(store.listBuddies('alice')).toEqual([]);
    expect(() => store.deleteUser('bob')).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_UNKNOWN', message: 'user "bob": no such user' }));
    expect(await store.verifyPassword('bob', 'bob password')).toBe(false);
  });

  it('changes passwords', async () => {
    const store = open();
    await store.addUser('alice', 'old password');
    await store.setPassword('alice', 'new password');
    expect(await store.verifyPassword('alice', 'old password')).toBe(false);
    expect(await store.verifyPassword('alice', 'new password')).toBe(true);
    await expect(store.setPassword('zed', 'new password')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_UNKNOWN' });
    await expect(store.setPassword('alice', '1234')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_PASSWORD_INVALID' });
    expect(await store.verifyPassword('alice', 'new password')).toBe(true);
  });

  it('records logins', async () => {
    const store = open();
    await store.addUser('alice', 'alice password');
    store.recordLogin('alice', { at: clock + 5000, supernode: '192.0.2.7:40000', deviceId: 'dev-1' });
    expect(store.getUser('alice')).toMatchObject({ lastLoginAt: clock + 5000, lastSupernode: '192.0.2.7:40000', lastDeviceId: 'dev-1' });
    clock += 60_000;
    store.recordLogin('Alice', { supernode: '[2001:DB8:0::1]:443' });
    expect(store.getUser('alice')).toMatchObject({ lastLoginAt: clock, lastSupernode: '[2001:db8::1]:443', lastDeviceId: null });
    expect(() => store.recordLogin('zed', {})).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_UNKNOWN' }));
    expect(() => store.recordLogin('alice', { supernode: 'no-port' })).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_LOGIN_INVALID' }));
    expect(() => store.recordLogin('alice', { supernode: 'host:70000' })).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_LOGIN_INVALID' }));
    expect(() => store.recordLogin('alice', { deviceId: 'a\nb' })).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_LOGIN_INVALID' }));
    expect(() => store.recordLogin('alice', { at: -1 })).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_LOGIN_INVALID' }));
    expect(store.getUser('alice')?.lastSupernode).toBe('[2001:db8::1]:443');
  });

  it('keeps buddy lists', async () => {
    const store = open();
    for (const name of ['alice', 'bob', 'carol']) await store.addUser(name, `${name} password`);
    expect(store.addBuddy('alice', 'carol')).toBe(true);
    clock += 10;
    expect(store.addBuddy('alice', 'Bob')).toBe(true);
    expect(store.addBuddy('alice', 'bob')).toBe(false);
    expect(store.listBuddies('alice')).toEqual([{ name: 'bob', addedAt: clock }, { name: 'carol', addedAt: clock - 10 }]);
    expect(store.listBuddies('bob')).toEqual([]);
    expect(() => store.addBuddy('alice', 'zed')).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_UNKNOWN' }));
    expect(() => store.addBuddy('zed', 'alice')).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_UNKNOWN' }));
    expect(() => store.addBuddy('alice', 'alice')).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_BUDDY_SELF' }));
    expect(store.removeBuddy('alice', 'carol')).toBe(true);
    expect(store.removeBuddy('alice', 'carol')).toBe(false);
    expect(store.listBuddies('alice').map((b) => b.name)).toEqual(['bob']);
  });

  it('uses WAL, a schema version and an application id', async () => {
    const store = open();
    await store.addUser('alice', 'alice password');
    store.close();
    const raw = new Database(join(dir, ACCOUNT_DB_FILE));
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(ACCOUNT_DB_VERSION);
      expect(raw.pragma('application_id', { simple: true })).toBe(0x50746c41);
      const hash = (raw.prepare('SELECT password_hash FROM accounts WHERE name = ?').get('alice') as { password_hash: string }).password_hash;
      expect(parsePasswordHash(hash).params).toEqual(FAST);
    } finally {
      raw.close();
    }
  });

  it('creates the database file with mode 0600 and tightens a looser one', async () => {
    const store = open();
    await store.addUser('alice', 'alice password');
    const path = join(dir, ACCOUNT_DB_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // SQLite gives the WAL and shared-memory files the database file's mode.
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}-shm`).mode & 0o777).toBe(0o600);
    store.close();
    chmodSync(path, 0o644);
    open().close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('creates a missing data directory with mode 0700', () => {
    dir = join(dir, 'nested', 'login');
    open().close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, ACCOUNT_DB_FILE)).isFile()).toBe(true);
  });

  it('opens only an existing database with create: false', async () => {
    const missing = join(dir, 'nowhere');
    expect(() => AccountStore.open(missing, { create: false })).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_DB_MISSING' }));
    expect(existsSync(missing)).toBe(false);
    open().close();
    const store = AccountStore.open(dir, { create: false });
    expect(store.listUsers()).toEqual([]);
    store.close();
  });

  it('keeps data across reopen', async () => {
    const store = open();
    await store.addUser('alice', 'alice password');
    await store.addUser('bob', 'bob password');
    store.addBuddy('alice', 'bob');
    store.recordLogin('alice', { at: clock + 1, supernode: 'sn1.example:443', deviceId: 'dev-9' });
    store.close();
    const reopened = open();
    expect(reopened.listUsers().map((u) => u.name)).toEqual(['alice', 'bob']);
    expect(reopened.getUser('alice')).toMatchObject({ lastLoginAt: clock + 1, lastSupernode: 'sn1.example:443', lastDeviceId: 'dev-9' });
    expect(reopened.listBuddies('alice').map((b) => b.name)).toEqual(['bob']);
    expect(await reopened.verifyPassword('alice', 'alice password')).toBe(true);
  });

  it('re-hashes a weaker stored hash after a good login', async () => {
    const weak = open();
    await weak.addUser('alice', 'alice password');
    weak.close();
    const stronger = open({ scrypt: { N: 2048, r: 8, p: 1 } });
    expect(await stronger.verifyPassword('alice', 'alice password')).toBe(true);
    stronger.close();
    const raw = new Database(join(dir, ACCOUNT_DB_FILE), { readonly: true });
    try {
      const hash = (raw.prepare('SELECT password_hash FROM accounts WHERE name = ?').get('alice') as { password_hash: string }).password_hash;
      expect(parsePasswordHash(hash).params.N).toBe(2048);
    } finally {
      raw.close();
    }
    expect(await open({ scrypt: { N: 2048, r: 8, p: 1 } }).verifyPassword('alice', 'alice password')).toBe(true);
  });

  it.each([
    ['random bytes', Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) % 256))],
    ['a short text', Buffer.from('this is not a database\n')],
    ['a damaged header', Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(84, 0xff), Buffer.alloc(3996, 0x41)])],
  ])('refuses a file of %s and leaves it untouched', (_what, garbage) => {
    const path = join(dir, ACCOUNT_DB_FILE);
    writeFileSync(path, garbage, { mode: 0o600 });
    const err = openError();
    expect(err.code).toBe('ERR_ACCOUNT_DB_CORRUPT');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/left untouched|integrity/);
    expect(readFileSync(path).equals(garbage)).toBe(true);
  });

  it('refuses a database whose pages are damaged', async () => {
    const store = open();
    for (let i = 0; i < 80; i++) await store.addUser(`user${i}`, 'password-' + 'x'.repeat(200));
    store.close();
    const path = join(dir, ACCOUNT_DB_FILE);
    // Fold the WAL into the main file so the damage below lands in real pages.
    const raw = new Database(path);
    raw.pragma('wal_checkpoint(TRUNCATE)');
    raw.pragma('journal_mode = DELETE');
    raw.close();
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    for (let at = 2 * pageSize; at < bytes.length; at += pageSize) bytes.fill(0x5a, at + 8, at + 200);
    writeFileSync(path, bytes);
    const err = openError();
    expect(err.code).toBe('ERR_ACCOUNT_DB_CORRUPT');
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it('refuses an unreadable path', () => {
    mkdirSync(join(dir, ACCOUNT_DB_FILE));
    const err = openError();
    expect(err.code).toBe('ERR_ACCOUNT_DB_UNREADABLE');
    expect(err.message).toContain(join(dir, ACCOUNT_DB_FILE));
    expect(statSync(join(dir, ACCOUNT_DB_FILE)).isDirectory()).toBe(true);
  });

  it('refuses another application\'s database', () => {
    const raw = new Database(join(dir, ACCOUNT_DB_FILE));
    raw.exec('CREATE TABLE notes (body TEXT)');
    raw.close();
    expect(openError().code).toBe('ERR_ACCOUNT_DB_FOREIGN');
  });

  it('refuses a database from a newer version', () => {
    open().close();
    const raw = new Database(join(dir, ACCOUNT_DB_FILE));
    raw.pragma(`user_version = ${ACCOUNT_DB_VERSION + 1}`);
    raw.close();
    const err = openError();
    expect(err.code).toBe('ERR_ACCOUNT_DB_VERSION');
    expect(err.message).toMatch(/newer partyline/);
  });

  it('fails every call after close, and closing twice is harmless', async () => {
    const store = open();
    store.close();
    store.close();
    expect(() => store.listUsers()).toThrow(expect.objectContaining({ code: 'ERR_ACCOUNT_CLOSED' }));
    await expect(store.addUser('alice', 'alice password')).rejects.toMatchObject({ code: 'ERR_ACCOUNT_CLOSED' });
  });
});
