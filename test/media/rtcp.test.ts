import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RtcpError } from '../../src/media/errors.js';
import {
  RtcpPacketType,
  SdesItemType,
  decodeRtcpCompound,
  encodeRtcpCompound,
  encodeRtcpPacket,
  ntpFromUnixMs,
  ntpShort,
  unixMsFromNtp,
} from '../../src/media/rtcp.js';
import type { ReportBlock, RtcpPacket, RtcpReceiverReport, RtcpSenderReport } from '../../src/media/rtcp.js';
import { expectTyped, rng } from '../helpers/fuzz.js';

interface Published {
  rtcp: { name: string; hex: string[]; sr: { ssrc: number; ntpTimestamp: string; rtpTimestamp: number; packetCount: number; octetCount: number; reports: ReportBlock[] } }[];
  roundTrip: { senderReportNtp: string; senderReportUtc: string; lastSenderReport: string };
}

const file = JSON.parse(readFileSync(new URL('../vectors/rtp/published-packets.json', import.meta.url), 'utf8')) as Published;
const published = file.rtcp[0]!;
const publishedBytes = Buffer.from(published.hex.join(''), 'hex');

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    if (err instanceof RtcpError) return err.code;
    throw err;
  }
  return undefined;
}

const block = (ssrc: number, overrides: Partial<ReportBlock> = {}): ReportBlock => ({
  ssrc,
  fractionLost: 25,
  cumulativeLost: 1234,
  highestSequence: 0x0001_0005,
  jitter: 480,
  lastSenderReport: 0xb7052000,
  delaySinceLastSenderReport: 0x00054000,
  ...overrides,
});

const sr: RtcpSenderReport = {
  kind: 'sr',
  ssrc: 0x11111111,
  sender: { ntpTimestamp: 0xb44db70520000000n, rtpTimestamp: 48000, packetCount: 50, octetCount: 4000 },
  reports: [block(0x22222222)],
};

describe('RTCP codec: RFC 7714 §17 sender report', () => {
  it('is refused as printed: its length field says 14 words, the packet has 13', () => {
    expect(publishedBytes.length).toBe(52);
    expect(publishedBytes.readUInt16BE(2)).toBe(13);
    expect(codeOf(() => decodeRtcpCompound(publishedBytes))).toBe('ERR_RTCP_LENGTH');
  });

  it('with the length corrected to 12: every field, the negative cumulative loss included, and the same bytes back', () => {
    const corrected = Buffer.from(publishedBytes);
    corrected.writeUInt16BE(12, 2);
    const packets = decodeRtcpCompound(corrected);
    expect(packets).toHaveLength(1);
    const p = packets[0] as RtcpSenderReport;
    expect(p.kind).toBe('sr');
    expect(p.ssrc).toBe(published.sr.ssrc);
    expect(Buffer.from([p.ssrc >>> 24, (p.ssrc >>> 16) & 0xff, (p.ssrc >>> 8) & 0xff, p.ssrc & 0xff]).toString()).toBe('Mars');
    expect(p.sender).toEqual({
      ntpTimestamp: BigInt(`0x${published.sr.ntpTimestamp}`),
      rtpTimestamp: published.sr.rtpTimestamp,
      packetCount: published.sr.packetCount,
      octetCount: published.sr.octetCount,
    });
    expect(p.reports).toEqual(published.sr.reports);
    expect(p.reports[0]!.cumulativeLost).toBeLessThan(0);
    expect(p.extension).toBeUndefined();
    expect(encodeRtcpCompound(packets)).toEqual(corrected);
  });
});

