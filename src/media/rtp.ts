/**
 * RTP packets (RFC 3550 §5.1): a pure codec, `decodeRtpPacket(bytes)` /
 * `encodeRtpPacket(packet)`, with the header extension kept as it came
 * (RFC 3550 §5.3.1) and readable as RFC 8285 elements, plus the 16- and
 * 32-bit serial-number arithmetic that sequence numbers and timestamps need.
 *
 * Demultiplexing on the shared UDP port (RFC 7983 §7, RFC 5761 §4): a first
 * byte in 128–191 is RTP or RTCP; RTCP when the second byte is 192–223.
 * Everything the decoder rejects throws `RtpError` with a stable code.
 */
import { RtpError } from './errors.js';

export const RTP_VERSION = 2;
/** Fixed header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC. */
export const RTP_HEADER_LENGTH = 12;
export const MAX_CSRC_COUNT = 15;
/** RFC 8285 §4.2: the "defined by profile" value of one-byte header extensions. */
export const ONE_BYTE_EXTENSION_PROFILE = 0xbede;
/** RFC 8285 §4.3: two-byte header extensions use 0x100 followed by 4 "appbits". */
export const TWO_BYTE_EXTENSION_PROFILE = 0x1000;

/** The RFC 3550 §5.3.1 header extension: a 16-bit profile value and whole 32-bit words of data. */
export interface RtpHeaderExtension {
  /** The "defined by profile" field: 0xBEDE (RFC 8285 one-byte), 0x1000–0x100F (two-byte), or anything else. */
  profile: number;
  /** The extension data, a multiple of 4 bytes. */
  data: Buffer;
}

export interface RtpPacket {
  /** 0–127. */
  payloadType: number;
  marker: boolean;
  /** 0–65535. */
  sequenceNumber: number;
  /** 0–2^32-1, in the payload's clock (48 kHz for Opus, RFC 7587 §4.1). */
  timestamp: number;
  /** 0–2^32-1. */
  ssrc: number;
  /** Up to 15 contributing sources. */
  csrcs: number[];
  /** Present when the X bit is set. */
  extension?: RtpHeaderExtension;
  payload: Buffer;
  /**
   * Padding octets after the payload, the last of which holds the count
   * (so 1–255); 0 when the P bit is clear. Encoding pads with zeros.
   */
  padding: number;
}

/** RFC 7983 §7: the first byte of RTP and RTCP is 128–191. Only the demultiplexing test. */
export function isRtpOrRtcp(packet: Uint8Array): boolean {
  return packet.length > 0 && packet[0]! >= 128 && packet[0]! <= 191;
}

/** RFC 5761 §4: within RTP/RTCP, a second byte (marker + payload type) of 192–223 is an RTCP packet type. */
export function isRtcpPacket(packet: Uint8Array): boolean {
  return isRtpOrRtcp(packet) && packet.length > 1 && packet[1]! >= 192 && packet[1]! <= 223;
}

/** True for an RTP (not RTCP) packet by the first two bytes; `decodeRtpPacket` does the validation. */
export function isRtpPacket(packet: Uint8Array): boolean {
  return isRtpOrRtcp(packet) && packet.length > 1 && !isRtcpPacket(packet);
}

function asBuffer(packet: Uint8Array): Buffer {
  return Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
}

/**
 * The length of the header — fixed part, CSRC list and extension — after
 * checking the version and that all of it is present. SRTP protects what
 * follows it.
 */
