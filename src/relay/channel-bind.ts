import { AttributeType, ERROR_REASONS, HEADER_LENGTH, MAGIC_COOKIE, MAX_USERNAME_BYTES } from '../nat/stun/constants.js';
import type { StunClass } from '../nat/stun/constants.js';
import type { TransportAddress } from '../nat/stun/address.js';
import type { StunAttribute } from '../nat/stun/attributes.js';
import { StunError } from '../nat/stun/errors.js';
import { decodeStunMessage, encodeStunMessage, getAttribute, messageType, verifyFingerprint, verifyIntegrity } from '../nat/stun/message.js';
import { isValidChannel } from './channel-data.js';
import { RelayError } from './errors.js';

/**
 * STUN ChannelBind (RFC 8656 §11, method 0x009) as the relay uses it to bind
 * a UDP leg: the request carries USERNAME (the leg's username from
 * `relay.allocate`), CHANNEL-NUMBER (0x000C; 0x4000–0x4FFF, chosen by the
 * client), MESSAGE-INTEGRITY keyed with the leg key (short-term credential
 * style: the HMAC-SHA1 key is the decoded key bytes) and FINGERPRINT.
 *
 * The one difference from TURN: a TURN ChannelBind names a peer with
 * XOR-PEER-ADDRESS; here the peer is the allocation's other leg, so the
 * leg's username says everything and XOR-PEER-ADDRESS is not sent (and
 * ignored if present). The success response carries XOR-MAPPED-ADDRESS (the
 * client's address as the relay saw it), MESSAGE-INTEGRITY with the same key
 * and FINGERPRINT; errors (400, 401, 420) carry no integrity, since the
 * relay may not know a key to sign with.
 *
 * The codec in `nat/stun/message.ts` refuses messages with
 * comprehension-required attributes it does not know — CHANNEL-NUMBER is one
 * — so requests are read here with a small attribute scanner; responses
 * hold only attributes that codec knows and go through it.
 */
export const CHANNEL_BIND_METHOD = 0x009;
export const ATTR_CHANNEL_NUMBER = 0x000c;
/** TURN's XOR-PEER-ADDRESS: allowed in a request, ignored. */
export const ATTR_XOR_PEER_ADDRESS = 0x0012;
/** The message type of a ChannelBind request (method 0x009, class request). */
export const CHANNEL_BIND_REQUEST_TYPE = messageType(CHANNEL_BIND_METHOD, 'request');

/** Attributes a ChannelBind request may carry; any other comprehension-required one gets a 420. */
const UNDERSTOOD = new Set<number>([
  AttributeType.USERNAME,
  AttributeType.MESSAGE_INTEGRITY,
  AttributeType.MESSAGE_INTEGRITY_SHA256,
  AttributeType.REALM,
  AttributeType.NONCE,
  ATTR_CHANNEL_NUMBER,
  ATTR_XOR_PEER_ADDRESS,
]);

export interface ScannedAttribute {
  type: number;
  /** A view into the packet. */
  value: Buffer;
}

export interface ScannedStun {
  method: number;
  class: StunClass;
  transactionId: Buffer;
  /** In wire order; those after MESSAGE-INTEGRITY (other than FINGERPRINT) left out, as RFC 8489 §14.5 asks. */
  attributes: ScannedAttribute[];
}

const CLASSES: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

function bad(detail: string): never {
  throw new RelayError('ERR_RELAY_CHANNEL_BIND', `STUN message: ${detail}`);
}

/**
 * Check a STUN message's header and attribute framing and list its
 * attributes without interpreting them (so that TURN attributes the STUN
 * codec does not know can be read). Throws `ERR_RELAY_CHANNEL_BIND`.
 */
