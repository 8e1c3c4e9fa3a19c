import * as crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { AccountError } from '../../src/errors.js';
import {
  checkNewPassword, DEFAULT_SCRYPT_PARAMS, formatPasswordHash, hashPassword, MAX_PASSWORD_BYTES, needsRehash,
  newPasswordProblem, parsePasswordHash, scryptMemory, verifyPassword,
} from '../../src/login/password.js';

// Wrap timingSafeEqual so the tests can see that verification goes through it.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof crypto>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const FAST = { N: 1024, r: 8, p: 1 };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AccountError);
    return (err as AccountError).code;
  }
  return undefined;
}

describe('password hashing', () => {
  it('hashes with the default parameters in the documented format and verifies', async () => {
    const stored = await hashPassword('correct horse battery');
    expect(stored).toMatch(/^scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    const parsed = parsePasswordHash(stored);
    expect(parsed.params).toEqual(DEFAULT_SCRYPT_PARAMS);
    expect(parsed.salt).toHaveLength(16);
    expect(parsed.hash).toHaveLength(32);
    expect(await verifyPassword('correct horse battery', stored)).toBe(true);
    expect(await verifyPassword('correct horse batterY', stored)).toBe(false);
  });

  it('uses a fresh salt for every hash', async () => {
    const a = await hashPassword('same password', { params: FAST });
    const b = await hashPassword('same password', { params: FAST });
    expect(a).not.toBe(b);
    expect(parsePasswordHash(a).salt.equals(parsePasswordHash(b).salt)).toBe(false);
  });

  it('verifies a hash made elsewhere: RFC 7914 section 12 vector (pleaseletmein / SodiumChloride, N=16384)', async () => {
    const derived = Buffer.from(
      '7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887',
      'hex',
    );
    const stored = formatPasswordHash({ params: { N: 16384, r: 8, p: 1 }, salt: Buffer.from('SodiumChloride'), hash: derived });
    expect(stored).toBe(`scrypt$N=16384,r=8,p=1$${Buffer.from('SodiumChloride').toString('base64').replace(/=+$/, '')}$${derived.toString('base64').replace(/=+$/, '')}`);
    expect(await verifyPassword('pleaseletmein', stored)).toBe(true);
    expect(await verifyPassword('pleaseletmeout', stored)).toBe(false);
  });

  it('compares with timingSafeEqual', async () => {
    const spy = vi.mocked(crypto.timingSafeEqual);
    const stored = await hashPassword('timing matters', { params: FAST });
    spy.mockClear();
    expect(await verifyPassword('timing matters', stored)).toBe(true);
    expect(await verifyPassword('timing matter', stored)).toBe(false);
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it('handles parameters that need more than the default maxmem (N=2^15)', async () => {
    expect(scryptMemory({ N: 2 ** 15, r: 8, p: 1 })).toBeGreaterThan(32 * 1024 * 1024);
    const stored = await hashPassword('big memory', { params: { N: 2 ** 15, r: 8, p: 1 } });
    expect(await verifyPassword('big memory', stored)).toBe(true);
  });

  it('normalises passwords to NFC', async () => {
    const stored = await hashPassword('caf\u00e9-au-lait', { params: FAST });
    expect(await verifyPassword('cafe\u0301-au-lait', stored)).toBe(true);
  });

  it('refuses empty and over-long passwords', async () => {
    await expect(hashPassword('', { params: FAST })).rejects.toMatchObject({ code: 'ERR_ACCOUNT_PASSWORD_INVALID' });
    await expect(hashPassword('x'.repeat(MAX_PASSWORD_BYTES + 1), { params: FAST })).rejects.toMatchObject({
      code: 'ERR_ACCOUNT_PASSWORD_INVALID',
      message: 'password: 1025 bytes long, at most 1024 allowed',
    });
    // 512 two-byte characters are exactly 1024 bytes: fine; one more is not.
    expect(await hashPassword('é'.repeat(512), { params: FAST })).toMatch(/^scrypt\$/);
    await expect(hashPassword('é'.repeat(513), { params: FAST })).rejects.toMatchObject({ code: 'ERR_ACCOUNT_PASSWORD_INVALID' });
    const stored = await hashPassword('something', { params: FAST });
    expect(await verifyPassword('', stored)).toBe(false);
    expect(await verifyPassword('x'.repeat(5000), stored)).toBe(false);
  });

  it('enforces the minimum length for new passwords only', () => {
    expect(newPasswordProblem('1234567')).toBe('7 characters long, at least 8 required');
    expect(newPasswordProblem('12345678')).toBeUndefined();
    expect(newPasswordProblem('ééééééé')).toBe('7 characters long, at least 8 required');
    expect(codeOf(() => checkNewPassword('short'))).toBe('ERR_ACCOUNT_PASSWORD_INVALID');
    expect(codeOf(() => checkNewPassword('long enough'))).toBeUndefined();
  });

  it.each([
    ['bcrypt', '$2b$12$abcdefghijklmnopqrstuu', /unknown scheme "", expected "scrypt"/],
    ['argon2', 'argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', /unknown scheme "argon2id"/],
    ['plain text', 'hunter2', /unknown scheme "hunter2"/],
    ['empty', '', /unknown scheme ""/],
    ['missing hash', 'scrypt$N=16384,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA', /expected scrypt\$N=/],
    ['N not a power of two', 'scrypt$N=1000,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', /N=1000, expected a power of two/],
    ['N too large', 'scrypt$N=2097152,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', /N=2097152/],
    ['r zero', 'scrypt$N=1024,r=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', /r=0, expected 1 to 32/],
    ['p too large', 'scrypt$N=1024,r=8,p=99$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', /p=99, expected 1 to 16/],
    ['salt too short', 'scrypt$N=1024,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', /salt is 4 bytes/],
    ['hash too short', 'scrypt$N=1024,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA', /hash is 4 bytes/],
    ['bad base64', 'scrypt$N=1024,r=8,p=1$c2Fsd*Nh$aGFzaA', /expected scrypt\$N=/],
    ['parameters out of order', 'scrypt$r=8,N=1024,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', /expected scrypt\$N=/],
  ])('rejects a stored hash with %s', async (_what, stored, message) => {
    let caught: unknown;
    try {
      parsePasswordHash(stored);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AccountError);
    expect((caught as AccountError).code).toBe('ERR_ACCOUNT_HASH_FORMAT');
    expect((caught as AccountError).message).toMatch(message);
    await expect(verifyPassword('whatever1', stored)).rejects.toMatchObject({ code: 'ERR_ACCOUNT_HASH_FORMAT' });
  });

  it('parses and re-formats to the same string', async () => {
    const stored = await hashPassword('round trip', { params: FAST });
    expect(formatPasswordHash(parsePasswordHash(stored))).toBe(stored);
  });

  it('tells when a hash is weaker than the current parameters', async () => {
    const weak = await hashPassword('upgrade me', { params: FAST });
    expect(needsRehash(weak)).toBe(true);
    expect(needsRehash(weak, FAST)).toBe(false);
  });
});
