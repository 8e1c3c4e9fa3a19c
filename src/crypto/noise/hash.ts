import { createHash, createHmac } from 'node:crypto';

/**
 * SHA-256, HMAC-SHA256 and the HMAC-based HKDF of Noise section 4.3.
 */

export function sha256(...parts: readonly Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

export function hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Buffer {
  const hmac = createHmac('sha256', key);
  for (const part of parts) hmac.update(part);
  return hmac.digest();
}

const BYTE_1 = Buffer.from([0x01]);
const BYTE_2 = Buffer.from([0x02]);
const BYTE_3 = Buffer.from([0x03]);

/** HKDF(chaining_key, input_key_material, 2): two HASHLEN outputs. */
export function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Buffer, Buffer] {
  const tempKey = hmacSha256(chainingKey, inputKeyMaterial);
  const output1 = hmacSha256(tempKey, BYTE_1);
  const output2 = hmacSha256(tempKey, output1, BYTE_2);
  return [output1, output2];
}

/** HKDF(chaining_key, input_key_material, 3): three HASHLEN outputs (used by PSK modes). */
export function hkdf3(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Buffer, Buffer, Buffer] {
  const tempKey = hmacSha256(chainingKey, inputKeyMaterial);
  const output1 = hmacSha256(tempKey, BYTE_1);
  const output2 = hmacSha256(tempKey, output1, BYTE_2);
  const output3 = hmacSha256(tempKey, output2, BYTE_3);
  return [output1, output2, output3];
}
