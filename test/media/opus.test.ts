/**
 * Opus through the real libopus of @discordjs/opus: synthetic signals made
 * here (a 440 Hz + 1 kHz tone mix, and a voiced, speech-like signal with a
 * gliding pitch, harmonics, syllable envelope and some noise) are encoded in
 * 20 ms frames, decoded, and compared with the input after the codec delay
 * (best lag by cross-correlation).
 */
import { describe, expect, it } from 'vitest';
import { OpusError } from '../../src/media/errors.js';
import { loadOpusBinding, OPUS_DTX_PACKET_MAX_BYTES, OpusDecoder, OpusEncoder, opusPacketDurationMs, opusPacketHasFec } from '../../src/media/opus.js';
import type { OpusSampleRate } from '../../src/media/opus.js';
import { expectTyped, rng } from '../helpers/fuzz.js';
import { correlationAt, rms } from '../helpers/audio.js';

function tones(rate: number, seconds: number): Int16Array {
  const out = new Int16Array(rate * seconds);
  for (let i = 0; i < out.length; i++) {
    const t = i / rate;
    out[i] = Math.round(8000 * Math.sin(2 * Math.PI * 440 * t) + 6000 * Math.sin(2 * Math.PI * 1000 * t));
  }
  return out;
}

/** Voiced "syllables": f0 gliding 120–220 Hz, 12 harmonics falling off, 4 Hz envelope, light noise. */
function speechLike(rate: number, seconds: number, seed = 7): Int16Array {
  const out = new Int16Array(rate * seconds);
  const random = rng(seed);
  let phase = 0;
  for (let i = 0; i < out.length; i++) {
    const t = i / rate;
    phase += (2 * Math.PI * (170 + 50 * Math.sin(2 * Math.PI * 1.3 * t))) / rate;
    let v = 0;
    for (let h = 1; h <= 12 && h * 220 < rate / 2; h++) v += Math.sin(h * phase) / h;
    const envelope = 0.15 + 0.85 * Math.max(0, Math.sin(2 * Math.PI * 4 * t)) ** 0.5;
    out[i] = Math.round(envelope * 6000 * v + (random() - 0.5) * 600);
  }
  return out;
}

function frameOf(signal: Int16Array, index: number, samples: number): Buffer {
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) pcm.writeInt16LE(signal[index * samples + i] ?? 0, i * 2);
  return pcm;
}

