import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadOrCreateIdentity } from '../crypto/identity.js';
import type { Identity } from '../crypto/identity.js';

/**
 * The login server's long-term key: an ordinary {@link Identity} (Ed25519
 * signing key + X25519 Noise key) kept in `<dataDir>/login-key.json`, mode
 * 0600, in the same format as a device's `identity.json`. The Ed25519 public
 * key is the network's trust anchor (`network.loginServer.publicKey`): it
 * signs every credential, and the login server proves it in every Noise
 * handshake.
 */
export const LOGIN_KEY_FILE = 'login-key.json';

export interface LoginKey {
  identity: Identity;
  /** True when the key was made just now (first start). */
  created: boolean;
  /** Where the key lives. */
  path: string;
}

/**
 * Load `<dataDir>/login-key.json`, creating the directory (0700) and a new
 * key (0600) when missing. A damaged file, or one others may read, is an
 * `ERR_IDENTITY_*` error and is never replaced: every credential in the field
 * was signed with it.
 */
export async function loadOrCreateLoginKey(dataDir: string): Promise<LoginKey> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const { identity, created } = await loadOrCreateIdentity(dataDir, LOGIN_KEY_FILE);
  return { identity, created, path: join(dataDir, LOGIN_KEY_FILE) };
}

/** The public key as it goes into `network.loginServer.publicKey`: base64 of the raw Ed25519 key. */
export function formatLoginServerKey(identity: Identity): string {
  return identity.signing.publicKey.toString('base64');
}
