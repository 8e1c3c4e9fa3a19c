/**
 * RTCP compound packets (RFC 3550 §6): sender and receiver reports with
 * their report blocks (§6.4), source descriptions (§6.5) and BYE (§6.6);
 * any other packet type (APP, feedback, XR …) is kept as it came. Pure codec:
 * `decodeRtcpCompound(bytes)` / `encodeRtcpCompound(packets)`, validated as
 * RFC 3550 Appendix A.2 describes — version 2, padding only in the last
 * packet, lengths that add up to the datagram, SR or RR first. Errors are
 * `RtcpError` with a stable code.
 *
 * NTP timestamps (64-bit, seconds since 1900 in the high 32 bits) are bigints;
 * `ntpShort` takes the middle 32 bits used by LSR and DLSR.
 */
import { RtcpError } from './errors.js';

export const RTCP_VERSION = 2;

export const RtcpPacketType = {
  SR: 200,
  RR: 201,
  SDES: 202,
  BYE: 203,
  APP: 204,
} as const;

/** SDES item types (RFC 3550 §6.5). */
export const SdesItemType = {
  END: 0,
  CNAME: 1,
  NAME: 2,
  EMAIL: 3,
  PHONE: 4,
  LOC: 5,
  TOOL: 6,
  NOTE: 7,
  PRIV: 8,
} as const;

/** RFC 3550 §6.4.1 reception report block. */
export interface ReportBlock {
  /** The source this block reports on. */
  ssrc: number;
  /** Fraction lost since the previous report, as a fixed-point number with the point at the left (0–255 = 0–255/256). */
  fractionLost: number;
  /** Cumulative number of packets lost: signed 24-bit (duplicates can make it negative). */
  cumulativeLost: number;
  /** Extended highest sequence number received: cycles in the high 16 bits. */
  highestSequence: number;
  /** Interarrival jitter in timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP timestamp of the last SR from this source (0 if none). */
  lastSenderReport: number;
  /** Delay since that SR was received, in 1/65536 s. */
  delaySinceLastSenderReport: number;
}

export interface SenderInfo {
  /** 64-bit NTP timestamp of this report. */
  ntpTimestamp: bigint;
  /** The same instant on the RTP timestamp clock. */
  rtpTimestamp: number;
  packetCount: number;
  /** Payload octets sent (headers and padding excluded). */
  octetCount: number;
}

export interface RtcpSenderReport {
  kind: 'sr';
  ssrc: number;
  sender: SenderInfo;
  reports: ReportBlock[];
  /** Profile-specific extension after the report blocks (whole words), if any. */
  extension?: Buffer;
}

export interface RtcpReceiverReport {
  kind: 'rr';
  ssrc: number;
  reports: ReportBlock[];
  extension?: Buffer;
}

export interface SdesItem {
  /** 1–8 (`SdesItemType`); 0 ends a chunk and is never an item. */
  type: number;
  /** UTF-8 text of at most 255 bytes. */
  value: string;
}

export interface SdesChunk {
  ssrc: number;
  items: SdesItem[];
}

export interface RtcpSdes {
  kind: 'sdes';
  chunks: SdesChunk[];
}

export interface RtcpBye {
  kind: 'bye';
  ssrcs: number[];
  /** UTF-8 reason for leaving, at most 255 bytes. */
  reason?: string;
}

/** Any packet type this codec does not interpret (APP 204, RTPFB 205, PSFB 206, XR 207 …), kept byte for byte. */
export interface RtcpOther {
  kind: 'other';
  packetType: number;
  /** The 5-bit count/subtype field. */
  count: number;
  /** Everything after the 4-byte header (a multiple of 4 bytes). */
  body: Buffer;
}

export type RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpSdes | RtcpBye | RtcpOther;

export interface RtcpDecodeOptions {
  /**
   * Accept a datagram that does not start with SR or RR (reduced-size RTCP,
   * RFC 5506). Default false: RFC 3550 §6.1 compound packets only.
   */
  allowReducedSize?: boolean;
}

const REPORT_BLOCK_LENGTH = 24;
const SENDER_INFO_LENGTH = 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function asBuffer(packet: Uint8Array): Buffer {
  return Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
}

function typeName(pt: number): string {
  const names: Record<number, string> = { 200: 'SR', 201: 'RR', 202: 'SDES', 203: 'BYE', 204: 'APP', 205: 'RTPFB', 206: 'PSFB', 207: 'XR' };
  return names[pt] ?? `type ${pt}`;
}

