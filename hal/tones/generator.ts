/**
 * `ToneGenerator`: successive 20 ms S16LE mono frames of a tone cadence
 * (`ToneSpec`), for the phone's earpiece (dial tone, ringback, busy …) or
 * its loudspeaker (the ring).
 *
 * - Cadence by sample count, not timers: segment n lasts exactly
 *   `durationMs × rate / 1000` samples, and a segment boundary may fall in
 *   the middle of a frame. Frame k of a tone is the same whenever it is
 *   asked for, so the tone is as exact as the audio clock that pulls it.
 * - Phase-continuous: each oscillator keeps its phase across frames and
 *   segments, so a continuous tone has no seam at frame edges and a warble
 *   changes pitch without a click.
 * - Short (2 ms) raised-cosine ramps where a tone starts after or stops
 *   before silence, so cadenced tones do not click.
 * - Level: `levelDbm0` is the tone's total power in dBm0 (default −10),
 *   shared equally by its frequencies (a dual tone at −10 dBm0 is two
 *   components at −13 dBm0 each — the North American dial-tone level). The
 *   0 dBm0 reference is G.711's: a full-scale sine is +3.14 dBm0, so a
 *   0 dBm0 sine has a peak of 32767 × 10^(−3.14/20) ≈ 22 918. At most 0 dBm0
 *   total is accepted, which keeps a dual tone's peak below full scale.
 */
import { AudioError } from '../audio/errors.js';
import { AUDIO_FRAME_MS } from '../audio/types.js';
import type { AudioSampleRate } from '../audio/types.js';
import type { ToneSpec } from './tables.js';

/** Peak of a 0 dBm0 sine in 16-bit PCM (G.711: full scale = +3.14 dBm0). */
export const DBM0_PEAK = 32767 * 10 ** (-3.14 / 20);
export const DEFAULT_TONE_LEVEL_DBM0 = -10;
const MIN_LEVEL_DBM0 = -60;
const MAX_LEVEL_DBM0 = 0;
const RAMP_MS = 2;

export interface ToneGeneratorOptions {
  sampleRate: AudioSampleRate;
  /** Total tone power in dBm0, −60 … 0 (default −10). */
  levelDbm0?: number;
}

interface Segment {
  samples: number;
  frequencies: readonly number[];
  rampIn: boolean;
  rampOut: boolean;
}

/** Peak amplitude of each of `components` sines sharing `levelDbm0` of total power. */
export function componentPeak(levelDbm0: number, components: number): number {
  return components === 0 ? 0 : DBM0_PEAK * 10 ** (levelDbm0 / 20) / Math.sqrt(components);
}

export class ToneGenerator {
  readonly spec: ToneSpec;
  readonly sampleRate: AudioSampleRate;
  readonly frameSamples: number;
  readonly levelDbm0: number;
  /** Samples in one full cycle of the cadence. */
  readonly cycleSamples: number;
  readonly #segments: Segment[];
  readonly #rampSamples: number;
  readonly #phases: number[] = [];
  #segment = 0;
  #position = 0;
  #elapsed = 0;
  #done = false;
  #firstCycle = true;

  constructor(spec: ToneSpec, options: ToneGeneratorOptions) {
    if (options.sampleRate !== 16000 && options.sampleRate !== 48000) {
      throw new AudioError('ERR_AUDIO_OPTIONS', `tone ${spec.name}: sampleRate ${String(options.sampleRate)}, expected 16000 or 48000`);
    }
    const level = options.levelDbm0 ?? DEFAULT_TONE_LEVEL_DBM0;
    if (!Number.isFinite(level) || level < MIN_LEVEL_DBM0 || level > MAX_LEVEL_DBM0) {
      throw new AudioError('ERR_AUDIO_OPTIONS', `tone ${spec.name}: levelDbm0 ${level}, expected ${MIN_LEVEL_DBM0}…${MAX_LEVEL_DBM0}`);
    }
    this.spec = spec;
    this.sampleRate = options.sampleRate;
    this.frameSamples = (options.sampleRate * AUDIO_FRAME_MS) / 1000;
    this.levelDbm0 = level;
    this.#rampSamples = (RAMP_MS * options.sampleRate) / 1000;
    this.#segments = checkSegments(spec, options.sampleRate);
    this.cycleSamples = this.#segments.reduce((sum, s) => sum + s.samples, 0);
  }

