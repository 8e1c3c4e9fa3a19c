import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RtpError } from '../../src/media/errors.js';
import {
  decodeExtensionElements,
  decodeRtpPacket,
  encodeExtensionElements,
  encodeRtpPacket,
  extendSequence,
  extendTimestamp,
  isRtcpPacket,
  isRtpOrRtcp,
  isRtpPacket,
  rtpHeaderLength,
  seqAdd,
  seqDiff,
  seqNewer,
  timestampDiff,
} from '../../src/media/rtp.js';
import type { RtpPacket } from '../../src/media/rtp.js';
import { expectTyped, rng } from '../helpers/fuzz.js';

interface RtpVector {
  name: string;
  hex: string[];
  fields: { payloadType: number; marker: boolean; sequenceNumber: number; timestamp: number; ssrc: number; csrcs: number[]; padding: number; payloadText?: string; payloadHex?: string };
  extension?: { profile: number; elements: { id: number; data: string }[] };
}

const file = JSON.parse(readFileSync(new URL('../vectors/rtp/published-packets.json', import.meta.url), 'utf8')) as { rtp: RtpVector[]; rtcp: { hex: string[] }[] };
const bytes = (words: string[]): Buffer => Buffer.from(words.join(''), 'hex');
const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    if (err instanceof RtpError) return err.code;
    throw err;
  }
  return undefined;
}

const basic: RtpPacket = { payloadType: 111, marker: false, sequenceNumber: 1, timestamp: 960, ssrc: 0x11223344, csrcs: [], payload: Buffer.from('opus'), padding: 0 };

describe('RTP codec: published packets', () => {
  it.each(file.rtp.map((v) => [v.name, v] as const))('%s: fields, identical re-encoding', (_name, v) => {
    const buf = bytes(v.hex);
    const p = decodeRtpPacket(buf);
    const { payloadText, payloadHex, ...fields } = v.fields;
    expect({ ...p, payload: undefined, extension: undefined }).toEqual({ ...fields, payload: undefined, extension: undefined });
    if (payloadText !== undefined) expect(p.payload.toString('utf8')).toBe(payloadText);
    if (payloadHex !== undefined) expect(p.payload.toString('hex')).toBe(payloadHex);
    expect(encodeRtpPacket(p)).toEqual(buf);
    if (v.extension) {
      expect(p.extension?.profile).toBe(v.extension.profile);
      expect(decodeExtensionElements(p.extension!).map((e) => ({ id: e.id, data: e.data.toString('hex') }))).toEqual(v.extension.elements);
      // Rebuilding the elements gives the published extension data (one padding byte included).
      const rebuilt = encodeExtensionElements(v.extension.elements.map((e) => ({ id: e.id, data: hex(e.data) })));
      expect(rebuilt).toEqual(p.extension);
    } else {
      expect(p.extension).toBeUndefined();
    }
  });

  it('header length counts the CSRCs and the extension', () => {
    expect(rtpHeaderLength(bytes(file.rtp[0]!.hex))).toBe(12);
    expect(rtpHeaderLength(bytes(file.rtp[2]!.hex))).toBe(12 + 4 + 24);
    const withCsrcs = encodeRtpPacket({ ...basic, csrcs: [1, 2, 3] });
    expect(rtpHeaderLength(withCsrcs)).toBe(24);
  });
});

describe('RTP codec: encoding', () => {
  it('writes every field where RFC 3550 §5.1 puts it', () => {
    const buf = encodeRtpPacket({ payloadType: 96, marker: true, sequenceNumber: 0xbeef, timestamp: 0xdeadbeef, ssrc: 0xcafebabe, csrcs: [0x01020304, 0x05060708], payload: Buffer.from([9, 9]), padding: 0 });
    expect(buf.toString('hex')).toBe('82e0beefdeadbeefcafebabe01020304050607080909');
  });

  it('pads with zeros and a final count, and reads the padding back', () => {
    const buf = encodeRtpPacket({ ...basic, padding: 4 });
    expect(buf[0]! & 0x20).toBe(0x20);
    expect(buf.subarray(-4).toString('hex')).toBe('00000004');
    const back = decodeRtpPacket(buf);
    expect(back.padding).toBe(4);
    expect(back.payload.toString()).toBe('opus');
    expect(encodeRtpPacket(back)).toEqual(buf);
  });

  it('round-trips the largest header: 15 CSRCs, an extension, marker, padding', () => {
    const p: RtpPacket = {
      payloadType: 127,
      marker: true,
      sequenceNumber: 65535,
      timestamp: 0xffffffff,
      ssrc: 0xffffffff,
      csrcs: Array.from({ length: 15 }, (_, i) => i * 0x01010101),
      extension: { profile: 0x1234, data: Buffer.alloc(8, 0xaa) },
      payload: Buffer.alloc(160, 7),
      padding: 255,
    };
    expect(decodeRtpPacket(encodeRtpPacket(p))).toEqual(p);
  });

  it.each<[string, Partial<RtpPacket>]>([
    ['payload type 128', { payloadType: 128 }],
    ['payload type -1', { payloadType: -1 }],
    ['sequence number 65536', { sequenceNumber: 65536 }],
    ['timestamp 2^32', { timestamp: 2 ** 32 }],
    ['fractional SSRC', { ssrc: 1.5 }],
    ['16 CSRCs', { csrcs: Array.from({ length: 16 }, () => 1) }],
    ['extension data not whole words', { extension: { profile: 0xbede, data: Buffer.alloc(3) } }],
    ['padding 256', { padding: 256 }],
    ['marker with payload type 72 (reads as RTCP SR)', { marker: true, payloadType: 72 }],
    ['marker with payload type 95 (reads as RTCP 223)', { marker: true, payloadType: 95 }],
  ])('refuses to encode %s (ERR_RTP_ENCODE)', (_what, change) => {
    expect(codeOf(() => encodeRtpPacket({ ...basic, ...change }))).toBe('ERR_RTP_ENCODE');
  });

  it('accepts payload type 72 without marker (second byte 72 is not RTCP)', () => {
    expect(decodeRtpPacket(encodeRtpPacket({ ...basic, payloadType: 72 })).payloadType).toBe(72);
  });
});