function readText(what: string, bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new RtcpError(what.startsWith('BYE') ? 'ERR_RTCP_BYE' : 'ERR_RTCP_SDES', `RTCP ${what}: not valid UTF-8`, { cause: err });
  }
}

/**
 * Decode and validate an RTCP compound packet (after SRTCP has removed its
 * trailer). Throws `RtcpError`: `ERR_RTCP_TRUNCATED`, `ERR_RTCP_VERSION`,
 * `ERR_RTCP_LENGTH`, `ERR_RTCP_PADDING`, `ERR_RTCP_COMPOUND`,
 * `ERR_RTCP_SDES`, `ERR_RTCP_BYE`.
 */
export function decodeRtcpCompound(packet: Uint8Array, options: RtcpDecodeOptions = {}): RtcpPacket[] {
  const buf = asBuffer(packet);
  if (buf.length < 4) throw new RtcpError('ERR_RTCP_TRUNCATED', `RTCP: length ${buf.length}, expected at least 4`);
  const packets: RtcpPacket[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const where = `packet ${packets.length + 1} at offset ${offset}`;
    if (buf.length - offset < 4) throw new RtcpError('ERR_RTCP_TRUNCATED', `RTCP ${where}: header truncated, ${buf.length - offset} bytes left`);
    const first = buf[offset]!;
    const version = first >> 6;
    if (version !== RTCP_VERSION) throw new RtcpError('ERR_RTCP_VERSION', `RTCP ${where}: version ${version}, expected ${RTCP_VERSION}`);
    const pt = buf[offset + 1]!;
    const length = 4 * (buf.readUInt16BE(offset + 2) + 1);
    if (offset + length > buf.length) {
      throw new RtcpError('ERR_RTCP_LENGTH', `RTCP ${where} (${typeName(pt)}): length ${length} bytes runs past the end of the datagram (${buf.length - offset} bytes left)`);
    }
    let end = offset + length;
    if (first & 0x20) {
      if (end !== buf.length) throw new RtcpError('ERR_RTCP_PADDING', `RTCP ${where} (${typeName(pt)}): padding bit set, but only the last packet of a compound may be padded`);
      const pad = buf[end - 1]!;
      if (pad === 0 || pad > length - 4) {
        throw new RtcpError('ERR_RTCP_PADDING', `RTCP ${where} (${typeName(pt)}): padding count ${pad}, expected 1..${length - 4}`);
      }
      end -= pad;
    }
    if (packets.length === 0 && !options.allowReducedSize && pt !== RtcpPacketType.SR && pt !== RtcpPacketType.RR) {
      throw new RtcpError('ERR_RTCP_COMPOUND', `RTCP compound: first packet is ${typeName(pt)}, expected SR or RR (RFC 3550 §6.1)`);
    }
    packets.push(decodeOne(buf.subarray(offset, end), first & 0x1f, pt, where));
    offset += length;
  }
  return packets;
}

function decodeOne(p: Buffer, count: number, pt: number, where: string): RtcpPacket {
  switch (pt) {
    case RtcpPacketType.SR:
    case RtcpPacketType.RR:
      return decodeReport(p, count, pt, where);
    case RtcpPacketType.SDES:
      return { kind: 'sdes', chunks: decodeSdes(p, count, where) };
    case RtcpPacketType.BYE:
      return decodeBye(p, count, where);
    default:
      return { kind: 'other', packetType: pt, count, body: Buffer.from(p.subarray(4)) };
  }
}

function decodeReport(p: Buffer, count: number, pt: number, where: string): RtcpSenderReport | RtcpReceiverReport {
  const isSr = pt === RtcpPacketType.SR;
  const fixed = 8 + (isSr ? SENDER_INFO_LENGTH : 0);
  const needed = fixed + REPORT_BLOCK_LENGTH * count;
  if (p.length < needed) {
    throw new RtcpError('ERR_RTCP_LENGTH', `RTCP ${where} (${isSr ? 'SR' : 'RR'}): ${count} report blocks need ${needed} bytes, packet has ${p.length}`);
  }
  const reports: ReportBlock[] = [];
  for (let i = 0; i < count; i++) reports.push(readReportBlock(p, fixed + REPORT_BLOCK_LENGTH * i));
  const ssrc = p.readUInt32BE(4);
  const extension = p.length > needed ? Buffer.from(p.subarray(needed)) : undefined;
  if (isSr) {
    const sender: SenderInfo = {
      ntpTimestamp: p.readBigUInt64BE(8),
      rtpTimestamp: p.readUInt32BE(16),
      packetCount: p.readUInt32BE(20),
      octetCount: p.readUInt32BE(24),
    };
    const sr: RtcpSenderReport = { kind: 'sr', ssrc, sender, reports };
    if (extension) sr.extension = extension;
    return sr;
  }
  const rr: RtcpReceiverReport = { kind: 'rr', ssrc, reports };
  if (extension) rr.extension = extension;
  return rr;
}

