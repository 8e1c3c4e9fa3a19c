import { createCipheriv, createDecipheriv } from 'node:crypto';

import { NoiseError } from '../../errors.js';
import { KEY_LEN, MAX_NOISE_MESSAGE, MAX_NONCE, TAG_LEN } from './constants.js';
import { unpooled } from '../../util/unpooled.js';

/**
 * CipherState (Noise section 5.1) with ChaChaPoly (section 12.3): a key k
 * and a 64-bit nonce n, kept as a bigint.
 *
 * - Nonce 2^64-1 is reserved: encrypting or decrypting when n has reached it
 *   throws ERR_NOISE_NONCE_EXHAUSTED (the session must be torn down).
 * - A failed decryption throws ERR_NOISE_DECRYPT and leaves n unchanged.
 * - Without a key, encryptWithAd/decryptWithAd pass data through unchanged
 *   (as the spec requires during the first handshake messages).
 * - Every message is limited to MAX_NOISE_MESSAGE (65535) bytes including
 *   the 16-byte tag: ERR_NOISE_TOO_LONG.
 */
export class CipherState {
  #k: Buffer | undefined;
  #n = 0n;

  constructor(key?: Buffer) {
    this.initializeKey(key);
  }

  /** InitializeKey(key): set k (or clear it with undefined) and reset n to 0. */
  initializeKey(key: Buffer | undefined): void {
    if (key !== undefined) checkKey(key);
    this.#k = key === undefined ? undefined : unpooled(key);
    this.#n = 0n;
  }

  hasKey(): boolean {
    return this.#k !== undefined;
  }

  /** The next nonce to be used. */
  get nonce(): bigint {
    return this.#n;
  }

  /** SetNonce(nonce): for out-of-order transports; 0 <= nonce <= 2^64-1. */
  setNonce(nonce: bigint): void {
    if (typeof nonce !== 'bigint' || nonce < 0n || nonce > MAX_NONCE) {
      throw new NoiseError('ERR_NOISE_BAD_NONCE', `nonce: expected a bigint from 0 to 2^64-1, got ${String(nonce)}`);
    }
    this.#n = nonce;
  }

  /** EncryptWithAd(ad, plaintext): ciphertext with a 16-byte tag appended; n advances by one. */
  encryptWithAd(ad: Buffer, plaintext: Buffer): Buffer {
    if (this.#k === undefined) {
      checkLength(plaintext.length, 'plaintext');
      return Buffer.from(plaintext);
    }
    checkLength(plaintext.length + TAG_LEN, 'plaintext + tag');
    this.#checkNonce();
    const ciphertext = encrypt(this.#k, this.#n, ad, plaintext);
    this.#n += 1n;
    return ciphertext;
  }

  /** DecryptWithAd(ad, ciphertext): the plaintext; n advances only on success. */
  decryptWithAd(ad: Buffer, ciphertext: Buffer): Buffer {
    checkLength(ciphertext.length, 'ciphertext');
    if (this.#k === undefined) return Buffer.from(ciphertext);
    if (ciphertext.length < TAG_LEN) {
      throw new NoiseError('ERR_NOISE_DECRYPT', `ciphertext: ${ciphertext.length} bytes, shorter than the ${TAG_LEN}-byte tag`);
    }
    this.#checkNonce();
    const plaintext = decrypt(this.#k, this.#n, ad, ciphertext);
    this.#n += 1n;
    return plaintext;
  }

  /** Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes); n is unchanged (section 11.3). */
  rekey(): void {
    if (this.#k === undefined) throw new NoiseError('ERR_NOISE_STATE', 'rekey: cipher state has no key');
    this.#k = unpooled(encrypt(this.#k, MAX_NONCE, Buffer.alloc(0), Buffer.alloc(KEY_LEN)).subarray(0, KEY_LEN));
  }

  #checkNonce(): void {
    if (this.#n >= MAX_NONCE) {
      throw new NoiseError('ERR_NOISE_NONCE_EXHAUSTED', 'nonce 2^64-1 reached: this cipher state can send or receive no more messages');
    }
  }
}

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_LEN) {
    throw new NoiseError('ERR_NOISE_BAD_KEY', `cipher key: expected ${KEY_LEN} bytes, got ${Buffer.isBuffer(key) ? key.length : typeof key}`);
  }
}

function checkLength(length: number, what: string): void {
  if (length > MAX_NOISE_MESSAGE) {
    throw new NoiseError('ERR_NOISE_TOO_LONG', `${what}: ${length} bytes, Noise messages are at most ${MAX_NOISE_MESSAGE}`);
  }
}

/** 96-bit ChaChaPoly nonce: 4 zero bytes, then n as 64-bit little-endian. */
function nonceBytes(n: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(n, 4);
  return nonce;
}

function encrypt(key: Buffer, n: bigint, ad: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: TAG_LEN });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  const rest = cipher.final();
  return Buffer.concat([body, rest, cipher.getAuthTag()]);
}

function decrypt(key: Buffer, n: bigint, ad: Buffer, ciphertext: Buffer): Buffer {
  const bodyLength = ciphertext.length - TAG_LEN;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: TAG_LEN });
  decipher.setAuthTag(ciphertext.subarray(bodyLength));
  decipher.setAAD(ad, { plaintextLength: bodyLength });
  const body = decipher.update(ciphertext.subarray(0, bodyLength));
  try {
    return Buffer.concat([body, decipher.final()]);
  } catch (err) {
    body.fill(0); // never let unauthenticated plaintext linger
    throw new NoiseError('ERR_NOISE_DECRYPT', 'authentication tag does not match: message forged, corrupted or out of order', { cause: err });
  }
}
