/**
 * Tones: every country's tones have the table's frequencies (Goertzel power
 * at the wanted frequencies against off-frequency probes), the cadence is
 * exact by sample count (on/off run lengths), levels are the chosen
 * −10 dBm0 total without clipping, frames join without a seam.
 */
import { describe, expect, it } from 'vitest';
import { AudioError } from '../../hal/audio/errors.js';
import { DBM0_PEAK, TONE_COUNTRIES, TONE_NAMES, ToneGenerator, componentPeak, ringCadence, toneSpec } from '../../hal/tones/index.js';
import type { ToneSpec } from '../../hal/tones/index.js';

function samplesOf(gen: ToneGenerator, frames: number): Int16Array {
  const out = new Int16Array(frames * gen.frameSamples);
  for (let f = 0; f < frames; f++) {
    const frame = gen.nextFrame();
    expect(frame.length).toBe(gen.frameSamples * 2);
    for (let i = 0; i < gen.frameSamples; i++) out[f * gen.frameSamples + i] = frame.readInt16LE(2 * i);
  }
  return out;
}

/** Goertzel: the amplitude of frequency `f` in `x` (a sine of peak A gives ≈ A). */
function goertzel(x: ArrayLike<number>, f: number, rate: number): number {
  const w = (2 * Math.PI * f) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s = x[i]! + c * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const power = s1 * s1 + s2 * s2 - c * s1 * s2;
  return (2 * Math.sqrt(Math.max(0, power))) / x.length;
}

/** Runs of non-silent / silent samples as [on, length] pairs (silence: |x| < 1 over ≥ 2 ms, so zero crossings do not split a run). */
function runs(x: Int16Array, rate: number): Array<[boolean, number]> {
  const gap = (2 * rate) / 1000;
  const out: Array<[boolean, number]> = [];
  let i = 0;
  while (i < x.length) {
    let j = i;
    while (j < x.length && x[j] === 0) j++;
    const zeros = j - i;
    if (zeros >= gap || j === x.length) {
      if (zeros > 0) out.push([false, zeros]);
      i = j;
      continue;
    }
    // a tone run: until the next ≥ gap stretch of zeros
    let k = i;
    for (;;) {
      while (k < x.length && x[k] !== 0) k++;
      let z = k;
      while (z < x.length && x[z] === 0) z++;
      if (z - k >= gap || z === x.length) break;
      k = z;
    }
    out.push([true, k - i]);
    i = k;
  }
  return out;
}

const PROBES = [300, 375, 500, 700, 900];

describe('tone tables', () => {
  it.each([
    ['us', 'dial', [350, 440], []],
    ['us', 'ringback', [440, 480], [2000, 4000]],
    ['us', 'busy', [480, 620], [500, 500]],
    ['us', 'congestion', [480, 620], [250, 250]],
    ['us', 'callWaiting', [440], [300, 9700]],
    ['eu', 'dial', [425], []],
    ['eu', 'ringback', [425], [1000, 4000]],
    ['eu', 'busy', [425], [500, 500]],
    ['eu', 'congestion', [425], [200, 200]],
    ['eu', 'callWaiting', [425], [200, 200, 200, 5000]],
    ['uk', 'ringback', [400, 450], [400, 200, 400, 2000]],
  ] as const)('%s %s: %j Hz, cadence %j ms', (country, name, freqs, cadenceMs) => {
    const spec = toneSpec(country, name);
    const tones = spec.segments.filter((s) => s.frequencies.length > 0);
    for (const s of tones) expect([...s.frequencies].sort()).toEqual([...freqs]);
    if (cadenceMs.length > 0) expect(spec.segments.map((s) => s.durationMs)).toEqual([...cadenceMs]);
    expect(spec.repeat).toBe(true);
  });

  it('refuses unknown countries and tones with ERR_AUDIO_TONE', () => {
    expect(() => toneSpec('xx' as never, 'dial')).toThrow(expect.objectContaining({ code: 'ERR_AUDIO_TONE' }));
    expect(() => toneSpec('us', 'hum' as never)).toThrow(AudioError);
  });
});