function readReportBlock(p: Buffer, at: number): ReportBlock {
  return {
    ssrc: p.readUInt32BE(at),
    fractionLost: p[at + 4]!,
    cumulativeLost: p.readIntBE(at + 5, 3),
    highestSequence: p.readUInt32BE(at + 8),
    jitter: p.readUInt32BE(at + 12),
    lastSenderReport: p.readUInt32BE(at + 16),
    delaySinceLastSenderReport: p.readUInt32BE(at + 20),
  };
}

function decodeSdes(p: Buffer, count: number, where: string): SdesChunk[] {
  const chunks: SdesChunk[] = [];
  let at = 4;
  for (let c = 0; c < count; c++) {
    if (p.length - at < 4) throw new RtcpError('ERR_RTCP_SDES', `RTCP ${where} (SDES): chunk ${c + 1} of ${count} missing, ${p.length - at} bytes left`);
    const ssrc = p.readUInt32BE(at);
    at += 4;
    const items: SdesItem[] = [];
    for (;;) {
      if (at >= p.length) throw new RtcpError('ERR_RTCP_SDES', `RTCP ${where} (SDES): chunk ${c + 1} has no terminating null item`);
      const type = p[at]!;
      if (type === SdesItemType.END) break;
      if (at + 2 > p.length) throw new RtcpError('ERR_RTCP_SDES', `RTCP ${where} (SDES): item header of chunk ${c + 1} truncated`);
      const length = p[at + 1]!;
      if (at + 2 + length > p.length) {
        throw new RtcpError('ERR_RTCP_SDES', `RTCP ${where} (SDES): item type ${type} of chunk ${c + 1}: length ${length} runs past the packet (${p.length - at - 2} bytes left)`);
      }
      items.push({ type, value: readText(`${where} (SDES) item type ${type}`, p.subarray(at + 2, at + 2 + length)) });
      at += 2 + length;
    }
    // The null item, then null octets to the next 32-bit boundary (RFC 3550 §6.5).
    const next = (at + 4) & ~3;
    if (next > p.length) throw new RtcpError('ERR_RTCP_SDES', `RTCP ${where} (SDES): chunk ${c + 1} padding runs past the packet`);
    for (let i = at; i < next; i++) {
      if (p[i] !== 0) throw new RtcpError('ERR_RTCP_SDES', `RTCP ${where} (SDES): chunk ${c + 1}: non-zero byte 0x${p[i]!.toString(16)} in the padding after the null item`);
    }
    at = next;
    chunks.push({ ssrc, items });
  }
  if (at !== p.length) throw new RtcpError('ERR_RTCP_SDES', `RTCP ${where} (SDES): ${p.length - at} bytes after the ${count} chunks the count announces`);
  return chunks;
}

function decodeBye(p: Buffer, count: number, where: string): RtcpBye {
  const needed = 4 + 4 * count;
  if (p.length < needed) throw new RtcpError('ERR_RTCP_BYE', `RTCP ${where} (BYE): ${count} SSRCs need ${needed} bytes, packet has ${p.length}`);
  const ssrcs: number[] = [];
  for (let i = 0; i < count; i++) ssrcs.push(p.readUInt32BE(4 + 4 * i));
  const bye: RtcpBye = { kind: 'bye', ssrcs };
  if (p.length > needed) {
    const length = p[needed]!;
    if (needed + 1 + length > p.length) {
      throw new RtcpError('ERR_RTCP_BYE', `RTCP ${where} (BYE): reason length ${length} runs past the packet (${p.length - needed - 1} bytes left)`);
    }
    bye.reason = readText(`${where} BYE reason`, p.subarray(needed + 1, needed + 1 + length));
  }
  return bye;
}

// ------------------------------------------------------------ encoding

function encodeError(message: string): RtcpError {
  return new RtcpError('ERR_RTCP_ENCODE', message);
}

function checkUint(what: string, value: unknown, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) throw encodeError(`RTCP ${what}: ${String(value)}, expected an integer 0..${max}`);
}

function header(count: number, pt: number, bodyLength: number): Buffer {
  const h = Buffer.alloc(4);
  h[0] = (RTCP_VERSION << 6) | count;
  h[1] = pt;
  h.writeUInt16BE((4 + bodyLength) / 4 - 1, 2);
  return h;
}