export function scanStun(packet: Buffer): ScannedStun {
  if (packet.length < HEADER_LENGTH) bad(`length ${packet.length}, expected at least ${HEADER_LENGTH}`);
  const type = packet.readUInt16BE(0);
  if (type & 0xc000) bad('first two bits are not 00');
  if (packet.readUInt32BE(4) !== MAGIC_COOKIE) bad('wrong magic cookie');
  const length = packet.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER_LENGTH + length !== packet.length) bad(`header length ${length} does not match the ${packet.length - HEADER_LENGTH} bytes that follow`);
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  const cls = CLASSES[((type >> 4) & 1) | ((type >> 7) & 2)]!;
  const attributes: ScannedAttribute[] = [];
  let afterIntegrity = false;
  for (let offset = HEADER_LENGTH; offset < packet.length; ) {
    if (packet.length - offset < 4) bad(`attribute header at offset ${offset} truncated`);
    const attrType = packet.readUInt16BE(offset);
    const attrLength = packet.readUInt16BE(offset + 2);
    if (offset + 4 + attrLength > packet.length) bad(`attribute 0x${attrType.toString(16)} at offset ${offset} runs past the end`);
    if (!afterIntegrity || attrType === AttributeType.FINGERPRINT || attrType === AttributeType.MESSAGE_INTEGRITY_SHA256) {
      attributes.push({ type: attrType, value: packet.subarray(offset + 4, offset + 4 + attrLength) });
    }
    if (attrType === AttributeType.MESSAGE_INTEGRITY) afterIntegrity = true;
    offset += 4 + ((attrLength + 3) & ~3);
  }
  return { method, class: cls, transactionId: Buffer.from(packet.subarray(8, HEADER_LENGTH)), attributes };
}

