import { CredentialError } from '../errors.js';
import { deviceIdFromKey, signWith, verifySignature } from './identity.js';

/**
 * A credential: the login server's signed statement that a device key
 * belongs to a user, for a limited time (DESIGN.md "Trust"). Supernodes and
 * peers check it offline with the login server's public key, so a phone
 * with a valid credential keeps working while the login server is down.
 */
export interface Credential {
  v: 1;
  user: string;
  deviceId: string;
  /** Ed25519 public key of the device, base64. */
  deviceKey: string;
  /** X25519 Noise static key of the device, base64: binds Noise links to the credential. */
  noiseKey: string;
  /** Network name, so a credential of one network is useless in another. */
  network: string;
  /** Epoch ms. */
  issued: number;
  expires: number;
  /** Ed25519 signature by the login server over the fields above, base64. */
  signature: string;
}

export type UnsignedCredential = Omit<Credential, 'signature' | 'v'>;

const DOMAIN = 'partyline/credential/v1\n';

/** Tolerated clock difference between login server and verifier. */
export const CLOCK_SKEW_MS = 5 * 60_000;

function signedBytes(c: UnsignedCredential): Buffer {
  // Fixed field order: the signature covers exactly these values.
  return Buffer.from(DOMAIN + JSON.stringify([c.user, c.deviceId, c.deviceKey, c.noiseKey, c.network, c.issued, c.expires]), 'utf8');
}

export function issueCredential(fields: UnsignedCredential, loginServerKey: { publicKey: Buffer; privateKey: Buffer }): Credential {
  return { v: 1, ...fields, signature: signWith(loginServerKey, signedBytes(fields)).toString('base64') };
}

function b64Key(value: unknown, field: string, length: number): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new CredentialError('ERR_CREDENTIAL_MALFORMED', `credential.${field}: expected base64, got ${typeof value}`);
  }
  const buf = Buffer.from(value, 'base64');
  if (buf.length !== length) throw new CredentialError('ERR_CREDENTIAL_MALFORMED', `credential.${field}: length ${buf.length}, expected ${length}`);
  return buf;
}

/** Check the shape of an untrusted value; returns it typed or throws ERR_CREDENTIAL_MALFORMED. */
export function parseCredential(value: unknown): Credential {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CredentialError('ERR_CREDENTIAL_MALFORMED', 'credential: expected an object');
  }
  const c = value as Record<string, unknown>;
  const allowed = new Set(['v', 'user', 'deviceId', 'deviceKey', 'noiseKey', 'network', 'issued', 'expires', 'signature']);
  for (const key of Object.keys(c)) {
    if (!allowed.has(key)) throw new CredentialError('ERR_CREDENTIAL_MALFORMED', `credential.${key}: unknown field`);
  }
  if (c.v !== 1) throw new CredentialError('ERR_CREDENTIAL_MALFORMED', `credential.v: expected 1, got ${JSON.stringify(c.v)}`);
  for (const field of ['user', 'deviceId', 'network'] as const) {
    if (typeof c[field] !== 'string' || (c[field] as string).length === 0 || (c[field] as string).length > 64) {
      throw new CredentialError('ERR_CREDENTIAL_MALFORMED', `credential.${field}: expected a string of 1..64 characters`);
    }
  }
  for (const field of ['issued', 'expires'] as const) {
    if (!Number.isSafeInteger(c[field]) || (c[field] as number) < 0) {
      throw new CredentialError('ERR_CREDENTIAL_MALFORMED', `credential.${field}: expected epoch milliseconds, got ${JSON.stringify(c[field])}`);
    }
  }
  b64Key(c.deviceKey, 'deviceKey', 32);
  b64Key(c.noiseKey, 'noiseKey', 32);
  b64Key(c.signature, 'signature', 64);
  return c as unknown as Credential;
}

export interface VerifyOptions {
  /** The login server's Ed25519 public key (the network's trust anchor). */
  loginServerKey: Uint8Array;
  now: number;
  network: string;
  /** When given, the credential must certify this Noise static key (the key of the link it arrived on). */
  noiseKey?: Uint8Array;
}

/**
 * Verify an untrusted credential: shape, signature, network, validity period
 * and key binding. Throws a CredentialError whose code says which check
 * failed: MALFORMED, SIGNATURE, NETWORK, NOT_YET_VALID, EXPIRED, KEY_BINDING.
 */
export function verifyCredential(value: unknown, options: VerifyOptions): Credential {
  const c = parseCredential(value);
  if (!verifySignature(options.loginServerKey, signedBytes(c), Buffer.from(c.signature, 'base64'))) {
    throw new CredentialError('ERR_CREDENTIAL_SIGNATURE', `credential for ${c.user}: signature does not verify with the login server key`);
  }
  if (c.network !== options.network) {
    throw new CredentialError('ERR_CREDENTIAL_NETWORK', `credential for ${c.user}: issued for network "${c.network}", expected "${options.network}"`);
  }
  if (c.issued > options.now + CLOCK_SKEW_MS) {
    throw new CredentialError('ERR_CREDENTIAL_NOT_YET_VALID', `credential for ${c.user}: issued in the future (${new Date(c.issued).toISOString()})`);
  }
  if (c.expires <= options.now) {
    throw new CredentialError('ERR_CREDENTIAL_EXPIRED', `credential for ${c.user}: expired at ${new Date(c.expires).toISOString()}`);
  }
  if (deviceIdFromKey(Buffer.from(c.deviceKey, 'base64')) !== c.deviceId) {
    throw new CredentialError('ERR_CREDENTIAL_KEY_BINDING', `credential for ${c.user}: device id ${c.deviceId} does not match its device key`);
  }
  if (options.noiseKey && !Buffer.from(c.noiseKey, 'base64').equals(Buffer.from(options.noiseKey))) {
    throw new CredentialError('ERR_CREDENTIAL_KEY_BINDING', `credential for ${c.user}: presented on a link whose Noise key is not the certified one`);
  }
  return c;
}
