import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { AccountError } from '../errors.js';

/**
 * Password hashing for the login server: scrypt (RFC 7914) from node:crypto
 * with a random 16-byte salt per hash, stored as one self-describing string
 *
 *     scrypt$N=16384,r=8,p=1$<salt, base64>$<hash, base64>
 *
 * (standard base64 without padding). Parameters travel with the hash, so they
 * can be raised later: {@link needsRehash} tells when a stored hash is weaker
 * than the current parameters and can be replaced after a successful login.
 *
 * Passwords are Unicode-normalised to NFC before hashing (RFC 8265 OpaqueString),
 * so the same password typed on different systems verifies. A password is 1 to
 * {@link MAX_PASSWORD_BYTES} bytes of UTF-8; new passwords (`user add`,
 * `user passwd`) must also have at least {@link MIN_PASSWORD_LENGTH} characters.
 */

export interface ScryptParams {
  /** CPU/memory cost, a power of two. Memory used is 128 · N · r bytes. */
  readonly N: number;
  /** Block size. */
  readonly r: number;
  /** Parallelisation. */
  readonly p: number;
}

/**
 * N = 2^14, r = 8, p = 1: 16 MiB and ~45 ms per hash on an x86-64 server
 * core, roughly 2–4 times that on a Raspberry Pi 4/5 (Cortex-A72/A76).
 * N = 2^15 doubles both (~90 ms here, 200–350 ms on a Pi 4), which is too
 * slow for a login server on a Pi that also hashes a dummy for unknown users.
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = Object.freeze({ N: 2 ** 14, r: 8, p: 1 });

/** Minimum length, in Unicode code points, of a new password. */
export const MIN_PASSWORD_LENGTH = 8;
/** Maximum length of any password in UTF-8 bytes (bounds the work per login attempt). */
export const MAX_PASSWORD_BYTES = 1024;

export const SALT_BYTES = 16;
export const HASH_BYTES = 32;

/** Bounds accepted when parsing a stored hash, so that a bad row cannot make us allocate gigabytes. */
const LIMITS = { maxLogN: 20, maxR: 32, maxP: 16, minSalt: 8, maxSalt: 64, minHash: 16, maxHash: 64 } as const;

export interface PasswordHash {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

export interface HashPasswordOptions {
  params?: ScryptParams;
  /** Only for tests; normally a fresh random salt. */
  salt?: Buffer;
}

/**
 * Hash a password for storage.
 * @throws AccountError `ERR_ACCOUNT_PASSWORD_INVALID` when empty or longer than {@link MAX_PASSWORD_BYTES}.
 */
export async function hashPassword(password: string, options: HashPasswordOptions = {}): Promise<string> {
  const problem = passwordProblem(password);
  if (problem !== undefined) throw new AccountError('ERR_ACCOUNT_PASSWORD_INVALID', `password: ${problem}`);
  const params = options.params ?? DEFAULT_SCRYPT_PARAMS;
  checkParams(params, 'scrypt parameters');
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, params, HASH_BYTES);
  return formatPasswordHash({ params, salt, hash });
}

/**
 * Check a password against a stored hash, comparing in constant time.
 * Returns false (without hashing) for a password that could never have been
 * stored: empty or longer than {@link MAX_PASSWORD_BYTES}.
 * @throws AccountError `ERR_ACCOUNT_HASH_FORMAT` when `stored` is not a hash this module wrote.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parsePasswordHash(stored);
  if (passwordProblem(password) !== undefined) return false;
  const candidate = await derive(password, parsed.salt, parsed.params, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash);
}

/** True when `stored` uses other parameters than `params` (re-hash it after the next successful login). */
export function needsRehash(stored: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): boolean {
  const parsed = parsePasswordHash(stored);
  return parsed.params.N !== params.N || parsed.params.r !== params.r || parsed.params.p !== params.p
    || parsed.salt.length < SALT_BYTES || parsed.hash.length < HASH_BYTES;
}

/** Why `password` cannot be used at all (empty, too long), or undefined. */
export function passwordProblem(password: string): string | undefined {
  if (password.length === 0) return 'empty';
  const bytes = Buffer.byteLength(password.normalize('NFC'), 'utf8');
  if (bytes > MAX_PASSWORD_BYTES) return `${bytes} bytes long, at most ${MAX_PASSWORD_BYTES} allowed`;
  return undefined;
}

