import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

import { NoiseError } from '../../errors.js';
import { DH_LEN } from './constants.js';

/**
 * Curve25519 (X25519) for Noise, on node:crypto with raw 32-byte keys.
 * Raw keys are imported into OpenSSL as JWK (RFC 8037), which OpenSSL 3
 * decodes about ten times faster than DER; imported private keys are cached
 * per key pair object, so a static key is imported once, not per handshake.
 */

/** An X25519 key pair as raw 32-byte keys. */
export interface KeyPair {
  publicKey: Buffer;
  privateKey: Buffer;
}

const ZERO_DH = Buffer.alloc(DH_LEN);

/** OpenSSL key objects of validated key pairs (the pair objects HandshakeState keeps). */
const privateKeyObjects = new WeakMap<KeyPair, KeyObject>();
/** Validated private copies of callers' key pairs, so a static key is checked once. */
const checkedPairs = new WeakMap<KeyPair, KeyPair>();

/** Generate a fresh X25519 key pair (GENERATE_KEYPAIR). */
export function generateKeyPair(): KeyPair {
  // Encoded by the key-generation job itself. Exporting a fresh KeyObject as JWK can deadlock
  // Node 20 (the export holds the key's lock while allocating; a GC then finalises the key
  // generation job, which waits for the same lock): seen after ~200,000 handshakes.
  const { privateKey, publicKey } = generateKeyPairSync('x25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  return { privateKey: Buffer.from(privateKey.subarray(-DH_LEN)), publicKey: Buffer.from(publicKey.subarray(-DH_LEN)) };
}

/** The raw public key belonging to a raw 32-byte private key. */
export function publicKeyFromPrivate(privateKey: Buffer): Buffer {
  checkKeyLength(privateKey, 'X25519 private key');
  // Importing needs the public half in JWK, so derive it through a DER import once.
  const der = Buffer.concat([PKCS8_X25519_PREFIX, privateKey]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * DH(key_pair, public_key): X25519 shared secret. A low-order public key
 * (all-zero output) is rejected with ERR_NOISE_BAD_KEY.
 */
export function dh(pair: KeyPair, publicKey: Buffer): Buffer {
  const priv = privateKeyObject(pair);
  const pub = importPublic(publicKey);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: priv, publicKey: pub });
  } catch (err) {
    // OpenSSL refuses to return an all-zero X25519 output (low-order point).
    throw new NoiseError('ERR_NOISE_BAD_KEY', 'X25519: remote public key is a low-order point', { cause: err });
  }
  if (shared.length !== DH_LEN || timingSafeEqual(shared, ZERO_DH)) {
    throw new NoiseError('ERR_NOISE_BAD_KEY', 'X25519: remote public key is a low-order point');
  }
  return shared;
}

/** Throw ERR_NOISE_BAD_KEY unless `key` is a 32-byte buffer. `what` names the key, never its value. */
export function checkKeyLength(key: unknown, what: string): asserts key is Buffer {
  if (!Buffer.isBuffer(key)) {
    throw new NoiseError('ERR_NOISE_BAD_KEY', `${what}: expected a Buffer of ${DH_LEN} bytes, got ${typeof key}`);
  }
  if (key.length !== DH_LEN) {
    throw new NoiseError('ERR_NOISE_BAD_KEY', `${what}: expected ${DH_LEN} bytes, got ${key.length}`);
  }
}

/**
 * Validate a key pair: both keys 32 bytes and the public key derived from
 * the private key. Returns a private copy so later changes to the caller's
 * buffers cannot reach the handshake.
 */
export function checkKeyPair(pair: KeyPair, what: string): KeyPair {
  const known = checkedPairs.get(pair);
  if (known && known.privateKey.equals(pair.privateKey) && known.publicKey.equals(pair.publicKey)) return known;
  checkKeyLength(pair.privateKey, `${what} private key`);
  checkKeyLength(pair.publicKey, `${what} public key`);
  if (!timingSafeEqual(publicKeyFromPrivate(pair.privateKey), pair.publicKey)) {
    throw new NoiseError('ERR_NOISE_BAD_KEY', `${what}: public key does not belong to the private key`);
  }
  const copy = { privateKey: Buffer.from(pair.privateKey), publicKey: Buffer.from(pair.publicKey) };
  const object = privateKeyObjects.get(pair);
  if (object) privateKeyObjects.set(copy, object);
  checkedPairs.set(pair, copy);
  return copy;
}

function privateKeyObject(pair: KeyPair): KeyObject {
  let object = privateKeyObjects.get(pair);
  if (!object) {
    checkKeyLength(pair.privateKey, 'X25519 private key');
    object = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: pair.privateKey.toString('base64url'), x: pair.publicKey.toString('base64url') }, format: 'jwk' });
    privateKeyObjects.set(pair, object);
  }
  return object;
}

function importPublic(publicKey: Buffer): KeyObject {
  checkKeyLength(publicKey, 'X25519 public key');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicKey.toString('base64url') }, format: 'jwk' });
}
