import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PartylineError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/**
 * A device's long-term identity: an Ed25519 key for signatures (the key the
 * login server certifies) and an X25519 key for Noise. Both are raw 32-byte
 * keys. The device id is derived from the Ed25519 public key, so it cannot be
 * claimed without the private key.
 */
export interface Identity {
  deviceId: string;
  signing: { publicKey: Buffer; privateKey: Buffer };
  noise: { publicKey: Buffer; privateKey: Buffer };
}

export class IdentityError extends PartylineError {
  constructor(code: `ERR_IDENTITY_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export const IDENTITY_FILE = 'identity.json';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Uint8Array): string {
  const out: string[] = [];
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out.push(BASE32[(value >>> (bits - 5)) & 31]!);
      bits -= 5;
    }
  }
  if (bits > 0) out.push(BASE32[(value << (5 - bits)) & 31]!);
  // join() gives a flat string: a `+=` chain stays a tree of string pieces for as long as the id lives.
  return out.join('');
}

/** Device id: 16 base32 characters of SHA-256 over the Ed25519 public key. */
export function deviceIdFromKey(signingPublicKey: Uint8Array): string {
  return base32(createHash('sha256').update(signingPublicKey).digest().subarray(0, 10));
}

function rawKeys(type: 'ed25519' | 'x25519'): { publicKey: Buffer; privateKey: Buffer } {
  // DER from the generation job itself, not a JWK export of the KeyObject (see noise/dh.ts generateKeyPair).
  const pair =
    type === 'ed25519'
      ? generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } })
      : generateKeyPairSync('x25519', { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } });
  // The raw key is the last 32 bytes of both encodings (RFC 8410).
  return { publicKey: Buffer.from(pair.publicKey.subarray(-32)), privateKey: Buffer.from(pair.privateKey.subarray(-32)) };
}

export function generateIdentity(): Identity {
  const signing = rawKeys('ed25519');
  return { deviceId: deviceIdFromKey(signing.publicKey), signing, noise: rawKeys('x25519') };
}

/** An Ed25519 key pair as raw bytes (used by the login server for its long-term key too). */
export function generateSigningKeyPair(): { publicKey: Buffer; privateKey: Buffer } {
  return rawKeys('ed25519');
}

export function ed25519PrivateKey(raw: Buffer, publicKey: Buffer): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: raw.toString('base64url'), x: publicKey.toString('base64url') }, format: 'jwk' });
}

export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new IdentityError('ERR_IDENTITY_KEY', `Ed25519 public key: length ${raw.length}, expected 32`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function signWith(keys: { publicKey: Buffer; privateKey: Buffer }, data: Uint8Array): Buffer {
  return sign(null, data, ed25519PrivateKey(keys.privateKey, keys.publicKey));
}

export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify(null, data, ed25519PublicKey(publicKey), signature);
  } catch {
    return false;
  }
}

interface IdentityFile {
  version: 1;
  deviceId: string;
  signing: { publicKey: string; privateKey: string };
  noise: { publicKey: string; privateKey: string };
}

function decodeKey(value: unknown, what: string): Buffer {
  if (typeof value !== 'string') throw new IdentityError('ERR_IDENTITY_FILE', `${what}: expected base64 string`);
  const buf = Buffer.from(value, 'base64');
  if (buf.length !== 32) throw new IdentityError('ERR_IDENTITY_FILE', `${what}: length ${buf.length}, expected 32`);
  return buf;
}

export function parseIdentity(text: string, source = IDENTITY_FILE): Identity {
  let raw: Partial<IdentityFile>;
  try {
    raw = JSON.parse(text) as Partial<IdentityFile>;
  } catch (err) {
    throw new IdentityError('ERR_IDENTITY_FILE', `${source}: not valid JSON`, { cause: err });
  }
  if (raw?.version !== 1) throw new IdentityError('ERR_IDENTITY_FILE', `${source}: version ${String(raw?.version)}, expected 1`);
  const identity: Identity = {
    deviceId: '',
    signing: { publicKey: decodeKey(raw.signing?.publicKey, `${source}: signing.publicKey`), privateKey: decodeKey(raw.signing?.privateKey, `${source}: signing.privateKey`) },
    noise: { publicKey: decodeKey(raw.noise?.publicKey, `${source}: noise.publicKey`), privateKey: decodeKey(raw.noise?.privateKey, `${source}: noise.privateKey`) },
  };
  identity.deviceId = deviceIdFromKey(identity.signing.publicKey);
  // The private keys must match the public ones, or the file was damaged.
  const probe = Buffer.from('partyline identity check');
  if (!verifySignature(identity.signing.publicKey, probe, signWith(identity.signing, probe))) {
    throw new IdentityError('ERR_IDENTITY_FILE', `${source}: signing key pair does not match`);
  }
  const derived = createPublicKey(createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: identity.noise.privateKey.toString('base64url'), x: identity.noise.publicKey.toString('base64url') }, format: 'jwk' }))
    .export({ format: 'jwk' }).x;
  if (derived !== identity.noise.publicKey.toString('base64url')) {
    throw new IdentityError('ERR_IDENTITY_FILE', `${source}: noise key pair does not match`);
  }
  return identity;
}

export function serializeIdentity(identity: Identity): string {
  const file: IdentityFile = {
    version: 1,
    deviceId: identity.deviceId,
    signing: { publicKey: identity.signing.publicKey.toString('base64'), privateKey: identity.signing.privateKey.toString('base64') },
    noise: { publicKey: identity.noise.publicKey.toString('base64'), privateKey: identity.noise.privateKey.toString('base64') },
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * Load the identity from `<stateDir>/identity.json`, creating it (mode 0600)
 * on first start. A damaged file is an error, never silently replaced: the
 * device id is what the network knows this phone by.
 */
export async function loadOrCreateIdentity(stateDir: string, file = IDENTITY_FILE): Promise<{ identity: Identity; created: boolean }> {
  const path = join(stateDir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new IdentityError('ERR_IDENTITY_FILE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    const identity = generateIdentity();
    await writeFileAtomic(path, serializeIdentity(identity), { mode: 0o600 });
    return { identity, created: true };
  }
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new IdentityError('ERR_IDENTITY_MODE', `${path}: mode ${mode.toString(8)} lets others read the private keys; run chmod 600 ${path}`);
  }
  return { identity: parseIdentity(text, path), created: false };
}