/** Why `password` is not acceptable as a new password, or undefined. */
export function newPasswordProblem(password: string): string | undefined {
  const problem = passwordProblem(password);
  if (problem !== undefined) return problem;
  const length = [...password.normalize('NFC')].length;
  if (length < MIN_PASSWORD_LENGTH) return `${length} characters long, at least ${MIN_PASSWORD_LENGTH} required`;
  return undefined;
}

/** @throws AccountError `ERR_ACCOUNT_PASSWORD_INVALID` unless `password` is acceptable as a new password. */
export function checkNewPassword(password: string): void {
  const problem = newPasswordProblem(password);
  if (problem !== undefined) throw new AccountError('ERR_ACCOUNT_PASSWORD_INVALID', `password: ${problem}`);
}

/** Encode as `scrypt$N=…,r=…,p=…$<salt>$<hash>`. */
export function formatPasswordHash(value: PasswordHash): string {
  const { N, r, p } = value.params;
  return `scrypt$N=${N},r=${r},p=${p}$${b64(value.salt)}$${b64(value.hash)}`;
}

const FORMAT = /^scrypt\$N=([0-9]{1,10}),r=([0-9]{1,4}),p=([0-9]{1,4})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/**
 * Decode a stored hash string.
 * @throws AccountError `ERR_ACCOUNT_HASH_FORMAT` naming what is wrong (never echoing the hash itself).
 */
export function parsePasswordHash(stored: string): PasswordHash {
  const scheme = stored.split('$', 1)[0] ?? '';
  if (scheme !== 'scrypt') {
    throw formatError(`unknown scheme ${JSON.stringify(scheme.slice(0, 20))}, expected "scrypt"`);
  }
  const m = FORMAT.exec(stored);
  if (m === null) throw formatError('expected scrypt$N=<n>,r=<r>,p=<p>$<salt base64>$<hash base64>');
  const params: ScryptParams = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  checkParams(params, 'stored password hash');
  const salt = unb64(m[4] ?? '');
  const hash = unb64(m[5] ?? '');
  if (salt.length < LIMITS.minSalt || salt.length > LIMITS.maxSalt) {
    throw formatError(`salt is ${salt.length} bytes, expected ${LIMITS.minSalt} to ${LIMITS.maxSalt}`);
  }
  if (hash.length < LIMITS.minHash || hash.length > LIMITS.maxHash) {
    throw formatError(`hash is ${hash.length} bytes, expected ${LIMITS.minHash} to ${LIMITS.maxHash}`);
  }
  return { params, salt, hash };
}

function checkParams(params: ScryptParams, what: string): void {
  const { N, r, p } = params;
  const powerOfTwo = Number.isInteger(N) && N >= 2 && (N & (N - 1)) === 0 && N <= 2 ** LIMITS.maxLogN;
  if (!powerOfTwo) throw formatError(`N=${N}, expected a power of two from 2 to 2^${LIMITS.maxLogN}`, what);
  if (!Number.isInteger(r) || r < 1 || r > LIMITS.maxR) throw formatError(`r=${r}, expected 1 to ${LIMITS.maxR}`, what);
  if (!Number.isInteger(p) || p < 1 || p > LIMITS.maxP) throw formatError(`p=${p}, expected 1 to ${LIMITS.maxP}`, what);
}

function formatError(detail: string, what = 'stored password hash'): AccountError {
  return new AccountError('ERR_ACCOUNT_HASH_FORMAT', `${what}: ${detail}`);
}

function derive(password: string, salt: Buffer, params: ScryptParams, keylen: number): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: scryptMemory(params) };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keylen, options, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/**
 * The `maxmem` scrypt needs: OpenSSL refuses when 128·r·(N+2) + 128·r·p
 * exceeds it, and Node's default (32 MiB) is too small from N = 2^15, r = 8.
 */
export function scryptMemory(params: ScryptParams): number {
  return 128 * params.r * (params.N + 2) + 128 * params.r * params.p + 1024 * 1024;
}

function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}

function unb64(text: string): Buffer {
  return Buffer.from(text, 'base64');
}