export function rtpHeaderLength(packet: Uint8Array): number {
  const buf = asBuffer(packet);
  if (buf.length < RTP_HEADER_LENGTH) {
    throw new RtpError('ERR_RTP_TRUNCATED', `RTP header: length ${buf.length}, expected at least ${RTP_HEADER_LENGTH}`);
  }
  const version = buf[0]! >> 6;
  if (version !== RTP_VERSION) throw new RtpError('ERR_RTP_VERSION', `RTP header: version ${version}, expected ${RTP_VERSION}`);
  const csrcCount = buf[0]! & 0x0f;
  let length = RTP_HEADER_LENGTH + 4 * csrcCount;
  if (buf.length < length) {
    throw new RtpError('ERR_RTP_TRUNCATED', `RTP header: ${csrcCount} CSRCs need ${length} bytes, packet has ${buf.length}`);
  }
  if (buf[0]! & 0x10) {
    if (buf.length < length + 4) {
      throw new RtpError('ERR_RTP_EXTENSION', `RTP header extension at offset ${length}: header truncated, ${buf.length - length} bytes left`);
    }
    const words = buf.readUInt16BE(length + 2);
    const end = length + 4 + 4 * words;
    if (end > buf.length) {
      throw new RtpError('ERR_RTP_EXTENSION', `RTP header extension at offset ${length}: ${words} words (${4 * words} bytes) run past the end of the packet (${buf.length - length - 4} bytes left)`);
    }
    length = end;
  }
  return length;
}

/**
 * Decode and validate an RTP packet. The payload and extension data are
 * copies. Throws `RtpError`: `ERR_RTP_TRUNCATED`, `ERR_RTP_VERSION`,
 * `ERR_RTP_EXTENSION`, `ERR_RTP_PADDING`, and `ERR_RTP_PAYLOAD_TYPE` for a
 * second byte of 192–223, which on a muxed port is RTCP (RFC 5761 §4).
 */
export function decodeRtpPacket(packet: Uint8Array): RtpPacket {
  const buf = asBuffer(packet);
  const headerLength = rtpHeaderLength(buf);
  if (buf[1]! >= 192 && buf[1]! <= 223) {
    throw new RtpError('ERR_RTP_PAYLOAD_TYPE', `RTP header: second byte ${buf[1]} is an RTCP packet type (RFC 5761 §4), not marker + payload type`);
  }
  const csrcCount = buf[0]! & 0x0f;
  const csrcs: number[] = [];
  for (let i = 0; i < csrcCount; i++) csrcs.push(buf.readUInt32BE(RTP_HEADER_LENGTH + 4 * i));
  let extension: RtpHeaderExtension | undefined;
  if (buf[0]! & 0x10) {
    const at = RTP_HEADER_LENGTH + 4 * csrcCount;
    extension = { profile: buf.readUInt16BE(at), data: Buffer.from(buf.subarray(at + 4, headerLength)) };
  }
  let padding = 0;
  if (buf[0]! & 0x20) {
    padding = buf[buf.length - 1]!;
    const room = buf.length - headerLength;
    if (padding === 0) throw new RtpError('ERR_RTP_PADDING', 'RTP padding: P bit set but the padding count is 0, expected 1 or more');
    if (padding > room) {
      throw new RtpError('ERR_RTP_PADDING', `RTP padding: count ${padding} exceeds the ${room} bytes after the ${headerLength}-byte header`);
    }
  }
  const result: RtpPacket = {
    payloadType: buf[1]! & 0x7f,
    marker: (buf[1]! & 0x80) !== 0,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    csrcs,
    payload: Buffer.from(buf.subarray(headerLength, buf.length - padding)),
    padding,
  };
  if (extension) result.extension = extension;
  return result;
}

function checkUint(what: string, value: unknown, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RtpError('ERR_RTP_ENCODE', `RTP ${what}: ${String(value)}, expected an integer 0..${max}`);
  }
}