function encodeReportBlock(b: ReportBlock, i: number): Buffer {
  checkUint(`report block ${i} SSRC`, b.ssrc, 0xffffffff);
  checkUint(`report block ${i} fraction lost`, b.fractionLost, 0xff);
  if (!Number.isInteger(b.cumulativeLost) || b.cumulativeLost < -0x800000 || b.cumulativeLost > 0x7fffff) {
    throw encodeError(`RTCP report block ${i} cumulative lost: ${b.cumulativeLost}, expected a signed 24-bit integer`);
  }
  checkUint(`report block ${i} highest sequence`, b.highestSequence, 0xffffffff);
  checkUint(`report block ${i} jitter`, b.jitter, 0xffffffff);
  checkUint(`report block ${i} LSR`, b.lastSenderReport, 0xffffffff);
  checkUint(`report block ${i} DLSR`, b.delaySinceLastSenderReport, 0xffffffff);
  const out = Buffer.alloc(REPORT_BLOCK_LENGTH);
  out.writeUInt32BE(b.ssrc, 0);
  out[4] = b.fractionLost;
  out.writeIntBE(b.cumulativeLost, 5, 3);
  out.writeUInt32BE(b.highestSequence, 8);
  out.writeUInt32BE(b.jitter, 12);
  out.writeUInt32BE(b.lastSenderReport, 16);
  out.writeUInt32BE(b.delaySinceLastSenderReport, 20);
  return out;
}

function encodeReport(p: RtcpSenderReport | RtcpReceiverReport): Buffer {
  const name = p.kind === 'sr' ? 'SR' : 'RR';
  checkUint(`${name} SSRC`, p.ssrc, 0xffffffff);
  if (p.reports.length > 31) throw encodeError(`RTCP ${name}: ${p.reports.length} report blocks, expected at most 31`);
  if (p.extension && p.extension.length % 4 !== 0) throw encodeError(`RTCP ${name}: extension of ${p.extension.length} bytes, expected a multiple of 4`);
  const parts: Buffer[] = [];
  const ssrc = Buffer.alloc(4);
  ssrc.writeUInt32BE(p.ssrc);
  parts.push(ssrc);
  if (p.kind === 'sr') {
    const s = p.sender;
    if (typeof s.ntpTimestamp !== 'bigint' || s.ntpTimestamp < 0n || s.ntpTimestamp > 0xffffffffffffffffn) throw encodeError(`RTCP SR NTP timestamp: ${String(s.ntpTimestamp)}, expected a 64-bit unsigned bigint`);
    checkUint('SR RTP timestamp', s.rtpTimestamp, 0xffffffff);
    checkUint('SR packet count', s.packetCount, 0xffffffff);
    checkUint('SR octet count', s.octetCount, 0xffffffff);
    const info = Buffer.alloc(SENDER_INFO_LENGTH);
    info.writeBigUInt64BE(s.ntpTimestamp, 0);
    info.writeUInt32BE(s.rtpTimestamp, 8);
    info.writeUInt32BE(s.packetCount, 12);
    info.writeUInt32BE(s.octetCount, 16);
    parts.push(info);
  }
  p.reports.forEach((b, i) => parts.push(encodeReportBlock(b, i)));
  if (p.extension) parts.push(p.extension);
  const body = Buffer.concat(parts);
  return Buffer.concat([header(p.reports.length, p.kind === 'sr' ? RtcpPacketType.SR : RtcpPacketType.RR, body.length), body]);
}

function encodeSdes(p: RtcpSdes): Buffer {
  if (p.chunks.length > 31) throw encodeError(`RTCP SDES: ${p.chunks.length} chunks, expected at most 31`);
  const parts: Buffer[] = [];
  p.chunks.forEach((chunk, c) => {
    checkUint(`SDES chunk ${c + 1} SSRC`, chunk.ssrc, 0xffffffff);
    const bytes: Buffer[] = [Buffer.alloc(4)];
    bytes[0]!.writeUInt32BE(chunk.ssrc);
    let length = 4;
    for (const item of chunk.items) {
      checkUint(`SDES chunk ${c + 1} item type`, item.type, 0xff);
      if (item.type === SdesItemType.END) throw encodeError(`RTCP SDES chunk ${c + 1}: item type 0 is the terminator, not an item`);
      const value = Buffer.from(item.value, 'utf8');
      if (value.length > 255) throw encodeError(`RTCP SDES chunk ${c + 1} item type ${item.type}: ${value.length} bytes of text, expected at most 255`);
      bytes.push(Buffer.from([item.type, value.length]), value);
      length += 2 + value.length;
    }
    const padded = (length + 4) & ~3; // at least one null octet, then to a word boundary
    bytes.push(Buffer.alloc(padded - length));
    parts.push(...bytes);
  });
  const body = Buffer.concat(parts);
  return Buffer.concat([header(p.chunks.length, RtcpPacketType.SDES, body.length), body]);
}