describe('ToneGenerator', () => {
  for (const rate of [16000, 48000] as const) {
    it(`${rate} Hz: every country's tones carry their frequencies and nothing else, at −10 dBm0 total`, () => {
      for (const country of TONE_COUNTRIES) {
        for (const name of TONE_NAMES) {
          if (name === 'ring') continue;
          const spec = toneSpec(country, name);
          const first = spec.segments[0]!;
          const gen = new ToneGenerator(spec, { sampleRate: rate });
          // Analyse the steady middle of the first on-segment (skip the 2 ms ramps).
          const total = samplesOf(gen, Math.ceil(first.durationMs / 20));
          const from = (5 * rate) / 1000;
          const to = (first.durationMs * rate) / 1000 - from;
          const x = total.subarray(from, to);
          const expected = componentPeak(-10, first.frequencies.length);
          for (const f of first.frequencies) expect(goertzel(x, f, rate) / expected, `${country} ${name} ${f} Hz`).toBeGreaterThan(0.97);
          for (const f of PROBES.filter((p) => first.frequencies.every((g) => Math.abs(g - p) > 60))) {
            expect(goertzel(x, f, rate) / expected, `${country} ${name} probe ${f} Hz`).toBeLessThan(0.05);
          }
          // Power: mean square against the 0 dBm0 sine's (peak²/2).
          let sq = 0;
          for (const v of x) sq += v * v;
          const dbm0 = 10 * Math.log10(sq / x.length / (DBM0_PEAK ** 2 / 2));
          expect(dbm0).toBeGreaterThan(-10.2);
          expect(dbm0).toBeLessThan(-9.8);
          let peak = 0;
          for (const v of total) peak = Math.max(peak, Math.abs(v));
          expect(peak).toBeLessThan(32767 * 0.5); // no clipping, ample headroom
        }
      }
    });
  }

  it('cadence is exact by sample count: US busy 0.5/0.5, EU congestion 0.2/0.2, US ringback 2/4 at 16 kHz', () => {
    const cases: Array<[ToneSpec, number[]]> = [
      [toneSpec('us', 'busy'), [500, 500]],
      [toneSpec('eu', 'congestion'), [200, 200]],
      [toneSpec('us', 'ringback'), [2000, 4000]],
      [toneSpec('eu', 'callWaiting'), [200, 200, 200, 5000]],
    ];
    for (const [spec, cadenceMs] of cases) {
      const rate = 16000;
      const gen = new ToneGenerator(spec, { sampleRate: rate });
      const cycleMs = cadenceMs.reduce((a, b) => a + b, 0);
      expect(gen.cycleSamples).toBe((cycleMs * rate) / 1000);
      const x = samplesOf(gen, (3 * cycleMs) / 20);
      const got = runs(x, rate);
      // Three cycles: on/off alternate with the table's lengths (a ramp's first sample is 0: ±2 samples).
      const want = [0, 1, 2].flatMap(() => cadenceMs.map((ms, i) => [i % 2 === 0, (ms * rate) / 1000] as [boolean, number]));
      expect(got.length).toBe(want.length);
      got.forEach(([on, len], i) => {
        expect(on).toBe(want[i]![0]);
        expect(Math.abs(len - want[i]![1])).toBeLessThanOrEqual(2);
      });
      expect(gen.elapsedSamples).toBe(x.length);
    }
  });

  it('is phase-continuous across frames: a continuous dial tone has no seam at frame edges', () => {
    const rate = 48000;
    const gen = new ToneGenerator(toneSpec('eu', 'dial'), { sampleRate: rate });
    const x = samplesOf(gen, 150); // 3 s: across the 1 s segment repeats too
    const peak = componentPeak(-10, 1);
    const maxStep = 2 * Math.PI * 425 / rate * peak + 2; // largest sample-to-sample change of the sine, plus rounding
    let worst = 0;
    for (let i = (5 * rate) / 1000; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - x[i - 1]!));
    expect(worst).toBeLessThanOrEqual(maxStep);
    expect(worst).toBeGreaterThan(maxStep * 0.9);
    // zero crossings: 2 × 425 per second
    let crossings = 0;
    for (let i = rate; i < 3 * rate; i++) if ((x[i - 1]! < 0) !== (x[i]! < 0)) crossings++;
    expect(Math.abs(crossings - 2 * 425 * 2)).toBeLessThanOrEqual(2);
  });

  it('the ring cadence: US warble 2 s on 4 s off, EU 1 s on 4 s off, UK double ring', () => {
    const rate = 16000;
    for (const [country, want] of [['us', [2000, 4000]], ['eu', [1000, 4000]], ['uk', [400, 200, 400, 2000]]] as const) {
      const gen = new ToneGenerator(ringCadence(country), { sampleRate: rate, levelDbm0: -3 });
      const x = samplesOf(gen, want.reduce((a: number, b: number) => a + b, 0) / 20);
      const got = runs(x, rate).map(([on, len]) => [on, Math.round((len / rate) * 1000 / 10) * 10]);
      expect(got).toEqual(want.map((ms, i) => [i % 2 === 0, ms]));
      const on = x.subarray(0, (400 * rate) / 1000);
      expect(goertzel(on, 1000, rate)).toBeGreaterThan(goertzel(on, 425, rate) * 10);
      expect(goertzel(on, 800, rate)).toBeGreaterThan(goertzel(on, 425, rate) * 10);
    }
  });

  it('a tone that does not repeat ends in silence; reset starts again', () => {
    const spec: ToneSpec = { name: 'beep', segments: [{ durationMs: 30, frequencies: [1000] }], repeat: false };
    const gen = new ToneGenerator(spec, { sampleRate: 16000 });
    const x = samplesOf(gen, 3);
    expect(gen.done).toBe(true);
    expect(x.subarray(480).every((v) => v === 0)).toBe(true);
    expect(x.subarray(40, 440).some((v) => Math.abs(v) > 1000)).toBe(true);
    gen.reset();
    expect(gen.done).toBe(false);
    expect(samplesOf(gen, 1).some((v) => v !== 0)).toBe(true);
  });

  it('refuses bad options and segments', () => {
    const dial = toneSpec('us', 'dial');
    expect(() => new ToneGenerator(dial, { sampleRate: 8000 as never })).toThrow(/expected 16000 or 48000/);
    expect(() => new ToneGenerator(dial, { sampleRate: 16000, levelDbm0: 3 })).toThrow(/levelDbm0 3/);
    expect(() => new ToneGenerator({ name: 'x', segments: [], repeat: true }, { sampleRate: 16000 })).toThrow(/no segments/);
    expect(() => new ToneGenerator({ name: 'x', segments: [{ durationMs: 0.5, frequencies: [] }], repeat: true }, { sampleRate: 16000 })).toThrow(/durationMs 0.5/);
    expect(() => new ToneGenerator({ name: 'x', segments: [{ durationMs: 10, frequencies: [9000] }], repeat: true }, { sampleRate: 16000 })).toThrow(/frequency 9000/);
  });
});
