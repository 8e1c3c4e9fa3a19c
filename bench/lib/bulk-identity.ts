import { generateKeyPairSync } from 'node:crypto';
import { deviceIdFromKey } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';

/**
 * A device identity like src/crypto/identity.ts generateIdentity() makes,
 * for bulk use: the keys come out of generateKeyPairSync already DER-encoded
 * (the raw key is the last 32 bytes of SPKI and of PKCS#8 for Ed25519 and
 * X25519). generateIdentity() exports KeyObjects as JWK instead, and on
 * Node 20.20 that can hang the process for good after some ten thousand
 * key pairs: the main thread waits forever in ~KeyGenJob (uv_mutex_lock),
 * run by a GC that a string allocation inside ExportJWKEdKey triggered
 * (gdb, while preparing 10,000 nodes for this bench; a loop of
 * generateKeyPairSync + export({format: 'jwk'}) alone hangs the same way,
 * DER export did not in 100,000 pairs).
 */
export function bulkIdentity(): Identity {
  const signing = rawPair('ed25519');
  return { deviceId: deviceIdFromKey(signing.publicKey), signing, noise: rawPair('x25519') };
}

function rawPair(type: 'ed25519' | 'x25519'): { publicKey: Buffer; privateKey: Buffer } {
  const pair =
    type === 'ed25519'
      ? generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } })
      : generateKeyPairSync('x25519', { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } });
  return { publicKey: Buffer.from(pair.publicKey.subarray(-32)), privateKey: Buffer.from(pair.privateKey.subarray(-32)) };
}