describe('RTCP codec: compound packets', () => {
  it('SR + SDES (CNAME, TOOL) + BYE with reason: layout and round trip', () => {
    const packets: RtcpPacket[] = [
      sr,
      { kind: 'sdes', chunks: [{ ssrc: 0x11111111, items: [{ type: SdesItemType.CNAME, value: 'alice@phone' }, { type: SdesItemType.TOOL, value: 'partyline' }] }] },
      { kind: 'bye', ssrcs: [0x11111111], reason: 'hangup' },
    ];
    const buf = encodeRtcpCompound(packets);
    // SR: header 4 + SSRC 4 + sender info 20 + one block 24 = 52 bytes, length field 12.
    expect(buf.subarray(0, 4).toString('hex')).toBe('81c8000c');
    // SDES at 52: SSRC, CNAME (2+11), TOOL (2+9), null + pad to a word = 4 + 13 + 11 + 4 = 32 → length 8.
    expect(buf.subarray(52, 56).toString('hex')).toBe('81ca0008');
    expect(buf.subarray(60, 62).toString('hex')).toBe('010b');
    expect(buf.subarray(84, 88).toString('hex')).toBe('00000000');
    // BYE at 88: one SSRC, reason "hangup" (1+6, padded to 8) → length 3.
    expect(buf.subarray(88, 92).toString('hex')).toBe('81cb0003');
    expect(buf.subarray(96, 104).toString('hex')).toBe(`06${Buffer.from('hangup').toString('hex')}00`);
    expect(buf.length).toBe(104);
    expect(decodeRtcpCompound(buf)).toEqual(packets);
  });

  it('RR with two blocks and a profile extension; BYE without reason; SDES with several chunks', () => {
    const rr: RtcpReceiverReport = { kind: 'rr', ssrc: 7, reports: [block(1), block(2, { cumulativeLost: -8388608, fractionLost: 255 })], extension: Buffer.from('0badf00d', 'hex') };
    const packets: RtcpPacket[] = [
      rr,
      { kind: 'sdes', chunks: [{ ssrc: 1, items: [{ type: 1, value: 'a' }] }, { ssrc: 2, items: [{ type: 1, value: 'bc' }, { type: 2, value: 'Zoë' }] }, { ssrc: 3, items: [] }] },
      { kind: 'bye', ssrcs: [1, 2] },
    ];
    const buf = encodeRtcpCompound(packets);
    expect(buf[0]).toBe(0x82);
    expect(buf[1]).toBe(RtcpPacketType.RR);
    expect(decodeRtcpCompound(buf)).toEqual(packets);
  });

  it('keeps packet types it does not interpret (APP, feedback) byte for byte', () => {
    const app: RtcpPacket = { kind: 'other', packetType: RtcpPacketType.APP, count: 3, body: Buffer.from('00000001504c494e6461746121212121', 'hex') };
    const nack: RtcpPacket = { kind: 'other', packetType: 205, count: 1, body: Buffer.from('000000010000000200640000', 'hex') };
    const buf = encodeRtcpCompound([sr, app, nack]);
    expect(decodeRtcpCompound(buf)).toEqual([sr, app, nack]);
  });

  it('accepts padding on the last packet and strips it', () => {
    const body = encodeRtcpCompound([sr, { kind: 'bye', ssrcs: [5] }]);
    const padded = Buffer.concat([body, Buffer.from('00000004', 'hex')]);
    padded[52] = padded[52]! | 0x20; // P bit on the BYE
    padded.writeUInt16BE(padded.readUInt16BE(54) + 1, 54);
    expect(decodeRtcpCompound(padded)).toEqual([sr, { kind: 'bye', ssrcs: [5] }]);
  });

  it('insists on SR or RR first unless reduced-size RTCP is allowed (RFC 5506)', () => {
    const bye: RtcpPacket = { kind: 'bye', ssrcs: [9] };
    expect(codeOf(() => encodeRtcpCompound([bye]))).toBe('ERR_RTCP_ENCODE');
    const buf = encodeRtcpCompound([bye], { allowReducedSize: true });
    expect(codeOf(() => decodeRtcpCompound(buf))).toBe('ERR_RTCP_COMPOUND');
    expect(decodeRtcpCompound(buf, { allowReducedSize: true })).toEqual([bye]);
  });
});

