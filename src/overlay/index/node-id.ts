import { createHash, randomBytes } from 'node:crypto';
import { normaliseUserName } from '../../login/user-name.js';
import { IndexError } from './errors.js';

/**
 * Ids in the supernode index: 256-bit unsigned integers (DESIGN.md
 * "Supernode tier and global index"). They are `bigint`s: XOR, comparison
 * and use as `Map` keys come for free, and a 256-bit bigint XOR is cheaper
 * than a byte loop over two Buffers in the routing table's hot paths. On the
 * wire an id is 64 lower-case hex digits.
 *
 * - A supernode's id is SHA-256 of its Noise static public key, so a
 *   supernode cannot pick where it sits in the id space without grinding
 *   keys, and whoever dials a contact can check the id against the key the
 *   Noise handshake proved.
 * - A user's key is SHA-256 of `"partyline/user/v1\n" + normalised name`.
 *
 * Distance is XOR. Bucket `i` of a node holds the contacts whose distance d
 * to it satisfies 2^i <= d < 2^(i+1), i.e. `i` is the position of the highest
 * bit in which the two ids differ (255 = the far half of the space).
 */
export type NodeId = bigint;

export const ID_BITS = 256;
export const ID_BYTES = 32;
export const MAX_ID: NodeId = (1n << 256n) - 1n;
const HEX_ID = /^[0-9a-f]{64}$/;
const USER_DOMAIN = 'partyline/user/v1\n';

export function idFromBytes(bytes: Uint8Array): NodeId {
  if (bytes.length !== ID_BYTES) throw new IndexError('ERR_INDEX_ID', `id: length ${bytes.length}, expected ${ID_BYTES} bytes`);
  return BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')}`);
}

export function idToBytes(id: NodeId): Buffer {
  return Buffer.from(idToHex(id), 'hex');
}

/** 64 lower-case hex digits. */
export function idToHex(id: NodeId): string {
  if (id < 0n || id > MAX_ID) throw new IndexError('ERR_INDEX_ID', `id: ${id} is outside 0..2^256-1`);
  return id.toString(16).padStart(64, '0');
}

export function isIdHex(value: unknown): value is string {
  return typeof value === 'string' && HEX_ID.test(value);
}

/** Parse 64 lower-case hex digits; throws `ERR_INDEX_ID` for anything else. */
export function idFromHex(hex: string): NodeId {
  if (!isIdHex(hex)) {
    throw new IndexError('ERR_INDEX_ID', `id: expected 64 lower-case hex digits, got ${JSON.stringify(String(hex).slice(0, 80))}`);
  }
  return BigInt(`0x${hex}`);
}

/** A supernode's id: SHA-256 of its Noise static public key (raw 32 bytes, or base64). */
export function supernodeId(noiseKey: Uint8Array | string): NodeId {
  const raw = typeof noiseKey === 'string' ? Buffer.from(noiseKey, 'base64') : noiseKey;
  if (raw.length !== 32) throw new IndexError('ERR_INDEX_ID', `supernode key: length ${raw.length}, expected 32`);
  return idFromBytes(createHash('sha256').update(raw).digest());
}

/** A user's key in the index: SHA-256 of `"partyline/user/v1\n" + normalised name`. */
export function userKey(user: string): NodeId {
  return idFromBytes(createHash('sha256').update(USER_DOMAIN + normaliseUserName(user), 'utf8').digest());
}

export function distance(a: NodeId, b: NodeId): bigint {
  return a ^ b;
}

/** Negative when `a` is closer to `target` than `b`, positive when farther, 0 when equal. */
export function compareDistance(target: NodeId, a: NodeId, b: NodeId): number {
  const da = a ^ target;
  const db = b ^ target;
  return da < db ? -1 : da > db ? 1 : 0;
}

/** Number of significant bits (0 for 0). */
export function bitLength(x: bigint): number {
  if (x <= 0n) return 0;
  // Number(x) is exact to 53 bits and keeps the exponent: a guess off by at most one.
  let e = Math.floor(Math.log2(Number(x)));
  if (x >> BigInt(e) === 0n) e -= 1;
  else if (x >> BigInt(e + 1) !== 0n) e += 1;
  return e + 1;
}

/** The bucket `other` falls in from `self`'s point of view: 0..255, or -1 when the ids are equal. */
export function bucketIndex(self: NodeId, other: NodeId): number {
  return bitLength(self ^ other) - 1;
}

/** A random id whose bucket index from `self` is `index` (for bucket refresh lookups). */
export function randomIdInBucket(self: NodeId, index: number, random: (n: number) => Uint8Array = randomBytes): NodeId {
  if (!Number.isInteger(index) || index < 0 || index >= ID_BITS) {
    throw new IndexError('ERR_INDEX_ID', `bucket index ${index}: expected an integer 0..${ID_BITS - 1}`);
  }
  const top = 1n << BigInt(index);
  const low = idFromBytes(random(ID_BYTES)) & (top - 1n);
  return self ^ (top | low);
}
