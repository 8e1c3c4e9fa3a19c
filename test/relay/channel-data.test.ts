import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/relay/errors.js';
import { channelDataProblem, decodeChannelData, encodeChannelData, isChannelData } from '../../src/relay/channel-data.js';
import { expectTyped, rng } from '../helpers/fuzz.js';

describe('ChannelData (RFC 8656 §12.4)', () => {
  it('encodes channel, length and payload, no padding, and decodes back', () => {
    const encoded = encodeChannelData(0x4001, Buffer.from('abcde'));
    expect(encoded.toString('hex')).toBe('40010005' + Buffer.from('abcde').toString('hex'));
    const decoded = decodeChannelData(encoded);
    expect(decoded.channel).toBe(0x4001);
    expect(String(decoded.payload)).toBe('abcde');
  });

  it('round-trips the edges: both ends of the channel range, empty and largest payloads', () => {
    for (const channel of [0x4000, 0x4fff]) {
      for (const size of [0, 1, 3, 4, 1500, 0xffff]) {
        const payload = Buffer.alloc(size, size & 0xff);
        const decoded = decodeChannelData(encodeChannelData(channel, payload));
        expect(decoded.channel).toBe(channel);
        expect(decoded.payload.equals(payload)).toBe(true);
      }
    }
  });

  it('accepts up to 3 bytes of padding after the data and ignores them', () => {
    const padded = Buffer.concat([encodeChannelData(0x4abc, Buffer.from('x')), Buffer.alloc(3)]);
    expect(String(decodeChannelData(padded).payload)).toBe('x');
  });

  it('tells TURN channels from STUN and RTP by the first byte (RFC 7983)', () => {
    expect(isChannelData(Buffer.from([0x40]))).toBe(true);
    expect(isChannelData(Buffer.from([0x4f]))).toBe(true);
    expect(isChannelData(Buffer.from([0x00]))).toBe(false);
    expect(isChannelData(Buffer.from([0x50]))).toBe(false);
    expect(isChannelData(Buffer.from([0x80]))).toBe(false);
    expect(isChannelData(Buffer.alloc(0))).toBe(false);
  });

  it.each([
    ['a truncated header', '4001', 'shorter than its 4-byte header'],
    ['a channel below the range', '3fff0000', 'channel number outside'],
    ['a channel above the range', '50000000', 'channel number outside'],
    ['a length past the end', '40010005616263', 'runs past the end'],
    ['more than 3 bytes after the data', '400100016100000000', 'more than 3 bytes'],
  ])('refuses %s, naming the problem', (_name, hex, problem) => {
    const packet = Buffer.from(hex, 'hex');
    expect(channelDataProblem(packet)).toContain(problem);
    expect(() => decodeChannelData(packet)).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_DATA', message: expect.stringContaining(problem) }));
  });

  it('refuses to encode an invalid channel or an oversized payload', () => {
    expect(() => encodeChannelData(0x3fff, Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_DATA' }));
    expect(() => encodeChannelData(0x4000 + 0.5, Buffer.alloc(1))).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_DATA' }));
    expect(() => encodeChannelData(0x4000, Buffer.alloc(0x10000))).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_DATA' }));
  });

  it('gives a value or a RelayError for any input, and agrees with channelDataProblem', () => {
    const random = rng(Number(process.env.FUZZ_SEED ?? 0xc4a7));
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 5000; i++) {
      const length = Math.floor(random() * 24);
      const packet = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
      if (length > 0 && random() < 0.7) packet[0] = 0x40 + Math.floor(random() * 16);
      if (length >= 4 && random() < 0.5) packet.writeUInt16BE(Math.max(0, length - 4 - Math.floor(random() * 4)), 2);
      const outcome = expectTyped(() => decodeChannelData(packet), RelayError);
      expect(outcome === 'ok').toBe(channelDataProblem(packet) === undefined);
      outcomes[outcome]++;
    }
    expect(outcomes.ok).toBeGreaterThan(100);
    expect(outcomes.error).toBeGreaterThan(100);
  });
});
