import { RelayError } from './errors.js';

/**
 * TURN ChannelData (RFC 8656 §12.4), the framing of relayed media on UDP:
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |         Channel Number        |            Length             |
 *    +-------------------------------+-------------------------------+
 *    /                       Application Data                        /
 *
 * Channel numbers are 0x4000–0x4FFF, so the first byte is 64–79: the range
 * RFC 7983 gives TURN channels on a port shared with STUN (0–3) and RTP/RTCP
 * (128–191). Over UDP the data need not be padded to 4 bytes; a sender may
 * still pad, so up to 3 bytes after `Length` are accepted and ignored, more
 * are refused. Pure codec; the payload is never looked into (it is SRTP or
 * other end-to-end encrypted data).
 */
export const MIN_CHANNEL = 0x4000;
export const MAX_CHANNEL = 0x4fff;
export const CHANNEL_DATA_HEADER = 4;
/** The most a 16-bit Length can say. */
export const MAX_CHANNEL_PAYLOAD = 0xffff;

export interface ChannelData {
  channel: number;
  /** A view into the packet (not a copy). */
  payload: Buffer;
}

/** True when the first byte says TURN channel (RFC 7983: 64–79). Only the demultiplexing test. */
export function isChannelData(packet: Uint8Array): boolean {
  return packet.length > 0 && packet[0]! >= 0x40 && packet[0]! <= 0x4f;
}

export function isValidChannel(channel: number): boolean {
  return Number.isInteger(channel) && channel >= MIN_CHANNEL && channel <= MAX_CHANNEL;
}

/**
 * What is wrong with `packet` as ChannelData received over UDP, or
 * undefined when it is fine. Allocates nothing (the relay's hot path uses
 * it): the answers are constant strings.
 */
export function channelDataProblem(packet: Uint8Array): string | undefined {
  if (packet.length < CHANNEL_DATA_HEADER) return 'shorter than its 4-byte header';
  const channel = (packet[0]! << 8) | packet[1]!;
  if (channel < MIN_CHANNEL || channel > MAX_CHANNEL) return 'channel number outside 0x4000-0x4fff';
  const length = (packet[2]! << 8) | packet[3]!;
  const extra = packet.length - CHANNEL_DATA_HEADER - length;
  if (extra < 0) return 'length runs past the end of the datagram';
  if (extra > 3) return 'more than 3 bytes of padding after the data';
  return undefined;
}

/** Frame `payload` for `channel` (no padding: UDP). Throws `ERR_RELAY_CHANNEL_DATA` for a bad channel or an oversized payload. */
export function encodeChannelData(channel: number, payload: Uint8Array): Buffer {
  if (!isValidChannel(channel)) {
    throw new RelayError('ERR_RELAY_CHANNEL_DATA', `ChannelData: channel ${String(channel)}, expected an integer 0x4000..0x4fff`);
  }
  if (payload.length > MAX_CHANNEL_PAYLOAD) {
    throw new RelayError('ERR_RELAY_CHANNEL_DATA', `ChannelData: payload of ${payload.length} bytes, expected at most ${MAX_CHANNEL_PAYLOAD}`);
  }
  const out = Buffer.allocUnsafe(CHANNEL_DATA_HEADER + payload.length);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(payload.length, 2);
  out.set(payload, CHANNEL_DATA_HEADER);
  return out;
}

/** Decode ChannelData received over UDP. Throws `ERR_RELAY_CHANNEL_DATA` naming what is wrong. */
export function decodeChannelData(packet: Uint8Array): ChannelData {
  const problem = channelDataProblem(packet);
  if (problem !== undefined) {
    const head = packet.length >= 4 ? ` (channel 0x${((packet[0]! << 8) | packet[1]!).toString(16)}, length ${(packet[2]! << 8) | packet[3]!})` : '';
    throw new RelayError('ERR_RELAY_CHANNEL_DATA', `ChannelData of ${packet.length} bytes${head}: ${problem}`);
  }
  const buf = Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  const length = buf.readUInt16BE(2);
  return { channel: buf.readUInt16BE(0), payload: buf.subarray(CHANNEL_DATA_HEADER, CHANNEL_DATA_HEADER + length) };
}