describe('RTCP codec: malformed input', () => {
  const good = encodeRtcpCompound([sr, { kind: 'sdes', chunks: [{ ssrc: 1, items: [{ type: 1, value: 'abc' }] }] }, { kind: 'bye', ssrcs: [1], reason: 'x' }]);
  // Offsets: SR 0..52; SDES 52..68 (chunk SSRC 56, item 60..65, null 65, padding 66..67); BYE 68..80 (SSRC 72, reason length 76).
  const patched = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };

  it.each<[string, Buffer, string]>([
    ['3 bytes', good.subarray(0, 3), 'ERR_RTCP_TRUNCATED'],
    ['version 1', patched((b) => (b[0] = 0x41)), 'ERR_RTCP_VERSION'],
    ['version 2 then a version-0 packet', patched((b) => (b[52] = b[52]! & 0x3f)), 'ERR_RTCP_VERSION'],
    ['length past the datagram', patched((b) => b.writeUInt16BE(200, 2)), 'ERR_RTCP_LENGTH'],
    ['2 trailing bytes', Buffer.concat([good, Buffer.alloc(2)]), 'ERR_RTCP_TRUNCATED'],
    ['SR whose count needs more blocks than its length holds', patched((b) => (b[0] = 0x82)), 'ERR_RTCP_LENGTH'],
    ['padding on a packet that is not last', patched((b) => (b[0] = b[0]! | 0x20)), 'ERR_RTCP_PADDING'],
    ['padding count 0 on the last packet', patched((b) => ((b[68] = b[68]! | 0x20), (b[79] = 0))), 'ERR_RTCP_PADDING'],
    ['padding count beyond the packet', patched((b) => ((b[68] = b[68]! | 0x20), (b[79] = 9))), 'ERR_RTCP_PADDING'],
    ['SDES item running past the packet', patched((b) => (b[61] = 40)), 'ERR_RTCP_SDES'],
    ['SDES chunk count 2 with one chunk', patched((b) => (b[52] = 0x82)), 'ERR_RTCP_SDES'],
    ['SDES non-zero byte after the null item', patched((b) => (b[66] = 1)), 'ERR_RTCP_SDES'],
    ['SDES text not UTF-8', patched((b) => (b[62] = 0xff)), 'ERR_RTCP_SDES'],
    ['BYE count 3 with one SSRC and a reason', patched((b) => (b[68] = 0x83)), 'ERR_RTCP_BYE'],
    ['BYE reason running past the packet', patched((b) => (b[76] = 4)), 'ERR_RTCP_BYE'],
  ])('%s → %s', (_what, input, code) => {
    expect(codeOf(() => decodeRtcpCompound(input))).toBe(code);
  });

  it('the unpatched packet decodes (the patches above are what breaks it)', () => {
    expect(good.length).toBe(80);
    expect(decodeRtcpCompound(good).map((p) => p.kind)).toEqual(['sr', 'sdes', 'bye']);
  });

  it.each<[string, RtcpPacket]>([
    ['cumulative lost above 2^23-1', { ...sr, reports: [block(1, { cumulativeLost: 0x800000 })] }],
    ['fraction lost 256', { ...sr, reports: [block(1, { fractionLost: 256 })] }],
    ['32 report blocks', { ...sr, reports: Array.from({ length: 32 }, (_, i) => block(i)) }],
    ['NTP timestamp beyond 64 bits', { ...sr, sender: { ...sr.sender, ntpTimestamp: 1n << 64n } }],
    ['SDES item of 256 bytes', { kind: 'sdes', chunks: [{ ssrc: 1, items: [{ type: 1, value: 'x'.repeat(256) }] }] }],
    ['SDES item type 0', { kind: 'sdes', chunks: [{ ssrc: 1, items: [{ type: 0, value: '' }] }] }],
    ['BYE reason of 256 bytes', { kind: 'bye', ssrcs: [1], reason: 'y'.repeat(256) }],
    ['other packet with a body of 3 bytes', { kind: 'other', packetType: 204, count: 0, body: Buffer.alloc(3) }],
  ])('refuses to encode %s (ERR_RTCP_ENCODE)', (_what, p) => {
    expect(codeOf(() => encodeRtcpPacket(p))).toBe('ERR_RTCP_ENCODE');
  });

  it('survives seeded random mutations: packets or an RtcpError, never anything else', () => {
    const random = rng(Number(process.env.FUZZ_SEED ?? 0x7c9));
    const corrected = Buffer.from(publishedBytes);
    corrected.writeUInt16BE(12, 2);
    const inputs = [good, corrected];
    const counts = { ok: 0, error: 0 };
    for (let i = 0; i < 5000; i++) {
      const buf = Buffer.from(inputs[i % 2]!);
      for (let f = 0, n = 1 + Math.floor(random() * 3); f < n; f++) buf[Math.floor(random() * buf.length)]! ^= 1 << Math.floor(random() * 8);
      counts[expectTyped(() => decodeRtcpCompound(buf, { allowReducedSize: random() < 0.5 }), RtcpError)]++;
    }
    expect(counts.ok).toBeGreaterThan(200);
    expect(counts.error).toBeGreaterThan(200);
  });
});

describe('NTP timestamps', () => {
  it('RFC 3550 §6.4.1 Figure 2: 10 Nov 1995 11:33:25.125 UTC is 0xb44db705:20000000, LSR 0xb705:2000', () => {
    const ntp = BigInt(`0x${file.roundTrip.senderReportNtp}`);
    const ms = Date.parse(file.roundTrip.senderReportUtc);
    expect(ntpFromUnixMs(ms)).toBe(ntp);
    expect(unixMsFromNtp(ntp)).toBe(ms);
    expect(ntpShort(ntp)).toBe(parseInt(file.roundTrip.lastSenderReport, 16));
  });

  it('keeps sub-millisecond resolution through a round trip', () => {
    const ms = 1_700_000_000_123.5;
    expect(unixMsFromNtp(ntpFromUnixMs(ms))).toBeCloseTo(ms, 3);
  });
});