describe('RTP codec: malformed input', () => {
  const good = bytes(file.rtp[2]!.hex);
  const patched = (f: (b: Buffer) => Buffer): Buffer => f(Buffer.from(good));

  it.each<[string, Buffer, string]>([
    ['empty', Buffer.alloc(0), 'ERR_RTP_TRUNCATED'],
    ['11 bytes', good.subarray(0, 11), 'ERR_RTP_TRUNCATED'],
    ['version 1', patched((b) => ((b[0] = (b[0]! & 0x3f) | 0x40), b)), 'ERR_RTP_VERSION'],
    ['version 3', patched((b) => ((b[0] = b[0]! | 0xc0), b)), 'ERR_RTP_VERSION'],
    ['version 0 (STUN first byte)', Buffer.from('000100002112a442b7e7a701bc34d686fa87dfae', 'hex'), 'ERR_RTP_VERSION'],
    ['CSRC count past the end', Buffer.concat([Buffer.from([0x8f]), good.subarray(1, 12)]), 'ERR_RTP_TRUNCATED'],
    ['extension header cut', good.subarray(0, 14), 'ERR_RTP_EXTENSION'],
    ['extension length past the end', patched((b) => (b.writeUInt16BE(100, 14), b)), 'ERR_RTP_EXTENSION'],
    ['padding count 0', patched((b) => ((b[0] = b[0]! | 0x20), (b[b.length - 1] = 0), b)), 'ERR_RTP_PADDING'],
    ['padding count past the header', patched((b) => ((b[0] = b[0]! | 0x20), (b[b.length - 1] = 17), b)), 'ERR_RTP_PADDING'],
    ['second byte 200 (RTCP SR)', patched((b) => ((b[1] = 200), b)), 'ERR_RTP_PAYLOAD_TYPE'],
  ])('%s → %s', (_what, input, code) => {
    expect(codeOf(() => decodeRtpPacket(input))).toBe(code);
  });

  it('padding that takes the whole payload is valid', () => {
    const b = Buffer.from(good);
    b[0] = b[0]! | 0x20;
    b[b.length - 1] = 16;
    const p = decodeRtpPacket(b);
    expect(p.payload.length).toBe(0);
    expect(p.padding).toBe(16);
  });

  it('survives seeded random mutations: a packet or an RtpError, never anything else', () => {
    const random = rng(Number(process.env.FUZZ_SEED ?? 0x5eed));
    const inputs = file.rtp.map((v) => bytes(v.hex));
    const counts = { ok: 0, error: 0 };
    for (let i = 0; i < 5000; i++) {
      const buf = Buffer.from(inputs[i % inputs.length]!);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) buf[Math.floor(random() * buf.length)]! ^= 1 << Math.floor(random() * 8);
      const cut = random() < 0.3 ? buf.subarray(0, Math.floor(random() * buf.length)) : buf;
      const outcome = expectTyped(() => {
        const p = decodeRtpPacket(cut);
        // Whatever decodes must re-encode to the same bytes, padding aside.
        if (p.padding === 0) expect(encodeRtpPacket(p)).toEqual(cut);
        if (p.extension && (p.extension.profile === 0xbede || (p.extension.profile & 0xfff0) === 0x1000)) {
          expectTyped(() => decodeExtensionElements(p.extension!), RtpError);
        }
      }, RtpError);
      counts[outcome]++;
    }
    expect(counts.ok).toBeGreaterThan(500);
    expect(counts.error).toBeGreaterThan(500);
  });
});

