import { AttributeType, MAGIC_COOKIE, MAX_TEXT_BYTES, MAX_TEXT_CHARS, MAX_USERNAME_BYTES, attributeName } from './constants.js';
import { addressFamily, bytesToIp, ipToBytes } from './address.js';
import type { TransportAddress } from './address.js';
import { StunError } from './errors.js';

/**
 * STUN attributes as values. Known types decode to a typed variant; any other
 * type is kept as `raw` bytes so that it re-encodes unchanged.
 */
export type StunAttribute =
  | { kind: 'mapped-address'; value: TransportAddress }
  | { kind: 'xor-mapped-address'; value: TransportAddress }
  | { kind: 'response-origin'; value: TransportAddress }
  | { kind: 'other-address'; value: TransportAddress }
  | { kind: 'username'; value: string }
  | { kind: 'software'; value: string }
  | { kind: 'realm'; value: string }
  | { kind: 'nonce'; value: string }
  | { kind: 'message-integrity'; value: Buffer }
  | { kind: 'message-integrity-sha256'; value: Buffer }
  | { kind: 'fingerprint'; value: number }
  | { kind: 'error-code'; value: { code: number; reason: string } }
  | { kind: 'unknown-attributes'; value: number[] }
  | { kind: 'change-request'; value: { changeIp: boolean; changePort: boolean } }
  | { kind: 'priority'; value: number }
  | { kind: 'use-candidate' }
  | { kind: 'ice-controlled'; value: bigint }
  | { kind: 'ice-controlling'; value: bigint }
  | { kind: 'raw'; type: number; value: Buffer };

export type StunAttributeKind = StunAttribute['kind'];
/** The attribute variant of a given kind, e.g. `AttributeOf<'username'>`. */
export type AttributeOf<K extends StunAttributeKind> = Extract<StunAttribute, { kind: K }>;

const TYPE_OF_KIND: Readonly<Record<Exclude<StunAttributeKind, 'raw'>, number>> = {
  'mapped-address': AttributeType.MAPPED_ADDRESS,
  'xor-mapped-address': AttributeType.XOR_MAPPED_ADDRESS,
  'response-origin': AttributeType.RESPONSE_ORIGIN,
  'other-address': AttributeType.OTHER_ADDRESS,
  username: AttributeType.USERNAME,
  software: AttributeType.SOFTWARE,
  realm: AttributeType.REALM,
  nonce: AttributeType.NONCE,
  'message-integrity': AttributeType.MESSAGE_INTEGRITY,
  'message-integrity-sha256': AttributeType.MESSAGE_INTEGRITY_SHA256,
  fingerprint: AttributeType.FINGERPRINT,
  'error-code': AttributeType.ERROR_CODE,
  'unknown-attributes': AttributeType.UNKNOWN_ATTRIBUTES,
  'change-request': AttributeType.CHANGE_REQUEST,
  priority: AttributeType.PRIORITY,
  'use-candidate': AttributeType.USE_CANDIDATE,
  'ice-controlled': AttributeType.ICE_CONTROLLED,
  'ice-controlling': AttributeType.ICE_CONTROLLING,
};

/** The wire type of an attribute. */
export function attributeType(attribute: StunAttribute): number {
  return attribute.kind === 'raw' ? attribute.type : TYPE_OF_KIND[attribute.kind];
}

/** The attribute types this codec understands (a request with another comprehension-required type gets a 420). */
export const KNOWN_ATTRIBUTE_TYPES: ReadonlySet<number> = new Set(Object.values(TYPE_OF_KIND));

const CHANGE_IP = 0x04;
const CHANGE_PORT = 0x02;
const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;

function fail(type: number, detail: string): never {
  throw new StunError('ERR_STUN_ATTRIBUTE', `STUN attribute ${attributeName(type)}: ${detail}`);
}

function expectLength(type: number, value: Buffer, expected: number): void {
  if (value.length !== expected) fail(type, `length ${value.length}, expected ${expected}`);
}

