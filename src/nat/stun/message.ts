import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  AttributeType,
  CLASS_BITS,
  FINGERPRINT_XOR,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  TRANSACTION_ID_LENGTH,
  attributeName,
  isComprehensionRequired,
} from './constants.js';
import type { StunClass } from './constants.js';
import { attributeType, decodeAttribute, encodeAttribute } from './attributes.js';
import type { AttributeOf, StunAttribute, StunAttributeKind } from './attributes.js';
import { crc32 } from './crc32.js';
import { StunError, StunUnknownAttributesError } from './errors.js';

/**
 * A STUN message (RFC 8489 §5): method and class, 96-bit transaction id and
 * attributes in wire order. Pure codec: `decodeStunMessage(bytes)` /
 * `encodeStunMessage(message)`.
 */
export interface StunMessage {
  /** 12-bit method, e.g. `StunMethod.BINDING`. */
  method: number;
  class: StunClass;
  /** 12 bytes. */
  transactionId: Buffer;
  attributes: StunAttribute[];
}

export interface EncodeOptions {
  /**
   * Append MESSAGE-INTEGRITY (and/or MESSAGE-INTEGRITY-SHA256, see
   * `integrityAlgorithms`) computed with this key — see `credentials.ts`.
   */
  integrityKey?: Buffer;
  /** Which integrity attributes to append when `integrityKey` is set (default `['sha1']`). */
  integrityAlgorithms?: ReadonlyArray<'sha1' | 'sha256'>;
  /** Append FINGERPRINT (last). */
  fingerprint?: boolean;
  /**
   * The byte used to pad attribute values to 4 bytes (default 0). Receivers
   * ignore padding (RFC 8489 §14); RFC 5769's samples pad with spaces (0x20).
   */
  paddingByte?: number;
}

/**
 * True when a datagram on a port shared with RTP/RTCP, DTLS and relay
 * traffic is STUN: RFC 7983 §7 gives STUN the first-byte range 0–3. This is
 * only the demultiplexing test; `decodeStunMessage` does the validation.
 */
export function isStunPacket(packet: Uint8Array): boolean {
  return packet.length > 0 && packet[0]! <= 3;
}

/** A fresh random 96-bit transaction id. */
export function createTransactionId(): Buffer {
  return randomBytes(TRANSACTION_ID_LENGTH);
}

/** The first attribute of a kind (RFC 8489: only the first occurrence counts), or undefined. */
export function getAttribute<K extends StunAttributeKind>(message: StunMessage, kind: K): AttributeOf<K> | undefined {
  return message.attributes.find((a): a is AttributeOf<K> => a.kind === kind);
}

/** The 14-bit message type for a method and class (RFC 8489 §5, figure 3). */
export function messageType(method: number, cls: StunClass): number {
  const c = CLASS_BITS[cls];
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

const CLASS_OF_BITS: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

function splitType(type: number): { method: number; class: StunClass } {
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  const c = ((type >> 4) & 1) | ((type >> 7) & 2);
  return { method, class: CLASS_OF_BITS[c]! };
}

interface RawAttribute {
  type: number;
  /** Offset of the attribute header in the message. */
  offset: number;
  length: number;
}

/** Check the header and the attribute framing; list the attributes without decoding their values. */
function scan(packet: Uint8Array): { buf: Buffer; attributes: RawAttribute[] } {
  const buf = Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  if (buf.length < HEADER_LENGTH) {
    throw new StunError('ERR_STUN_TRUNCATED', `STUN header: length ${buf.length}, expected at least ${HEADER_LENGTH}`);
  }
  const type = buf.readUInt16BE(0);
  if (type & 0xc000) {
    throw new StunError('ERR_STUN_NOT_STUN', `STUN header: first two bits ${type >> 14 === 3 ? '11' : type >> 14 === 2 ? '10' : '01'}, expected 00`);
  }
  const cookie = buf.readUInt32BE(4);
  if (cookie !== MAGIC_COOKIE) {
    throw new StunError('ERR_STUN_MAGIC_COOKIE', `STUN header: magic cookie 0x${cookie.toString(16).padStart(8, '0')}, expected 0x2112a442`);
  }
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0) {
    throw new StunError('ERR_STUN_LENGTH', `STUN header: message length ${length} is not a multiple of 4 (attributes must be padded to 4 bytes)`);
  }
  if (HEADER_LENGTH + length !== buf.length) {
    throw new StunError('ERR_STUN_LENGTH', `STUN header: message length ${length}, but ${buf.length - HEADER_LENGTH} bytes follow the header`);
  }
  const attributes: RawAttribute[] = [];
  let offset = HEADER_LENGTH;
  while (offset < buf.length) {
    if (buf.length - offset < 4) {
      throw new StunError('ERR_STUN_ATTRIBUTE_TRUNCATED', `STUN attribute at offset ${offset}: header truncated, ${buf.length - offset} bytes left`);
    }
    const attrType = buf.readUInt16BE(offset);
    const attrLength = buf.readUInt16BE(offset + 2);
    const left = buf.length - offset - 4;
    if (attrLength > left) {
      throw new StunError(
        'ERR_STUN_ATTRIBUTE_TRUNCATED',
        `STUN attribute ${attributeName(attrType)} at offset ${offset}: length ${attrLength} runs past the end of the message (${left} bytes left)`,
      );
    }
    attributes.push({ type: attrType, offset, length: attrLength });
    // The header length is a multiple of 4, so the padding always fits once the value does.
    offset += 4 + padded(attrLength);
  }
  return { buf, attributes };
}