function samplesOf(pcm: Buffer): Int16Array {
  const out = new Int16Array(pcm.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = pcm.readInt16LE(i * 2);
  return out;
}

function concat(frames: Buffer[]): Int16Array {
  return samplesOf(Buffer.concat(frames));
}

/** Normalised correlation of `input[from..to)` with `output` shifted by `lag`. */
function correlation(input: Int16Array, output: Int16Array, lag: number, from: number, to: number): number {
  return correlationAt(input.subarray(from, to), output.subarray(from), lag);
}

function bestLag(input: Int16Array, output: Int16Array, maxLag: number, from: number, to: number): { lag: number; corr: number } {
  let best = { lag: 0, corr: -Infinity };
  for (let lag = 0; lag <= maxLag; lag++) {
    const corr = correlation(input, output, lag, from, to);
    if (corr > best.corr) best = { lag, corr };
  }
  return best;
}

function run(signal: Int16Array, rate: OpusSampleRate, bitrate?: number) {
  const enc = new OpusEncoder({ sampleRate: rate, ...(bitrate ? { bitrate } : {}) });
  const dec = new OpusDecoder({ sampleRate: rate });
  const frames = signal.length / enc.frameSamples;
  const packets: Buffer[] = [];
  const decoded: Buffer[] = [];
  for (let f = 0; f < frames; f++) {
    const packet = enc.encode(frameOf(signal, f, enc.frameSamples));
    packets.push(packet);
    decoded.push(dec.decode(packet));
  }
  return { enc, dec, packets, decoded, output: concat(decoded) };
}

const meanBytes = (packets: Buffer[]): number => packets.slice(10).reduce((n, p) => n + p.length, 0) / (packets.length - 10);

describe('Opus encode/decode round trip', () => {
  it('16 kHz tones: 20 ms packets near the bitrate, output matches the input after the codec delay', () => {
    const input = tones(16000, 2);
    const { enc, packets, decoded, output } = run(input, 16000);
    expect(enc.bitrate).toBe(24000);
    expect(packets).toHaveLength(100);
    for (const p of packets) expect(opusPacketDurationMs(p)).toBe(20);
    expect(decoded.every((d) => d.length === 640)).toBe(true);
    // 24 kbit/s × 20 ms / 8 = 60 bytes per packet; VBR keeps the average near it.
    expect(meanBytes(packets)).toBeGreaterThan(60 * 0.7);
    expect(meanBytes(packets)).toBeLessThan(60 * 1.35);

    const { lag, corr } = bestLag(input, output, 640, 3200, 28800);
    expect(lag).toBeGreaterThan(0); // libopus has a look-ahead: output is later than input
    expect(lag).toBeLessThan(320);
    expect(corr).toBeGreaterThan(0.9);
    const ratio = rms(output, 3200 + lag, 28800 + lag) / rms(input, 3200, 28800);
    expect(ratio).toBeGreaterThan(0.8);
    expect(ratio).toBeLessThan(1.2);
  });

  it('setBitrate changes the packet size at run time', () => {
    const input = speechLike(16000, 2);
    const enc = new OpusEncoder();
    const sizes: number[] = [];
    for (let f = 0; f < 100; f++) {
      if (f === 50) enc.setBitrate(12000);
      sizes.push(enc.encode(frameOf(input, f, 320)).length);
    }
    const at24 = sizes.slice(10, 50).reduce((a, b) => a + b) / 40;
    const at12 = sizes.slice(60).reduce((a, b) => a + b) / 40;
    expect(at24).toBeGreaterThan(60 * 0.7);
    expect(at24).toBeLessThan(60 * 1.35);
    expect(at12).toBeGreaterThan(30 * 0.7);
    expect(at12).toBeLessThan(30 * 1.35);
    expect(enc.bitrate).toBe(12000);
  });

  it('16 kHz speech-like signal survives the codec', () => {
    const input = speechLike(16000, 2);
    const { output } = run(input, 16000);
    const { corr } = bestLag(input, output, 640, 3200, 28800);
    expect(corr).toBeGreaterThan(0.8);
  });

  it('48 kHz mode: 960-sample frames, tones match after the codec delay', () => {
    const input = tones(48000, 1);
    const { enc, packets, decoded, output } = run(input, 48000);
    expect(enc.frameBytes).toBe(1920);
    expect(enc.bitrate).toBe(32000);
    expect(decoded.every((d) => d.length === 1920)).toBe(true);
    expect(meanBytes(packets)).toBeGreaterThan(80 * 0.7);
    expect(meanBytes(packets)).toBeLessThan(80 * 1.35);
    const { lag, corr } = bestLag(input, output, 1920, 9600, 43200);
    expect(lag).toBeGreaterThan(0);
    expect(corr).toBeGreaterThan(0.9);
  });

  it('a decoder at 48 kHz plays a 16 kHz stream (Opus decodes at any rate)', () => {
    const input16 = tones(16000, 1);
    const enc = new OpusEncoder({ sampleRate: 16000 });
    const dec = new OpusDecoder({ sampleRate: 48000 });
    const out: Buffer[] = [];
    for (let f = 0; f < 50; f++) out.push(dec.decode(enc.encode(frameOf(input16, f, 320))));
    expect(out.every((d) => d.length === 1920)).toBe(true);
    const input48 = tones(48000, 1);
    expect(bestLag(input48, concat(out), 1920, 9600, 43200).corr).toBeGreaterThan(0.85);
  });
});

describe('Opus loss concealment', () => {
  it('a lost frame after speech is concealed with 20 ms of signal, and decoding goes on', () => {
    const input = tones(16000, 2);
    const enc = new OpusEncoder();
    const lossy = new OpusDecoder();
    const clean = new OpusDecoder();
    const lossyOut: Buffer[] = [];
    const cleanOut: Buffer[] = [];
    for (let f = 0; f < 100; f++) {
      const packet = enc.encode(frameOf(input, f, 320));
      cleanOut.push(clean.decode(packet));
      lossyOut.push(f === 50 ? lossy.decodeLost() : f === 70 ? lossy.decode(null) : lossy.decode(packet));
    }
    const plc = samplesOf(lossyOut[50] as Buffer);
    const truth = samplesOf(cleanOut[50] as Buffer);
    expect(plc).toHaveLength(320);
    // Concealment keeps the level of the signal (its phase drifts: no waveform match is asked).
    expect(rms(plc)).toBeGreaterThan(0.3 * rms(truth));
    expect(rms(plc)).toBeLessThan(1.5 * rms(truth));
    // The timeline stays aligned: 100 frames in, 100 frames out, and a second later the streams agree again.
    expect(lossyOut).toHaveLength(100);
    expect(lossyOut.every((d) => d.length === 640)).toBe(true);
    const a = concat(lossyOut.slice(90));
    const b = concat(cleanOut.slice(90));
    expect(correlation(b, a, 0, 0, a.length)).toBeGreaterThan(0.99);
  });

  it('before any packet, concealment is 20 ms of silence', () => {
    const dec = new OpusDecoder({ sampleRate: 48000 });
    const plc = dec.decodeLost();
    expect(plc).toHaveLength(1920);
    expect(plc.every((b) => b === 0)).toBe(true);
  });

  it('reset forgets the stream: concealment afterwards is silence', () => {
    const input = tones(16000, 1);
    const enc = new OpusEncoder();
    const dec = new OpusDecoder();
    for (let f = 0; f < 10; f++) dec.decode(enc.encode(frameOf(input, f, 320)));
    expect(rms(samplesOf(dec.decodeLost()))).toBeGreaterThan(100);
    dec.reset();
    expect(dec.decodeLost().every((b) => b === 0)).toBe(true);
  });
});

describe('Opus in-band FEC', () => {
  it('the encoder adds LBRR data only once FEC is switched on with an expected loss', () => {
    const input = speechLike(16000, 2);
    const enc = new OpusEncoder();
    expect(enc.fec).toBe(false);
    const flags: boolean[] = [];
    for (let f = 0; f < 100; f++) {
      if (f === 50) enc.setFec(true, 20);
      flags.push(opusPacketHasFec(enc.encode(frameOf(input, f, 320))));
    }
    expect(enc.fec).toBe(true);
    expect(enc.packetLossPercent).toBe(20);
    expect(flags.slice(0, 50).filter(Boolean)).toHaveLength(0);
    // LBRR covers the previous frame when it was active speech: most frames here.
    expect(flags.slice(52).filter(Boolean).length).toBeGreaterThan(48 / 3);
  });

  it('FEC on without expected loss adds nothing; switching it off again stops it', () => {
    const input = speechLike(16000, 2);
    const enc = new OpusEncoder({ fec: true, packetLossPercent: 0 });
    const flags: boolean[] = [];
    for (let f = 0; f < 100; f++) {
      if (f === 30) enc.setFec(true, 15);
      if (f === 60) enc.setFec(false);
      flags.push(opusPacketHasFec(enc.encode(frameOf(input, f, 320))));
    }
    expect(flags.slice(0, 30).filter(Boolean)).toHaveLength(0);
    expect(flags.slice(32, 60).filter(Boolean).length).toBeGreaterThan(28 / 3);
    expect(flags.slice(62).filter(Boolean)).toHaveLength(0);
    expect(enc.packetLossPercent).toBe(15);
  });

  it('decodeFec cannot use the FEC data (@discordjs/opus never decodes with decode_fec): it conceals', () => {
    const input = speechLike(16000, 1);
    const enc = new OpusEncoder({ fec: true, packetLossPercent: 20 });
    const packets: Buffer[] = [];
    for (let f = 0; f < 50; f++) packets.push(enc.encode(frameOf(input, f, 320)));
    expect(opusPacketHasFec(packets[31] as Buffer)).toBe(true);
    const viaFec = new OpusDecoder();
    const viaPlc = new OpusDecoder();
    expect(viaFec.fecDecoding).toBe(false);
    for (let f = 0; f < 30; f++) {
      viaFec.decode(packets[f] as Buffer);
      viaPlc.decode(packets[f] as Buffer);
    }
    // Packet 30 is lost, packet 31 (with LBRR for frame 30) is here.
    const recovered = viaFec.decodeFec(packets[31] as Buffer);
    const concealed = viaPlc.decodeLost();
    expect(recovered).toHaveLength(640);
    expect(recovered.equals(concealed)).toBe(true);
    expect(viaFec.decode(packets[31] as Buffer).equals(viaPlc.decode(packets[31] as Buffer))).toBe(true);
  });

  it('opusPacketHasFec is false for CELT, empty and code-3 packets', () => {
    expect(opusPacketHasFec(Buffer.alloc(0))).toBe(false);
    expect(opusPacketHasFec(Buffer.of(0x48))).toBe(false);
    expect(opusPacketHasFec(Buffer.of(0xf8, 0xff, 0xff, 0xff))).toBe(false); // CELT FB 20 ms
    expect(opusPacketHasFec(Buffer.of(0x4b, 0x01, 0xff, 0xff))).toBe(false); // code 3
  });
});

describe('Opus DTX', () => {
  it('with dtx, silence gives packets of at most 2 bytes (nothing to send) except a refresh every 400 ms; speech is coded as usual', () => {
    const speech = speechLike(16000, 1);
    const encodeAll = (dtx: boolean): Buffer[] => {
      const enc = new OpusEncoder({ dtx });
      expect(enc.dtx).toBe(dtx);
      const out: Buffer[] = [];
      for (let f = 0; f < 50; f++) out.push(enc.encode(frameOf(speech, f, 320)));
      for (let f = 0; f < 100; f++) out.push(enc.encode(Buffer.alloc(640)));
      return out;
    };
    const packetsOn = encodeAll(true);
    const on = packetsOn.map((p) => p.length);
    const off = encodeAll(false).map((p) => p.length);
    expect(on.slice(0, 50)).toEqual(off.slice(0, 50));
    // After the encoder notices the silence (a few frames), one packet in 20 is sent.
    const silentOn = on.slice(70);
    const sent = silentOn.filter((n) => n > OPUS_DTX_PACKET_MAX_BYTES).length;
    expect(sent).toBeGreaterThanOrEqual(3);
    expect(sent).toBeLessThanOrEqual(4);
    expect(off.slice(70).every((n) => n > OPUS_DTX_PACKET_MAX_BYTES)).toBe(true);
    // A DTX packet (a TOC alone) decodes, as concealment, to a whole frame.
    const dec = new OpusDecoder();
    for (const p of packetsOn) expect(dec.decode(p).length).toBe(640);
    expect(() => new OpusEncoder({ dtx: 1 as never })).toThrow(OpusError);
  });
});

describe('Opus input validation', () => {
  it('PCM frames of the wrong size give ERR_OPUS_FRAME', () => {
    const enc16 = new OpusEncoder();
    const enc48 = new OpusEncoder({ sampleRate: 48000 });
    for (const [enc, bytes] of [
      [enc16, 639],
      [enc16, 0],
      [enc16, 1280],
      [enc16, 1920],
      [enc48, 640],
      [enc48, 1918],
    ] as const) {
      expect(() => enc.encode(Buffer.alloc(bytes))).toThrow(expect.objectContaining({ code: 'ERR_OPUS_FRAME' }));
    }
    expect(() => enc16.encode(new Uint8Array(640) as Buffer)).toThrow(OpusError);
    // An odd byte offset (a slice of a larger buffer) is still encoded.
    const big = Buffer.concat([Buffer.alloc(1), frameOf(tones(16000, 1), 0, 320)]);
    expect(enc16.encode(big.subarray(1)).length).toBeGreaterThan(1);
  });

  it('options out of range give ERR_OPUS_OPTIONS', () => {
    for (const options of [
      { sampleRate: 44100 },
      { sampleRate: 8000 },
      { bitrate: 5000 },
      { bitrate: 24000.5 },
      { complexity: 11 },
      { packetLossPercent: 101 },
      { packetLossPercent: -1 },
    ]) {
      expect(() => new OpusEncoder(options as never)).toThrow(expect.objectContaining({ code: 'ERR_OPUS_OPTIONS' }));
    }
    expect(() => new OpusDecoder({ sampleRate: 22050 as never })).toThrow(expect.objectContaining({ code: 'ERR_OPUS_OPTIONS' }));
    const enc = new OpusEncoder();
    expect(() => enc.setBitrate(600000)).toThrow(expect.objectContaining({ code: 'ERR_OPUS_OPTIONS' }));
    expect(() => enc.setFec(true, 200)).toThrow(expect.objectContaining({ code: 'ERR_OPUS_OPTIONS' }));
    expect(enc.bitrate).toBe(24000);
    expect(enc.fec).toBe(false);
  });

  it('malformed packets give typed errors, from the header check and from libopus', () => {
    const dec = new OpusDecoder();
    const cases: [Buffer, string][] = [
      [Buffer.alloc(0), 'ERR_OPUS_PACKET'],
      [Buffer.of(0x4b), 'ERR_OPUS_PACKET'], // code 3 without the count byte
      [Buffer.of(0x4b, 0x00), 'ERR_OPUS_PACKET'], // code 3, 0 frames
      [Buffer.of(0x50, 1, 2, 3), 'ERR_OPUS_DURATION'], // SILK WB 40 ms
      [Buffer.of(0x49, 1, 2, 3), 'ERR_OPUS_DURATION'], // two 20 ms frames
      [Buffer.of(0x40, 1, 2, 3), 'ERR_OPUS_DURATION'], // one 10 ms frame
    ];
    for (const [packet, code] of cases) {
      expect(() => dec.decode(packet)).toThrow(expect.objectContaining({ code }));
      expect(() => dec.decodeFec(packet)).toThrow(expect.objectContaining({ code }));
    }
    // 20 ms in all, so libopus itself rejects these: its error is wrapped.
    for (const packet of [
      Buffer.of(0x41, 1, 2, 3), // code 1: two equal 10 ms frames in an odd number of bytes
      Buffer.of(0x42, 200, 1, 2, 3), // code 2: first frame longer than the packet
    ]) {
      let caught: unknown;
      try {
        dec.decode(packet);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(OpusError);
      expect((caught as OpusError).code).toBe('ERR_OPUS_PACKET');
      expect((caught as OpusError).cause).toBeInstanceOf(Error);
    }
  });

  it('random packets never crash the decoder nor throw untyped errors, and it recovers', () => {
    const random = rng(0x0b05);
    const dec = new OpusDecoder();
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 3000; i++) {
      const packet = Buffer.alloc(1 + Math.floor(random() * 120));
      for (let j = 0; j < packet.length; j++) packet[j] = Math.floor(random() * 256);
      // Half of them get a 20 ms TOC so that libopus, not the header check, sees them.
      if (i % 2 === 0) packet[0] = ((packet[0] as number) & 0xf8 & ~0x18) | 0x08;
      outcomes[expectTyped(() => dec.decode(packet), OpusError)]++;
    }
    expect(outcomes.ok).toBeGreaterThan(500);
    expect(outcomes.error).toBeGreaterThan(500);
    // The same decoder still plays a real stream.
    const input = tones(16000, 1);
    const enc = new OpusEncoder();
    const out: Buffer[] = [];
    for (let f = 0; f < 50; f++) out.push(dec.decode(enc.encode(frameOf(input, f, 320))));
    expect(bestLag(input, concat(out), 640, 4800, 14400).corr).toBeGreaterThan(0.9);
  });
});

describe('Opus native module loading', () => {
  it('a module that cannot be loaded gives ERR_OPUS_UNAVAILABLE with the fix', () => {
    let caught: unknown;
    try {
      loadOpusBinding('@discordjs/opus-not-installed');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OpusError);
    expect((caught as OpusError).code).toBe('ERR_OPUS_UNAVAILABLE');
    expect((caught as OpusError).message).toMatch(/allowScripts/);
    expect((caught as OpusError).message).toMatch(/npm rebuild @discordjs\/opus/);
    expect((caught as OpusError).message).not.toMatch(/\n/);
    expect((caught as OpusError).cause).toBeInstanceOf(Error);
  });

  it('a module without OpusEncoder is refused', () => {
    expect(() => loadOpusBinding('node:path')).toThrow(expect.objectContaining({ code: 'ERR_OPUS_UNAVAILABLE' }));
  });

  it('the real module loads once and is cached', () => {
    expect(loadOpusBinding()).toBe(loadOpusBinding('@discordjs/opus'));
  });
});