/** Decode one attribute value (padding already removed). Throws `StunError` (`ERR_STUN_ATTRIBUTE`). */
export function decodeAttribute(type: number, value: Buffer, transactionId: Buffer): StunAttribute {
  switch (type) {
    case AttributeType.MAPPED_ADDRESS:
      return { kind: 'mapped-address', value: decodeAddress(type, value, undefined) };
    case AttributeType.XOR_MAPPED_ADDRESS:
      return { kind: 'xor-mapped-address', value: decodeAddress(type, value, transactionId) };
    case AttributeType.RESPONSE_ORIGIN:
      return { kind: 'response-origin', value: decodeAddress(type, value, undefined) };
    case AttributeType.OTHER_ADDRESS:
      return { kind: 'other-address', value: decodeAddress(type, value, undefined) };
    case AttributeType.USERNAME:
      return { kind: 'username', value: decodeText(type, value, MAX_USERNAME_BYTES - 1, Infinity) };
    case AttributeType.SOFTWARE:
      return { kind: 'software', value: decodeText(type, value, MAX_TEXT_BYTES - 1, MAX_TEXT_CHARS - 1) };
    case AttributeType.REALM:
      return { kind: 'realm', value: decodeText(type, value, MAX_TEXT_BYTES - 1, MAX_TEXT_CHARS - 1) };
    case AttributeType.NONCE:
      return { kind: 'nonce', value: decodeText(type, value, MAX_TEXT_BYTES - 1, MAX_TEXT_CHARS - 1) };
    case AttributeType.MESSAGE_INTEGRITY:
      expectLength(type, value, 20);
      return { kind: 'message-integrity', value: Buffer.from(value) };
    case AttributeType.MESSAGE_INTEGRITY_SHA256:
      if (value.length < 16 || value.length > 32 || value.length % 4 !== 0) fail(type, `length ${value.length}, expected 16, 20, 24, 28 or 32`);
      return { kind: 'message-integrity-sha256', value: Buffer.from(value) };
    case AttributeType.FINGERPRINT:
      expectLength(type, value, 4);
      return { kind: 'fingerprint', value: value.readUInt32BE(0) };
    case AttributeType.ERROR_CODE:
      return { kind: 'error-code', value: decodeErrorCode(type, value) };
    case AttributeType.UNKNOWN_ATTRIBUTES: {
      if (value.length % 2 !== 0) fail(type, `length ${value.length}, expected a multiple of 2`);
      const types: number[] = [];
      for (let i = 0; i < value.length; i += 2) types.push(value.readUInt16BE(i));
      return { kind: 'unknown-attributes', value: types };
    }
    case AttributeType.CHANGE_REQUEST: {
      expectLength(type, value, 4);
      const flags = value.readUInt32BE(0);
      return { kind: 'change-request', value: { changeIp: (flags & CHANGE_IP) !== 0, changePort: (flags & CHANGE_PORT) !== 0 } };
    }
    case AttributeType.PRIORITY:
      expectLength(type, value, 4);
      return { kind: 'priority', value: value.readUInt32BE(0) };
    case AttributeType.USE_CANDIDATE:
      expectLength(type, value, 0);
      return { kind: 'use-candidate' };
    case AttributeType.ICE_CONTROLLED:
      expectLength(type, value, 8);
      return { kind: 'ice-controlled', value: value.readBigUInt64BE(0) };
    case AttributeType.ICE_CONTROLLING:
      expectLength(type, value, 8);
      return { kind: 'ice-controlling', value: value.readBigUInt64BE(0) };
    default:
      return { kind: 'raw', type, value: Buffer.from(value) };
  }
}

/**
 * Encode one attribute value (without header or padding). Throws `StunError`
 * (`ERR_STUN_ENCODE`) for values that cannot be put on the wire.
 */
export function encodeAttribute(attribute: StunAttribute, transactionId: Buffer): Buffer {
  const type = attributeType(attribute);
  switch (attribute.kind) {
    case 'mapped-address':
    case 'response-origin':
    case 'other-address':
      return encodeAddress(type, attribute.value, undefined);
    case 'xor-mapped-address':
      return encodeAddress(type, attribute.value, transactionId);
    case 'username':
      return encodeText(type, attribute.value, MAX_USERNAME_BYTES - 1, Infinity);
    case 'software':
    case 'realm':
    case 'nonce':
      return encodeText(type, attribute.value, MAX_TEXT_BYTES - 1, MAX_TEXT_CHARS - 1);
    case 'message-integrity':
      if (attribute.value.length !== 20) encodeFail(type, `HMAC of ${attribute.value.length} bytes, expected 20`);
      return Buffer.from(attribute.value);
    case 'message-integrity-sha256':
      if (attribute.value.length < 16 || attribute.value.length > 32 || attribute.value.length % 4 !== 0) {
        encodeFail(type, `HMAC of ${attribute.value.length} bytes, expected 16..32 in steps of 4`);
      }
      return Buffer.from(attribute.value);
    case 'fingerprint':
      return u32(type, attribute.value);
    case 'error-code':
      return encodeErrorCode(type, attribute.value.code, attribute.value.reason);
    case 'unknown-attributes': {
      const out = Buffer.alloc(attribute.value.length * 2);
      attribute.value.forEach((t, i) => {
        if (!Number.isInteger(t) || t < 0 || t > 0xffff) encodeFail(type, `attribute type ${t} is not a 16-bit integer`);
        out.writeUInt16BE(t, i * 2);
      });
      return out;
    }
    case 'change-request':
      return u32(type, (attribute.value.changeIp ? CHANGE_IP : 0) | (attribute.value.changePort ? CHANGE_PORT : 0));
    case 'priority':
      return u32(type, attribute.value);
    case 'use-candidate':
      return Buffer.alloc(0);
    case 'ice-controlled':
    case 'ice-controlling': {
      if (attribute.value < 0n || attribute.value > 0xffffffffffffffffn) encodeFail(type, 'tie-breaker is not a 64-bit unsigned integer');
      const out = Buffer.alloc(8);
      out.writeBigUInt64BE(attribute.value);
      return out;
    }
    case 'raw':
      if (!Number.isInteger(attribute.type) || attribute.type < 0 || attribute.type > 0xffff) encodeFail(0, `type ${attribute.type} is not a 16-bit integer`);
      return Buffer.from(attribute.value);
  }
}

