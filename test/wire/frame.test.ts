import { describe, expect, it } from 'vitest';
import { FrameDecoder, MAX_FRAME, encodeFrame } from '../../src/wire/frame.js';
import { WireError } from '../../src/errors.js';

describe('frame codec (2-byte length prefix)', () => {
  it('prefixes the big-endian length', () => {
    expect(encodeFrame(Buffer.from('abc'))).toEqual(Buffer.from([0, 3, 0x61, 0x62, 0x63]));
    expect(encodeFrame(Buffer.alloc(MAX_FRAME)).length).toBe(MAX_FRAME + 2);
  });

  it('refuses a payload longer than 65535 bytes', () => {
    expect(() => encodeFrame(Buffer.alloc(MAX_FRAME + 1))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_FRAME_TOO_LONG' }));
  });

  it('reassembles frames split at every byte boundary', () => {
    const frames = [Buffer.from('hello'), Buffer.alloc(300, 7), Buffer.from('x')];
    const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
    for (let cut = 1; cut < stream.length; cut += 7) {
      const decoder = new FrameDecoder();
      const out = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      expect(out).toEqual(frames);
      expect(decoder.buffered).toBe(0);
    }
  });

  it('delivers byte-by-byte input', () => {
    const decoder = new FrameDecoder();
    const stream = Buffer.concat([encodeFrame(Buffer.from('one')), encodeFrame(Buffer.from('two'))]);
    const out: Buffer[] = [];
    for (const byte of stream) out.push(...decoder.push(Buffer.from([byte])));
    expect(out.map(String)).toEqual(['one', 'two']);
  });

  it('rejects frames below the minimum length with a typed error', () => {
    const decoder = new FrameDecoder(16);
    let caught: unknown;
    try {
      decoder.push(Buffer.from([0, 4, 1, 2, 3, 4]));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(WireError);
    expect((caught as WireError).code).toBe('ERR_WIRE_FRAME_TOO_SHORT');
    expect((caught as WireError).message).toBe('frame: length 4, expected at least 16');
  });

  it('hands over a buffered partial frame', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.from([0, 5, 1, 2]));
    expect(decoder.takeRemainder()).toEqual(Buffer.from([0, 5, 1, 2]));
    expect(decoder.buffered).toBe(0);
  });
});