describe('RTP demultiplexing (RFC 7983, RFC 5761)', () => {
  it.each<[string, Buffer, boolean, boolean, boolean]>([
    ['RFC 7714 RTP packet', bytes(file.rtp[0]!.hex), true, true, false],
    ['RFC 7714 RTCP SR', bytes(file.rtcp[0]!.hex), true, false, true],
    ['STUN binding request', Buffer.from('0001', 'hex'), false, false, false],
    ['DTLS record (first byte 22)', Buffer.from('16fefd', 'hex'), false, false, false],
    ['first byte 192', Buffer.from('c000', 'hex'), false, false, false],
    ['first byte 191, RTCP type 223', Buffer.from('bfdf', 'hex'), true, false, true],
    ['empty', Buffer.alloc(0), false, false, false],
  ])('%s', (_what, b, rtpOrRtcp, rtp, rtcp) => {
    expect(isRtpOrRtcp(b)).toBe(rtpOrRtcp);
    expect(isRtpPacket(b)).toBe(rtp);
    expect(isRtcpPacket(b)).toBe(rtcp);
  });
});

describe('RFC 8285 header extension elements', () => {
  it('two-byte form: ids above 14, empty and long elements, round trip', () => {
    const elements = [
      { id: 1, data: Buffer.alloc(0) },
      { id: 200, data: Buffer.alloc(20, 1) },
      { id: 15, data: Buffer.from([7]) },
    ];
    const ext = encodeExtensionElements(elements);
    expect(ext.profile).toBe(0x1000);
    expect(ext.data.length % 4).toBe(0);
    expect(ext.data.subarray(0, 4).toString('hex')).toBe('0100c814');
    expect(decodeExtensionElements(ext)).toEqual(elements);
  });

  it('one-byte form: id 15 ends the parse (RFC 8285 §4.2)', () => {
    const ext = { profile: 0xbede, data: Buffer.from('10aaf0ff20bb0000', 'hex') };
    expect(decodeExtensionElements(ext)).toEqual([{ id: 1, data: Buffer.from([0xaa]) }]);
  });

  it.each<[string, { profile: number; data: Buffer }]>([
    ['profile not RFC 8285', { profile: 0x1234, data: Buffer.alloc(4) }],
    ['one-byte id 0 with a length', { profile: 0xbede, data: Buffer.from('05000000', 'hex') }],
    ['one-byte element past the data', { profile: 0xbede, data: Buffer.from('13aabbcc', 'hex') }],
    ['two-byte element past the data', { profile: 0x1000, data: Buffer.from('0105aabb', 'hex') }],
  ])('%s → ERR_RTP_EXTENSION', (_what, ext) => {
    expect(codeOf(() => decodeExtensionElements(ext))).toBe('ERR_RTP_EXTENSION');
  });

  it.each<[string, { id: number; data: Buffer }, 'one-byte' | 'two-byte']>([
    ['one-byte id 15', { id: 15, data: Buffer.alloc(1) }, 'one-byte'],
    ['one-byte 17 bytes', { id: 1, data: Buffer.alloc(17) }, 'one-byte'],
    ['one-byte empty', { id: 1, data: Buffer.alloc(0) }, 'one-byte'],
    ['two-byte id 0', { id: 0, data: Buffer.alloc(1) }, 'two-byte'],
    ['two-byte 256 bytes', { id: 1, data: Buffer.alloc(256) }, 'two-byte'],
  ])('refuses to encode %s (ERR_RTP_ENCODE)', (_what, element, form) => {
    expect(codeOf(() => encodeExtensionElements([element], form))).toBe('ERR_RTP_ENCODE');
  });
});

describe('sequence number and timestamp arithmetic', () => {
  it.each([
    [1, 0, 1],
    [0, 65535, 1],
    [65535, 0, -1],
    [100, 100, 0],
    [32767, 0, 32767],
    [32768, 0, -32768],
    [10, 65530, 16],
  ])('seqDiff(%i, %i) = %i', (a, b, d) => {
    expect(seqDiff(a, b)).toBe(d);
  });

  it('seqNewer and seqAdd wrap at 2^16', () => {
    expect(seqNewer(0, 65535)).toBe(true);
    expect(seqNewer(65535, 0)).toBe(false);
    expect(seqNewer(5, 5)).toBe(false);
    expect(seqAdd(65535, 1)).toBe(0);
    expect(seqAdd(0, -1)).toBe(65535);
  });

  it.each([
    [2, 65534, 65538],
    [65534, 65538, 65534],
    [65535, 0, -1],
    [0, 3 * 65536 + 65535, 4 * 65536],
    [40000, 10, 40000 - 65536],
  ])('extendSequence(%i, reference %i) = %i', (seq, ref, ext) => {
    expect(extendSequence(seq, ref)).toBe(ext);
  });

  it('timestamps: signed 32-bit distance and unwrapping', () => {
    expect(timestampDiff(0, 0xffffffff)).toBe(1);
    expect(timestampDiff(0xffffffff, 0)).toBe(-1);
    expect(timestampDiff(960, 0)).toBe(960);
    expect(extendTimestamp(5, 0xfffffff0)).toBe(0x100000005);
    expect(extendTimestamp(0xfffffff0, 0x100000005)).toBe(0xfffffff0);
    expect(extendTimestamp(1000, 0x300000000 + 500)).toBe(0x300000000 + 1000);
  });
});