function encodeFail(type: number, detail: string): never {
  throw new StunError('ERR_STUN_ENCODE', `STUN attribute ${attributeName(type)}: ${detail}`);
}

function u32(type: number, n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) encodeFail(type, `${n} is not a 32-bit unsigned integer`);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n >>> 0);
  return out;
}

/** The XOR pad for an address: the magic cookie, then the transaction id for IPv6. */
function xorPad(transactionId: Buffer): Buffer {
  const pad = Buffer.alloc(16);
  pad.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(pad, 4);
  return pad;
}

function decodeAddress(type: number, value: Buffer, transactionId: Buffer | undefined): TransportAddress {
  if (value.length !== 8 && value.length !== 20) fail(type, `length ${value.length}, expected 8 or 20`);
  const family = value[1]!;
  if (family !== FAMILY_IPV4 && family !== FAMILY_IPV6) {
    fail(type, `family 0x${family.toString(16).padStart(2, '0')}, expected 0x01 (IPv4) or 0x02 (IPv6)`);
  }
  const expected = family === FAMILY_IPV4 ? 8 : 20;
  if (value.length !== expected) fail(type, `length ${value.length} does not match family ${family === FAMILY_IPV4 ? 'IPv4' : 'IPv6'} (expected ${expected})`);
  let port = value.readUInt16BE(2);
  const bytes = Buffer.from(value.subarray(4));
  if (transactionId !== undefined) {
    port ^= MAGIC_COOKIE >>> 16;
    const pad = xorPad(transactionId);
    for (let i = 0; i < bytes.length; i++) bytes[i]! ^= pad[i]!;
  }
  return { address: bytesToIp(bytes), port };
}

function encodeAddress(type: number, value: TransportAddress, transactionId: Buffer | undefined): Buffer {
  const bytes = ipToBytes(value.address);
  if (bytes === undefined || addressFamily(value.address) === undefined) encodeFail(type, `${JSON.stringify(value.address)} is not an IP address`);
  if (!Number.isInteger(value.port) || value.port < 0 || value.port > 0xffff) encodeFail(type, `port ${value.port} is not in 0..65535`);
  const out = Buffer.alloc(4 + bytes.length);
  out[1] = bytes.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  let port = value.port;
  if (transactionId !== undefined) {
    port ^= MAGIC_COOKIE >>> 16;
    const pad = xorPad(transactionId);
    for (let i = 0; i < bytes.length; i++) bytes[i]! ^= pad[i]!;
  }
  out.writeUInt16BE(port, 2);
  bytes.copy(out, 4);
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeText(type: number, value: Buffer, maxBytes: number, maxChars: number): string {
  if (value.length > maxBytes) fail(type, `length ${value.length}, expected at most ${maxBytes}`);
  let text: string;
  try {
    text = UTF8.decode(value);
  } catch (err) {
    throw new StunError('ERR_STUN_ATTRIBUTE', `STUN attribute ${attributeName(type)}: not valid UTF-8`, { cause: err });
  }
  const chars = Array.from(text).length;
  if (chars > maxChars) fail(type, `${chars} characters, expected at most ${maxChars}`);
  return text;
}

function encodeText(type: number, text: string, maxBytes: number, maxChars: number): Buffer {
  if (typeof text !== 'string') encodeFail(type, `expected a string, got ${typeof text}`);
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > maxBytes) encodeFail(type, `${bytes.length} bytes, expected at most ${maxBytes}`);
  if (Array.from(text).length > maxChars) encodeFail(type, `more than ${maxChars} characters`);
  return bytes;
}

function decodeErrorCode(type: number, value: Buffer): { code: number; reason: string } {
  if (value.length < 4) fail(type, `length ${value.length}, expected at least 4`);
  const errorClass = value[2]! & 0x07;
  const number = value[3]!;
  if (errorClass < 3 || errorClass > 6) fail(type, `class ${errorClass}, expected 3..6`);
  if (number > 99) fail(type, `number ${number}, expected 0..99`);
  const reason = decodeText(type, value.subarray(4), MAX_TEXT_BYTES - 1, MAX_TEXT_CHARS - 1);
  return { code: errorClass * 100 + number, reason };
}

function encodeErrorCode(type: number, code: number, reason: string): Buffer {
  if (!Number.isInteger(code) || code < 300 || code > 699) encodeFail(type, `code ${code}, expected 300..699`);
  const text = encodeText(type, reason, MAX_TEXT_BYTES - 1, MAX_TEXT_CHARS - 1);
  const out = Buffer.alloc(4 + text.length);
  out[2] = Math.floor(code / 100);
  out[3] = code % 100;
  text.copy(out, 4);
  return out;
}