export type ChannelBindRequest =
  | { ok: true; transactionId: Buffer; username: string; channel: number }
  /** What to answer: 400 (malformed or incomplete), 420 (with `unknown`). 401 is the caller's, once it has looked the username up. */
  | { ok: false; transactionId: Buffer; code: 400 | 420; reason: string; unknown?: number[] };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Read a ChannelBind request (the relay's side). Throws
 * `ERR_RELAY_CHANNEL_BIND` when it is not a well-framed ChannelBind request
 * or its FINGERPRINT does not match (no answer is due); returns `ok: false`
 * with the error to answer for requests that are well framed but unusable.
 * MESSAGE-INTEGRITY is only checked for presence: the caller verifies it
 * with the leg key (`verifyIntegrity(packet, key, 'sha1')`).
 */
export function parseChannelBindRequest(packet: Buffer): ChannelBindRequest {
  const scanned = scanStun(packet);
  if (scanned.method !== CHANNEL_BIND_METHOD || scanned.class !== 'request') bad('not a ChannelBind request');
  const { transactionId } = scanned;
  const find = (type: number): Buffer | undefined => scanned.attributes.find((a) => a.type === type)?.value;
  const fingerprint = scanned.attributes.at(-1);
  if (scanned.attributes.some((a, i) => a.type === AttributeType.FINGERPRINT && i !== scanned.attributes.length - 1)) bad('FINGERPRINT is not the last attribute');
  if (fingerprint?.type === AttributeType.FINGERPRINT && !verifyFingerprintSafe(packet)) bad('FINGERPRINT does not match');
  const unknown = [...new Set(scanned.attributes.map((a) => a.type).filter((t) => t < 0x8000 && !UNDERSTOOD.has(t)))];
  if (unknown.length > 0) return { ok: false, transactionId, code: 420, reason: 'unknown comprehension-required attributes', unknown };
  const usernameBytes = find(AttributeType.USERNAME);
  const integrity = find(AttributeType.MESSAGE_INTEGRITY);
  const channelValue = find(ATTR_CHANNEL_NUMBER);
  if (usernameBytes === undefined || integrity === undefined) return { ok: false, transactionId, code: 400, reason: 'USERNAME and MESSAGE-INTEGRITY are required' };
  if (integrity.length !== 20) return { ok: false, transactionId, code: 400, reason: 'MESSAGE-INTEGRITY must be 20 bytes' };
  if (usernameBytes.length === 0 || usernameBytes.length >= MAX_USERNAME_BYTES) return { ok: false, transactionId, code: 400, reason: 'USERNAME length' };
  let username: string;
  try {
    username = UTF8.decode(usernameBytes);
  } catch {
    return { ok: false, transactionId, code: 400, reason: 'USERNAME is not UTF-8' };
  }
  if (channelValue === undefined || channelValue.length !== 4) return { ok: false, transactionId, code: 400, reason: 'CHANNEL-NUMBER (4 bytes) is required' };
  const channel = channelValue.readUInt16BE(0);
  if (!isValidChannel(channel)) return { ok: false, transactionId, code: 400, reason: 'CHANNEL-NUMBER outside 0x4000-0x4fff' };
  return { ok: true, transactionId, username, channel };
}

function verifyFingerprintSafe(packet: Buffer): boolean {
  try {
    return verifyFingerprint(packet);
  } catch (err) {
    if (err instanceof StunError) return false;
    throw err;
  }
}

/** Check the request's MESSAGE-INTEGRITY (HMAC-SHA1) with a leg key; false on mismatch or malformed input. */
export function verifyChannelBindIntegrity(packet: Buffer, key: Buffer): boolean {
  try {
    return verifyIntegrity(packet, key, 'sha1');
  } catch (err) {
    if (err instanceof StunError) return false;
    throw err;
  }
}

/** The relay's success answer: XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY with the leg key, FINGERPRINT. */
export function encodeChannelBindSuccess(transactionId: Buffer, mapped: TransportAddress, key: Buffer): Buffer {
  return encodeStunMessage(
    { method: CHANNEL_BIND_METHOD, class: 'success', transactionId, attributes: [{ kind: 'xor-mapped-address', value: mapped }] },
    { integrityKey: key, fingerprint: true },
  );
}

/** The relay's error answer (400, 401, 420 ...), with FINGERPRINT and no integrity. */
export function encodeChannelBindError(transactionId: Buffer, code: number, unknown: readonly number[] = []): Buffer {
  const attributes: StunAttribute[] = [{ kind: 'error-code', value: { code, reason: ERROR_REASONS.get(code) ?? 'Error' } }];
  if (unknown.length > 0) attributes.push({ kind: 'unknown-attributes', value: [...unknown] });
  return encodeStunMessage({ method: CHANNEL_BIND_METHOD, class: 'error', transactionId, attributes }, { fingerprint: true });
}

/** The client's request (see the top of this file). */
export function encodeChannelBindRequest(options: { transactionId: Buffer; username: string; channel: number; key: Buffer }): Buffer {
  if (!isValidChannel(options.channel)) {
    throw new RelayError('ERR_RELAY_CHANNEL_BIND', `ChannelBind: channel ${String(options.channel)}, expected an integer 0x4000..0x4fff`);
  }
  const channel = Buffer.alloc(4);
  channel.writeUInt16BE(options.channel, 0);
  return encodeStunMessage(
    {
      method: CHANNEL_BIND_METHOD,
      class: 'request',
      transactionId: options.transactionId,
      attributes: [{ kind: 'username', value: options.username }, { kind: 'raw', type: ATTR_CHANNEL_NUMBER, value: channel }],
    },
    { integrityKey: options.key, fingerprint: true },
  );
}

export type ChannelBindResponse =
  | { ok: true; transactionId: Buffer; mapped: TransportAddress }
  | { ok: false; transactionId: Buffer; code: number; reason: string };

/**
 * Read the relay's answer (the client's side). A success must carry a
 * MESSAGE-INTEGRITY that verifies with `key` and an XOR-MAPPED-ADDRESS;
 * otherwise `ERR_RELAY_BAD_RESPONSE`. Throws `ERR_RELAY_CHANNEL_BIND` for
 * anything that is not a ChannelBind response.
 */
export function parseChannelBindResponse(packet: Buffer, key: Buffer): ChannelBindResponse {
  let message;
  try {
    message = decodeStunMessage(packet);
  } catch (err) {
    if (err instanceof StunError) throw new RelayError('ERR_RELAY_CHANNEL_BIND', `ChannelBind response: ${err.message}`, { cause: err });
    throw err;
  }
  if (message.method !== CHANNEL_BIND_METHOD || (message.class !== 'success' && message.class !== 'error')) bad('not a ChannelBind response');
  if (getAttribute(message, 'fingerprint') && !verifyFingerprint(packet)) bad('FINGERPRINT does not match');
  const { transactionId } = message;
  if (message.class === 'error') {
    const error = getAttribute(message, 'error-code')?.value ?? { code: 500, reason: 'error response without ERROR-CODE' };
    return { ok: false, transactionId, code: error.code, reason: error.reason };
  }
  if (!verifyIntegrity(packet, key, 'sha1')) throw new RelayError('ERR_RELAY_BAD_RESPONSE', 'ChannelBind success response: MESSAGE-INTEGRITY missing or wrong');
  const mapped = getAttribute(message, 'xor-mapped-address')?.value;
  if (!mapped) throw new RelayError('ERR_RELAY_BAD_RESPONSE', 'ChannelBind success response: no XOR-MAPPED-ADDRESS');
  return { ok: true, transactionId, mapped };
}