function encodeBye(p: RtcpBye): Buffer {
  if (p.ssrcs.length > 31) throw encodeError(`RTCP BYE: ${p.ssrcs.length} SSRCs, expected at most 31`);
  const parts: Buffer[] = [];
  p.ssrcs.forEach((ssrc, i) => {
    checkUint(`BYE SSRC ${i}`, ssrc, 0xffffffff);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(ssrc);
    parts.push(b);
  });
  if (p.reason !== undefined) {
    const reason = Buffer.from(p.reason, 'utf8');
    if (reason.length > 255) throw encodeError(`RTCP BYE reason: ${reason.length} bytes, expected at most 255`);
    const length = 1 + reason.length;
    parts.push(Buffer.from([reason.length]), reason, Buffer.alloc((4 - (length % 4)) % 4));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([header(p.ssrcs.length, RtcpPacketType.BYE, body.length), body]);
}

function encodeOther(p: RtcpOther): Buffer {
  checkUint('packet type', p.packetType, 0xff);
  checkUint(`${typeName(p.packetType)} count`, p.count, 31);
  if (p.body.length % 4 !== 0) throw encodeError(`RTCP ${typeName(p.packetType)}: body of ${p.body.length} bytes, expected a multiple of 4`);
  return Buffer.concat([header(p.count, p.packetType, p.body.length), p.body]);
}

/** Encode one RTCP packet (no padding). Throws `RtcpError` `ERR_RTCP_ENCODE`. */
export function encodeRtcpPacket(packet: RtcpPacket): Buffer {
  let out: Buffer;
  switch (packet.kind) {
    case 'sr':
    case 'rr':
      out = encodeReport(packet);
      break;
    case 'sdes':
      out = encodeSdes(packet);
      break;
    case 'bye':
      out = encodeBye(packet);
      break;
    case 'other':
      out = encodeOther(packet);
      break;
    default:
      throw encodeError(`RTCP packet kind ${String((packet as { kind?: unknown }).kind)} is unknown`);
  }
  if (out.length > 4 * 0x10000) throw encodeError(`RTCP ${packet.kind} packet: ${out.length} bytes, expected at most ${4 * 0x10000}`);
  return out;
}

/**
 * Encode a compound packet. Like the decoder, it insists the first packet be
 * SR or RR unless `allowReducedSize` is set. Throws `RtcpError` `ERR_RTCP_ENCODE`.
 */
export function encodeRtcpCompound(packets: readonly RtcpPacket[], options: RtcpDecodeOptions = {}): Buffer {
  if (packets.length === 0) throw encodeError('RTCP compound: no packets');
  const first = packets[0]!;
  if (!options.allowReducedSize && first.kind !== 'sr' && first.kind !== 'rr') {
    throw encodeError(`RTCP compound: first packet is ${first.kind}, expected sr or rr (RFC 3550 §6.1)`);
  }
  return Buffer.concat(packets.map(encodeRtcpPacket));
}

// ------------------------------------------------------------ NTP time

/** Seconds from the NTP epoch (1900-01-01) to the Unix epoch. */
export const NTP_UNIX_OFFSET_SECONDS = 2_208_988_800;

/** The 64-bit NTP timestamp for a Unix time in milliseconds. */
export function ntpFromUnixMs(ms: number): bigint {
  const seconds = Math.floor(ms / 1000);
  const fraction = Math.round(((ms - seconds * 1000) / 1000) * 0x100000000);
  return (BigInt(seconds + NTP_UNIX_OFFSET_SECONDS) << 32n) + BigInt(fraction);
}

/** The Unix time in milliseconds of a 64-bit NTP timestamp. */
export function unixMsFromNtp(ntp: bigint): number {
  const seconds = Number(ntp >> 32n) - NTP_UNIX_OFFSET_SECONDS;
  const fraction = Number(ntp & 0xffffffffn) / 0x100000000;
  return (seconds + fraction) * 1000;
}

/** The middle 32 bits of an NTP timestamp (16.16 fixed-point seconds), as carried in LSR. */
export function ntpShort(ntp: bigint): number {
  return Number((ntp >> 16n) & 0xffffffffn);
}