function padded(length: number): number {
  return (length + 3) & ~3;
}

/**
 * Decode and validate a STUN message. Throws `StunError` for anything
 * malformed, and `StunUnknownAttributesError` (`ERR_STUN_UNKNOWN_ATTRIBUTES`,
 * carrying the header for a 420 answer) when the message holds
 * comprehension-required attributes this codec does not know.
 *
 * Attributes after MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and
 * FINGERPRINT are ignored (dropped) as RFC 8489 §14.5 asks; anything after
 * FINGERPRINT is an error. Integrity and fingerprint values are decoded but
 * not checked: see `verifyIntegrity` and `verifyFingerprint`.
 */
export function decodeStunMessage(packet: Uint8Array): StunMessage {
  const { buf, attributes: raw } = scan(packet);
  const { method, class: cls } = splitType(buf.readUInt16BE(0));
  const transactionId = Buffer.from(buf.subarray(8, HEADER_LENGTH));
  const attributes: StunAttribute[] = [];
  const unknown: number[] = [];
  let seenIntegrity = false;
  let seenIntegritySha256 = false;
  for (const [index, r] of raw.entries()) {
    if (r.type === AttributeType.FINGERPRINT && index !== raw.length - 1) {
      throw new StunError('ERR_STUN_AFTER_FINGERPRINT', `STUN attribute ${attributeName(raw[index + 1]!.type)}: follows FINGERPRINT, which must be last`);
    }
    const ignored =
      (seenIntegrity && r.type !== AttributeType.MESSAGE_INTEGRITY_SHA256 && r.type !== AttributeType.FINGERPRINT) ||
      (seenIntegritySha256 && r.type !== AttributeType.FINGERPRINT);
    if (ignored) continue;
    const value = buf.subarray(r.offset + 4, r.offset + 4 + r.length);
    const attribute = decodeAttribute(r.type, value, transactionId);
    if (attribute.kind === 'raw' && isComprehensionRequired(r.type) && !unknown.includes(r.type)) unknown.push(r.type);
    if (attribute.kind === 'message-integrity') seenIntegrity = true;
    if (attribute.kind === 'message-integrity-sha256') seenIntegritySha256 = true;
    attributes.push(attribute);
  }
  if (unknown.length > 0) throw new StunUnknownAttributesError({ method, class: cls, transactionId }, unknown);
  return { method, class: cls, transactionId, attributes };
}

/**
 * Encode a message. MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT already in
 * `message.attributes` are written as they are (a decoded message re-encodes
 * to its bytes); `options` appends freshly computed ones instead.
 */