/** Encode a packet; a decoded packet re-encodes to its bytes (padding as zeros). Throws `RtpError` `ERR_RTP_ENCODE`. */
export function encodeRtpPacket(packet: RtpPacket): Buffer {
  checkUint('payload type', packet.payloadType, 0x7f);
  checkUint('sequence number', packet.sequenceNumber, 0xffff);
  checkUint('timestamp', packet.timestamp, 0xffffffff);
  checkUint('SSRC', packet.ssrc, 0xffffffff);
  checkUint('padding', packet.padding, 0xff);
  const secondByte = (packet.marker ? 0x80 : 0) | packet.payloadType;
  if (secondByte >= 192 && secondByte <= 223) {
    throw new RtpError('ERR_RTP_ENCODE', `RTP header: marker with payload type ${packet.payloadType} reads as RTCP packet type ${secondByte} (RFC 5761 §4)`);
  }
  if (packet.csrcs.length > MAX_CSRC_COUNT) {
    throw new RtpError('ERR_RTP_ENCODE', `RTP header: ${packet.csrcs.length} CSRCs, expected at most ${MAX_CSRC_COUNT}`);
  }
  packet.csrcs.forEach((csrc, i) => checkUint(`CSRC ${i}`, csrc, 0xffffffff));
  const ext = packet.extension;
  if (ext) {
    checkUint('header extension profile', ext.profile, 0xffff);
    if (ext.data.length % 4 !== 0 || ext.data.length > 4 * 0xffff) {
      throw new RtpError('ERR_RTP_ENCODE', `RTP header extension: ${ext.data.length} bytes of data, expected a multiple of 4 up to ${4 * 0xffff}`);
    }
  }
  const headerLength = RTP_HEADER_LENGTH + 4 * packet.csrcs.length + (ext ? 4 + ext.data.length : 0);
  const out = Buffer.alloc(headerLength + packet.payload.length + packet.padding);
  out[0] = (RTP_VERSION << 6) | (packet.padding > 0 ? 0x20 : 0) | (ext ? 0x10 : 0) | packet.csrcs.length;
  out[1] = secondByte;
  out.writeUInt16BE(packet.sequenceNumber, 2);
  out.writeUInt32BE(packet.timestamp, 4);
  out.writeUInt32BE(packet.ssrc, 8);
  packet.csrcs.forEach((csrc, i) => out.writeUInt32BE(csrc, RTP_HEADER_LENGTH + 4 * i));
  if (ext) {
    const at = RTP_HEADER_LENGTH + 4 * packet.csrcs.length;
    out.writeUInt16BE(ext.profile, at);
    out.writeUInt16BE(ext.data.length / 4, at + 2);
    ext.data.copy(out, at + 4);
  }
  packet.payload.copy(out, headerLength);
  if (packet.padding > 0) out[out.length - 1] = packet.padding;
  return out;
}

// ------------------------------------------------------------ RFC 8285 elements

/** One RFC 8285 header extension element: a local id (1–14 one-byte, 1–255 two-byte) and its data. */
export interface RtpExtensionElement {
  id: number;
  data: Buffer;
}

/**
 * Read the elements of an RFC 8285 one-byte (profile 0xBEDE) or two-byte
 * (0x100X) header extension. Padding bytes are skipped; a one-byte id of 15
 * ends the parse (§4.2). Throws `RtpError` `ERR_RTP_EXTENSION` for another
 * profile or an element that runs past the data.
 */
export function decodeExtensionElements(extension: RtpHeaderExtension): RtpExtensionElement[] {
  const { profile, data } = extension;
  const oneByte = profile === ONE_BYTE_EXTENSION_PROFILE;
  if (!oneByte && (profile & 0xfff0) !== TWO_BYTE_EXTENSION_PROFILE) {
    throw new RtpError('ERR_RTP_EXTENSION', `RTP header extension: profile 0x${profile.toString(16).padStart(4, '0')} is not an RFC 8285 one-byte (0xbede) or two-byte (0x100X) extension`);
  }
  const elements: RtpExtensionElement[] = [];
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) {
      at++;
      continue;
    }
    let id: number;
    let length: number;
    if (oneByte) {
      id = data[at]! >> 4;
      if (id === 15) break;
      if (id === 0) throw new RtpError('ERR_RTP_EXTENSION', `RTP one-byte extension element at offset ${at}: id 0 with length ${(data[at]! & 0x0f) + 1}, id 0 is padding only`);
      length = (data[at]! & 0x0f) + 1;
      at += 1;
    } else {
      if (at + 2 > data.length) throw new RtpError('ERR_RTP_EXTENSION', `RTP two-byte extension element at offset ${at}: header truncated`);
      id = data[at]!;
      length = data[at + 1]!;
      at += 2;
    }
    if (at + length > data.length) {
      throw new RtpError('ERR_RTP_EXTENSION', `RTP extension element id ${id}: length ${length} runs past the extension data (${data.length - at} bytes left)`);
    }
    elements.push({ id, data: Buffer.from(data.subarray(at, at + length)) });
    at += length;
  }
  return elements;
}

