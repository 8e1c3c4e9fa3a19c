import { NoiseError } from '../errors.js';
import type { Credential } from './credential.js';
import { parseCredential } from './credential.js';
import { deviceIdFromKey, signWith, verifySignature } from './identity.js';
import { unpooled } from '../util/unpooled.js';
import type { Identity } from './identity.js';

/**
 * What each side puts in its Noise handshake payload: its Ed25519 identity
 * key, a signature by that key over its Noise static key (so the Noise key
 * is bound to the identity, as libp2p-noise does), and optionally the
 * credential the login server issued for that identity.
 */
export interface HandshakePayload {
  v: 1;
  /** Ed25519 identity key, base64. */
  key: string;
  /** Signature over DOMAIN + Noise static public key, base64. */
  sig: string;
  cred?: Credential;
  /** Free-form role hint: 'node', 'supernode', 'login-server'. */
  role?: string;
}

export interface VerifiedPeer {
  identityKey: Buffer;
  deviceId: string;
  credential?: Credential;
  role?: string;
}

const DOMAIN = Buffer.from('partyline/noise-static/v1\n');
export const MAX_HANDSHAKE_PAYLOAD = 4096;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function makeHandshakePayload(identity: Identity, options: { credential?: Credential; role?: string } = {}): Buffer {
  const payload: HandshakePayload = {
    v: 1,
    key: identity.signing.publicKey.toString('base64'),
    sig: signWith(identity.signing, Buffer.concat([DOMAIN, identity.noise.publicKey])).toString('base64'),
  };
  if (options.credential) payload.cred = options.credential;
  if (options.role) payload.role = options.role;
  return Buffer.from(JSON.stringify(payload), 'utf8');
}

/**
 * Verify a peer's handshake payload against the Noise static key it used.
 * The credential, if any, is only checked for shape here; whether it is
 * valid (signature, expiry) is for the caller, which knows the trust anchor
 * and the time.
 */
export function verifyHandshakePayload(bytes: Buffer, remoteStaticKey: Buffer): VerifiedPeer {
  if (bytes.length === 0) throw new NoiseError('ERR_NOISE_PAYLOAD', 'handshake payload: empty, expected identity proof');
  if (bytes.length > MAX_HANDSHAKE_PAYLOAD) throw new NoiseError('ERR_NOISE_PAYLOAD', `handshake payload: length ${bytes.length}, expected at most ${MAX_HANDSHAKE_PAYLOAD}`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new NoiseError('ERR_NOISE_PAYLOAD', 'handshake payload: not valid JSON', { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new NoiseError('ERR_NOISE_PAYLOAD', 'handshake payload: expected an object');
  const p = raw as Record<string, unknown>;
  if (p.v !== 1) throw new NoiseError('ERR_NOISE_PAYLOAD', `handshake payload.v: expected 1, got ${JSON.stringify(p.v)}`);
  if (typeof p.key !== 'string' || typeof p.sig !== 'string' || !BASE64.test(p.key) || !BASE64.test(p.sig)) {
    throw new NoiseError('ERR_NOISE_PAYLOAD', 'handshake payload: key and sig must be base64 strings');
  }
  const key = unpooled(Buffer.from(p.key, 'base64'));
  if (key.length !== 32) throw new NoiseError('ERR_NOISE_PAYLOAD', `handshake payload.key: length ${key.length}, expected 32`);
  if (!verifySignature(key, Buffer.concat([DOMAIN, remoteStaticKey]), Buffer.from(p.sig, 'base64'))) {
    throw new NoiseError('ERR_NOISE_PAYLOAD_SIGNATURE', 'handshake payload: identity key did not sign this Noise key');
  }
  const peer: VerifiedPeer = { identityKey: key, deviceId: deviceIdFromKey(key) };
  if (p.cred !== undefined) {
    try {
      peer.credential = parseCredential(p.cred);
    } catch (err) {
      throw new NoiseError('ERR_NOISE_PAYLOAD', `handshake payload.cred: ${(err as Error).message}`, { cause: err });
    }
    if (peer.credential.deviceKey !== key.toString('base64')) {
      throw new NoiseError('ERR_NOISE_PAYLOAD', 'handshake payload.cred: credential is for another device key');
    }
  }
  if (p.role !== undefined) {
    if (typeof p.role !== 'string' || p.role.length > 32) throw new NoiseError('ERR_NOISE_PAYLOAD', 'handshake payload.role: expected a short string');
    peer.role = p.role;
  }
  return peer;
}