export function encodeStunMessage(message: StunMessage, options: EncodeOptions = {}): Buffer {
  const { method, transactionId } = message;
  if (!Number.isInteger(method) || method < 0 || method > 0xfff) {
    throw new StunError('ERR_STUN_ENCODE', `STUN header: method ${method}, expected 0..0xfff`);
  }
  if (!CLASS_OF_BITS.includes(message.class)) throw new StunError('ERR_STUN_ENCODE', `STUN header: class ${String(message.class)} is not a STUN class`);
  if (!Buffer.isBuffer(transactionId) || transactionId.length !== TRANSACTION_ID_LENGTH) {
    throw new StunError('ERR_STUN_ENCODE', `STUN header: transaction id of ${transactionId?.length} bytes, expected ${TRANSACTION_ID_LENGTH}`);
  }
  const appendsIntegrity = options.integrityKey !== undefined;
  if (appendsIntegrity || options.fingerprint) {
    const clash = message.attributes.find((a) => a.kind === 'fingerprint' || (appendsIntegrity && (a.kind === 'message-integrity' || a.kind === 'message-integrity-sha256')));
    if (clash) throw new StunError('ERR_STUN_ENCODE', `STUN message: already carries ${attributeName(attributeType(clash))}, cannot append another`);
  }
  const padByte = options.paddingByte ?? 0;
  const parts: Buffer[] = [Buffer.alloc(HEADER_LENGTH)];
  let length = 0;
  const push = (type: number, value: Buffer): void => {
    const header = Buffer.alloc(4);
    header.writeUInt16BE(type, 0);
    header.writeUInt16BE(value.length, 2);
    const padding = Buffer.alloc(padded(value.length) - value.length, padByte);
    parts.push(header, value, padding);
    length += 4 + value.length + padding.length;
    if (length > 0xffff) throw new StunError('ERR_STUN_ENCODE', `STUN message: ${length} bytes of attributes, expected at most 65535`);
  };
  for (const attribute of message.attributes) push(attributeType(attribute), encodeAttribute(attribute, transactionId));

  const header = parts[0]!;
  header.writeUInt16BE(messageType(method, message.class), 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  /** The message so far, with the header length counting `extra` more bytes (the attribute being computed). */
  const sofar = (extra: number): Buffer => {
    header.writeUInt16BE(length + extra, 2);
    return Buffer.concat(parts);
  };
  if (options.integrityKey !== undefined) {
    for (const algorithm of options.integrityAlgorithms ?? ['sha1']) {
      const size = algorithm === 'sha1' ? 20 : 32;
      const hmac = createHmac(algorithm, options.integrityKey).update(sofar(4 + size)).digest();
      push(algorithm === 'sha1' ? AttributeType.MESSAGE_INTEGRITY : AttributeType.MESSAGE_INTEGRITY_SHA256, hmac);
    }
  }
  if (options.fingerprint) {
    const value = Buffer.alloc(4);
    value.writeUInt32BE((crc32(sofar(8)) ^ FINGERPRINT_XOR) >>> 0);
    push(AttributeType.FINGERPRINT, value);
  }
  return sofar(0);
}

/**
 * Check MESSAGE-INTEGRITY (`'sha1'`) or MESSAGE-INTEGRITY-SHA256
 * (`'sha256'`) on the raw bytes: the HMAC covers the message up to the
 * attribute, with the header length adjusted to end just after it. By default
 * the SHA-256 attribute is checked when present, else the SHA-1 one. False
 * when the attribute is missing or does not match; throws `StunError` when the
 * message itself is malformed.
 */
export function verifyIntegrity(packet: Uint8Array, key: Buffer, algorithm?: 'sha1' | 'sha256'): boolean {
  const { buf, attributes } = scan(packet);
  const find = (type: number): RawAttribute | undefined => attributes.find((a) => a.type === type);
  const sha256 = find(AttributeType.MESSAGE_INTEGRITY_SHA256);
  const chosen = algorithm ?? (sha256 ? 'sha256' : 'sha1');
  const attr = chosen === 'sha256' ? sha256 : find(AttributeType.MESSAGE_INTEGRITY);
  if (attr === undefined) return false;
  const expected = buf.subarray(attr.offset + 4, attr.offset + 4 + attr.length);
  if (chosen === 'sha1' ? attr.length !== 20 : attr.length < 16 || attr.length > 32 || attr.length % 4 !== 0) return false;
  const covered = Buffer.from(buf.subarray(0, attr.offset));
  covered.writeUInt16BE(attr.offset - HEADER_LENGTH + 4 + attr.length, 2);
  const hmac = createHmac(chosen, key).update(covered).digest().subarray(0, attr.length);
  return timingSafeEqual(hmac, expected);
}

/**
 * Check FINGERPRINT on the raw bytes: CRC-32 of everything before it, XOR
 * 0x5354554e. False when it is missing, not last, or does not match; throws
 * `StunError` when the message itself is malformed.
 */
export function verifyFingerprint(packet: Uint8Array): boolean {
  const { buf, attributes } = scan(packet);
  const last = attributes[attributes.length - 1];
  if (last === undefined || last.type !== AttributeType.FINGERPRINT || last.length !== 4) return false;
  const covered = Buffer.from(buf.subarray(0, last.offset));
  covered.writeUInt16BE(last.offset - HEADER_LENGTH + 8, 2);
  return ((crc32(covered) ^ FINGERPRINT_XOR) >>> 0) === buf.readUInt32BE(last.offset + 4);
}
