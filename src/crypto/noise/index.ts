/**
 * The Noise Protocol Framework (revision 34), Noise_*_25519_ChaChaPoly_SHA256,
 * on node:crypto. Pure: handshake and transport messages in, messages out.
 *
 * Usage (XX):
 *   const hs = new HandshakeState({ pattern: 'XX', initiator: true, staticKeyPair });
 *   send(hs.writeMessage()); hs.readMessage(await receive()); send(hs.writeMessage(payload));
 *   const { send, receive } = hs.split();   // hs.remoteStaticKey is the peer's key
 *
 * Errors are NoiseError (src/errors.ts) with these stable codes:
 * - ERR_NOISE_STATE            call out of turn, after completion or failure, split twice, rekey without key
 * - ERR_NOISE_SHORT            handshake message shorter than its tokens need
 * - ERR_NOISE_TOO_LONG         message or payload over MAX_NOISE_MESSAGE (65535) bytes
 * - ERR_NOISE_DECRYPT          authentication tag mismatch (forged, corrupted, wrong key, reordered)
 * - ERR_NOISE_BAD_KEY          missing or malformed key, key pair mismatch, low-order point,
 *                              peer static key differs from the pinned remoteStaticKey
 * - ERR_NOISE_NONCE_EXHAUSTED  nonce reached 2^64-1
 * - ERR_NOISE_BAD_NONCE        setNonce outside 0..2^64-1
 * - ERR_NOISE_PATTERN          unsupported handshake pattern
 * - ERR_NOISE_BAD_INPUT        an argument is not a Buffer / boolean
 */
export { CipherState } from './cipher-state.js';
export { MAX_NOISE_MESSAGE } from './constants.js';
export { generateKeyPair, publicKeyFromPrivate } from './dh.js';
export type { KeyPair } from './dh.js';
export { HandshakeState } from './handshake-state.js';
export type { HandshakeOptions, TransportCipherStates } from './handshake-state.js';
export { HANDSHAKE_PATTERNS, protocolName } from './patterns.js';
export type { HandshakePattern } from './patterns.js';