  /** Samples generated so far. */
  get elapsedSamples(): number {
    return this.#elapsed;
  }

  /** A tone that does not repeat has played its last segment (frames are silence from here). */
  get done(): boolean {
    return this.#done;
  }

  /** Back to the start of the cadence (phases too). */
  reset(): void {
    this.#segment = 0;
    this.#position = 0;
    this.#elapsed = 0;
    this.#done = false;
    this.#firstCycle = true;
    this.#phases.length = 0;
  }

  /** The next 20 ms frame, S16LE mono. */
  nextFrame(): Buffer {
    const out = Buffer.alloc(this.frameSamples * 2);
    this.fill(out);
    return out;
  }

  /** Write the next `out.length / 2` samples into `out`. */
  fill(out: Buffer): void {
    const n = out.length >> 1;
    for (let i = 0; i < n; i++) {
      out.writeInt16LE(this.#sample(), 2 * i);
    }
    this.#elapsed += n;
  }

  #sample(): number {
    if (this.#done) return 0;
    const seg = this.#segments[this.#segment]!;
    let value = 0;
    if (seg.frequencies.length > 0) {
      const peak = componentPeak(this.levelDbm0, seg.frequencies.length);
      for (let k = 0; k < seg.frequencies.length; k++) {
        const phase = this.#phases[k] ?? 0;
        value += peak * Math.sin(2 * Math.PI * phase);
        const next = phase + seg.frequencies[k]! / this.sampleRate;
        this.#phases[k] = next - Math.floor(next);
      }
      value *= this.#envelope(seg);
    }
    if (++this.#position >= seg.samples) {
      this.#position = 0;
      this.#segment++;
      if (this.#segment === this.#segments.length) {
        this.#segment = 0;
        this.#firstCycle = false;
        if (!this.spec.repeat) this.#done = true;
      }
    }
    return Math.max(-32768, Math.min(32767, Math.round(value)));
  }

  #envelope(seg: Segment): number {
    const ramp = this.#rampSamples;
    let gain = 1;
    const rampIn = seg.rampIn || (this.#segment === 0 && this.#firstCycle);
    if (rampIn && this.#position < ramp) gain = Math.min(gain, this.#position / ramp);
    const left = seg.samples - 1 - this.#position;
    if (seg.rampOut && left < ramp) gain = Math.min(gain, left / ramp);
    return gain === 1 ? 1 : 0.5 - 0.5 * Math.cos(Math.PI * gain);
  }
}

function checkSegments(spec: ToneSpec, sampleRate: number): Segment[] {
  if (!Array.isArray(spec.segments) || spec.segments.length === 0) {
    throw new AudioError('ERR_AUDIO_TONE', `tone ${spec.name}: no segments`);
  }
  const nyquist = sampleRate / 2;
  const raw = spec.segments.map((s, i) => {
    if (!Number.isInteger(s.durationMs) || s.durationMs <= 0) {
      throw new AudioError('ERR_AUDIO_TONE', `tone ${spec.name} segment ${i}: durationMs ${s.durationMs}, expected a whole number of milliseconds > 0`);
    }
    for (const f of s.frequencies) {
      if (!Number.isFinite(f) || f <= 0 || f >= nyquist) {
        throw new AudioError('ERR_AUDIO_TONE', `tone ${spec.name} segment ${i}: frequency ${f} Hz, expected 0 < f < ${nyquist}`);
      }
    }
    return { samples: (s.durationMs * sampleRate) / 1000, frequencies: s.frequencies };
  });
  const last = raw.length - 1;
  const silent = (j: number): boolean => raw[j]!.frequencies.length === 0;
  return raw.map((s, i) => ({
    ...s,
    // Segment 0 also ramps in on the first cycle (see #envelope).
    rampIn: i === 0 ? spec.repeat && silent(last) : silent(i - 1),
    rampOut: i === last ? !spec.repeat || silent(0) : silent(i + 1),
  }));
}
