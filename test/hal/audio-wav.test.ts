/**
 * WAV codec of the audio HAL: round trip, the committed speech fixtures,
 * chunks to skip, WAVE_FORMAT_EXTENSIBLE, and every malformed file refused
 * with its code; resampling between the call rates.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AudioError } from '../../hal/audio/errors.js';
import { resample } from '../../hal/audio/resample.js';
import { decodeWav, encodeWav, readWav, WavWriter, writeWav } from '../../hal/audio/wav.js';

const FIXTURES = new URL('../fixtures/audio/', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'partyline-wav-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(AudioError);
    return (err as AudioError).code;
  }
  throw new Error('expected an AudioError');
}

/** A 44-byte canonical header with the given fields, then `data`. */
function wavWith(fields: { format?: number; channels?: number; rate?: number; bits?: number; dataSize?: number }, data = Buffer.alloc(8)): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(fields.format ?? 1, 20);
  h.writeUInt16LE(fields.channels ?? 1, 22);
  h.writeUInt32LE(fields.rate ?? 16000, 24);
  h.writeUInt32LE((fields.rate ?? 16000) * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(fields.bits ?? 16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(fields.dataSize ?? data.length, 40);
  return Buffer.concat([h, data]);
}

describe('WAV codec', () => {
  it('round-trips samples and reads the header fields', () => {
    const samples = Int16Array.from([0, 1, -1, 32767, -32768, 1234]);
    const bytes = encodeWav(samples, 48000);
    expect(bytes.length).toBe(44 + 12);
    expect(bytes.toString('latin1', 0, 4)).toBe('RIFF');
    expect(bytes.readUInt32LE(4)).toBe(36 + 12);
    const wav = decodeWav(bytes);
    expect(wav.sampleRate).toBe(48000);
    expect(Array.from(wav.samples)).toEqual(Array.from(samples));
  });

  it('reads the speech fixtures: 16 kHz mono, 4–6 s, not silent', () => {
    for (const name of ['speech-a.wav', 'speech-b.wav']) {
      const wav = readWav(new URL(name, FIXTURES).pathname);
      expect(wav.sampleRate).toBe(16000);
      expect(wav.samples.length / 16000).toBeGreaterThan(4);
      expect(wav.samples.length / 16000).toBeLessThan(6);
      const peak = wav.samples.reduce((m, s) => Math.max(m, Math.abs(s)), 0);
      expect(peak).toBeGreaterThan(10000);
    }
  });

  it('skips unknown chunks (odd sizes padded) and accepts WAVE_FORMAT_EXTENSIBLE PCM', () => {
    const plain = wavWith({}, Buffer.from([1, 0, 2, 0]));
    const list = Buffer.concat([Buffer.from('LIST', 'latin1'), Buffer.from([3, 0, 0, 0, 9, 9, 9, 0])]);
    const withList = Buffer.concat([plain.subarray(0, 36), list, plain.subarray(36)]);
    expect(Array.from(decodeWav(withList).samples)).toEqual([1, 2]);

    const fmt = Buffer.alloc(40);
    fmt.writeUInt16LE(0xfffe, 0);
    fmt.writeUInt16LE(1, 2);
    fmt.writeUInt32LE(16000, 4);
    fmt.writeUInt16LE(16, 14);
    fmt.writeUInt16LE(22, 16);
    fmt.writeUInt16LE(1, 24); // KSDATAFORMAT_SUBTYPE_PCM begins 01 00
    const ext = (): Buffer => Buffer.concat([
      Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1'), Buffer.from([40, 0, 0, 0]), fmt,
      Buffer.from('data', 'latin1'), Buffer.from([2, 0, 0, 0, 7, 0]),
    ]);
    expect(Array.from(decodeWav(ext()).samples)).toEqual([7]);
    fmt.writeUInt16LE(3, 24); // IEEE float sub-format
    expect(codeOf(() => decodeWav(ext()))).toBe('ERR_AUDIO_WAV_FORMAT');
  });

  it.each([
    ['not RIFF', Buffer.concat([Buffer.from('RIFX'), wavWith({}).subarray(4)]), 'ERR_AUDIO_WAV_FORMAT', /expected "RIFF"/],
    ['shorter than a RIFF header', Buffer.from('RIFF'), 'ERR_AUDIO_WAV_TRUNCATED', /4 bytes/],
    ['compressed (format 6, A-law)', wavWith({ format: 6 }), 'ERR_AUDIO_WAV_FORMAT', /audio format 6, expected 1/],
    ['stereo', wavWith({ channels: 2 }), 'ERR_AUDIO_WAV_FORMAT', /2 channels, expected 1/],
    ['8-bit', wavWith({ bits: 8 }), 'ERR_AUDIO_WAV_FORMAT', /8 bits per sample, expected 16/],
    ['24-bit', wavWith({ bits: 24 }), 'ERR_AUDIO_WAV_FORMAT', /24 bits/],
    ['data chunk cut short', wavWith({}).subarray(0, 48), 'ERR_AUDIO_WAV_TRUNCATED', /declares 8 bytes, only 4 left/],
    ['odd data size', wavWith({ dataSize: 3 }, Buffer.alloc(3)), 'ERR_AUDIO_WAV_TRUNCATED', /even count/],
    ['fmt chunk too short', Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1'), Buffer.from([4, 0, 0, 0, 1, 0, 1, 0])]), 'ERR_AUDIO_WAV_TRUNCATED', /expected at least 16/],
    ['no data chunk', wavWith({}).subarray(0, 36), 'ERR_AUDIO_WAV_FORMAT', /no "data" chunk/],
    ['chunk header cut short', wavWith({}).subarray(0, 40), 'ERR_AUDIO_WAV_TRUNCATED', /cut short/],
  ])('refuses a file %s', (_name, bytes, code, message) => {
    expect(codeOf(() => decodeWav(bytes, 'WAV x.wav'))).toBe(code);
    expect(() => decodeWav(bytes, 'WAV x.wav')).toThrow(message);
    expect(() => decodeWav(bytes, 'WAV x.wav')).toThrow(/^WAV x\.wav: /);
  });

  it('names a missing file (ERR_AUDIO_IO)', () => {
    expect(codeOf(() => readWav(join(dir, 'missing.wav')))).toBe('ERR_AUDIO_IO');
  });

  it('converts 16 kHz to 48 kHz and back on reading', () => {
    const n = 1600;
    const tone = Int16Array.from({ length: n }, (_, i) => Math.round(10000 * Math.sin((2 * Math.PI * 300 * i) / 16000)));
    const path = join(dir, 'tone16.wav');
    writeWav(path, tone, 16000);
    const up = readWav(path, { sampleRate: 48000 });
    expect(up.sampleRate).toBe(48000);
    expect(up.samples.length).toBe(3 * n);
    expect(up.samples[300]).toBe(tone[100]); // every third sample is an original one
    const down = resample(up.samples, 48000, 16000);
    expect(down.length).toBe(n);
    let err = 0;
    for (let i = 10; i < n - 10; i++) err = Math.max(err, Math.abs(down[i]! - tone[i]!));
    expect(err).toBeLessThan(300); // a 300 Hz tone survives the box filter within 3 %
    expect(codeOf(() => resample(tone, 16000, 100))).toBe('ERR_AUDIO_WAV_RATE');
  });

  it('WavWriter: a valid file after close, with the sizes of what was appended', () => {
    const path = join(dir, 'stream.wav');
    const w = new WavWriter(path, 16000);
    const frame = Buffer.alloc(640);
    frame.writeInt16LE(-5, 0);
    w.append(frame);
    w.flush();
    w.append(frame);
    w.close();
    w.close();
    const wav = readWav(path);
    expect(wav.samples.length).toBe(640);
    expect(wav.samples[0]).toBe(-5);
    expect(wav.samples[320]).toBe(-5);
    expect(() => w.append(frame)).toThrow(AudioError);
    writeFileSync(path, Buffer.alloc(0));
  });
});
