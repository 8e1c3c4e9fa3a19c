/**
 * Sizes and limits of Noise_*_25519_ChaChaPoly_SHA256 (Noise revision 34).
 */

/** Largest Noise message, handshake or transport, in bytes (spec section 3). */
export const MAX_NOISE_MESSAGE = 65535;

/** X25519 public keys, private keys and DH outputs are 32 bytes. */
export const DH_LEN = 32;

/** SHA-256 output length. */
export const HASH_LEN = 32;

/** ChaCha20-Poly1305 key length. */
export const KEY_LEN = 32;

/** Poly1305 authentication tag length. */
export const TAG_LEN = 16;

/** Nonce 2^64-1 is reserved (spec section 5.1); it is also the rekey nonce (section 11.3). */
export const MAX_NONCE = 2n ** 64n - 1n;