/**
 * Build an RFC 8285 header extension, one-byte form when every element
 * allows it (id 1–14, 1–16 bytes), two-byte otherwise; padded with zeros to
 * whole words. Throws `RtpError` `ERR_RTP_ENCODE` for an element neither form can carry.
 */
export function encodeExtensionElements(elements: readonly RtpExtensionElement[], form?: 'one-byte' | 'two-byte'): RtpHeaderExtension {
  const fitsOneByte = elements.every((e) => e.id >= 1 && e.id <= 14 && e.data.length >= 1 && e.data.length <= 16);
  const chosen = form ?? (fitsOneByte ? 'one-byte' : 'two-byte');
  const parts: Buffer[] = [];
  for (const e of elements) {
    if (chosen === 'one-byte') {
      if (e.id < 1 || e.id > 14 || e.data.length < 1 || e.data.length > 16) {
        throw new RtpError('ERR_RTP_ENCODE', `RTP one-byte extension element id ${e.id}, ${e.data.length} bytes: expected id 1..14 and 1..16 bytes`);
      }
      parts.push(Buffer.from([(e.id << 4) | (e.data.length - 1)]), e.data);
    } else {
      if (!Number.isInteger(e.id) || e.id < 1 || e.id > 255 || e.data.length > 255) {
        throw new RtpError('ERR_RTP_ENCODE', `RTP two-byte extension element id ${e.id}, ${e.data.length} bytes: expected id 1..255 and at most 255 bytes`);
      }
      parts.push(Buffer.from([e.id, e.data.length]), e.data);
    }
  }
  const body = Buffer.concat(parts);
  const data = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  return { profile: chosen === 'one-byte' ? ONE_BYTE_EXTENSION_PROFILE : TWO_BYTE_EXTENSION_PROFILE, data };
}

// ------------------------------------------------------------ serial numbers

/** `a - b` for 16-bit sequence numbers, as a signed distance in -32768..32767. */
export function seqDiff(a: number, b: number): number {
  return ((((a - b) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
}

/** True when sequence number `a` comes after `b` (within half the number space). */
export function seqNewer(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

/** `seq + n` modulo 2^16. */
export function seqAdd(seq: number, n: number): number {
  return (seq + n) & 0xffff;
}

/** `a - b` for 32-bit RTP timestamps, as a signed distance in -2^31..2^31-1. */
export function timestampDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/**
 * The extended (unwrapped) sequence number whose low 16 bits are `seq`,
 * nearest to the extended `reference` — the RFC 3711 §3.3.1 index guess
 * and the RFC 3550 A.1 cycle count in one. May be negative when `seq`
 * precedes the start of the count.
 */
export function extendSequence(seq: number, reference: number): number {
  return reference + seqDiff(seq, reference & 0xffff);
}

/** The extended timestamp whose low 32 bits are `timestamp`, nearest to the extended `reference`. */
export function extendTimestamp(timestamp: number, reference: number): number {
  const low = ((reference % 0x100000000) + 0x100000000) % 0x100000000;
  return reference + timestampDiff(timestamp, low);
}
