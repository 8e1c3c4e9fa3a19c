/**
 * Audio comparison for the media tests: read WAV files, and measure how well
 * what came out of a call matches what went in.
 *
 * `bestCorrelation` is the normalised cross-correlation (Pearson's r with
 * zero mean assumed: Σxy / √(Σx²Σy²)) of the sent waveform and the received
 * one, maximised over the lag, computed over the samples both cover. Fast
 * without an FFT: the lag is searched first on both signals decimated 8×
 * (box average: 2 kHz at 16 kHz, where voiced speech has most of its
 * energy), then at the full rate within ±12 samples of the 3 best coarse
 * lags. 6 s at 16 kHz with ±0.5 s of lag takes some tens of ms.
 * `alignedCorrelation` lets the lag move between 500 ms pieces, as an
 * adaptive jitter buffer moves it (see there).
 *
 * A codec does not reproduce a waveform exactly (Opus's SILK layer models
 * it, phase is not kept everywhere), so even a clean call stays below 1; the
 * tests print what they measure and compare with the chance baseline, the
 * received audio against the other speech sample.
 */
import { readWav } from '../../hal/audio/wav.js';

export function readSamples(path: string | URL, sampleRate?: number): Int16Array {
  return readWav(typeof path === 'string' ? path : path.pathname, sampleRate === undefined ? {} : { sampleRate }).samples;
}

export function toFloat(samples: Int16Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! / 32768;
  return out;
}

export function rms(x: ArrayLike<number>, from = 0, to = x.length): number {
  if (to <= from) return 0;
  let sum = 0;
  for (let i = from; i < to; i++) sum += (x[i] as number) ** 2;
  return Math.sqrt(sum / (to - from));
}

function decimate(x: ArrayLike<number>, factor: number): Float64Array {
  const out = new Float64Array(Math.floor(x.length / factor));
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (let k = 0; k < factor; k++) sum += x[i * factor + k] as number;
    out[i] = sum / factor;
  }
  return out;
}

interface Sums {
  xy: number;
  xx: number;
  yy: number;
}

/** Σxy, Σx², Σy² of sent[i] and received[i + lag] over the indices both have. */
function sumsAt(sent: ArrayLike<number>, received: ArrayLike<number>, lag: number): Sums {
  const from = Math.max(0, -lag);
  const to = Math.min(sent.length, received.length - lag);
  let xy = 0;
  let xx = 0;
  let yy = 0;
  for (let i = from; i < to; i++) {
    const x = sent[i] as number;
    const y = received[i + lag] as number;
    xy += x * y;
    xx += x * x;
    yy += y * y;
  }
  return { xy, xx, yy };
}

function ncc(s: Sums): number {
  return s.xx === 0 || s.yy === 0 ? 0 : s.xy / Math.sqrt(s.xx * s.yy);
}

/** Σxy/√(Σx²Σy²) of sent[i] and received[i + lag] over the indices both have. */
export function correlationAt(sent: ArrayLike<number>, received: ArrayLike<number>, lag: number): number {
  return ncc(sumsAt(sent, received, lag));
}

export interface CorrelationOptions {
  sampleRate?: number;
  /** Largest delay of `received` behind `sent` to consider, ms. */
  maxLagMs: number;
  /** Smallest (default −maxLagMs: received may also be ahead, when its recording started later). */
  minLagMs?: number;
  /**
   * Least overlap of the two at a lag, ms (default: half of `sent`): at lags
   * where only a sliver overlaps, a few samples of noise can correlate
   * highly by chance.
   */
  minOverlapMs?: number;
}

export interface Correlation {
  /** Normalised cross-correlation at the best lag, −1..1. */
  corr: number;
  /** Lag in samples: received[i + lag] matches sent[i]. */
  lag: number;
  lagMs: number;
}

const COARSE = 8;

/** The lag in [minLag, maxLag] (samples) with the highest NCC: coarse search on decimated signals, then full rate near the 3 best. */
function searchLag(sent: Int16Array, received: Int16Array, minLag: number, maxLag: number, minOverlap = 0): { lag: number; sums: Sums } {
  const xs = decimate(sent, COARSE);
  const ys = decimate(received, COARSE);
  const coarse: Array<{ lag: number; corr: number }> = [];
  const overlap = (lag: number): number => Math.min(sent.length, received.length - lag) - Math.max(0, -lag);
  // Keep the range non-empty: when no lag overlaps enough, the best of the others is still reported.
  if (minOverlap > 0) {
    const lo = Math.max(minLag, minOverlap - sent.length);
    const hi = Math.min(maxLag, received.length - minOverlap);
    if (lo <= hi && overlap(lo) >= minOverlap) {
      minLag = lo;
      maxLag = hi;
    }
  }
  for (let l = Math.floor(minLag / COARSE); l <= Math.ceil(maxLag / COARSE); l++) coarse.push({ lag: l * COARSE, corr: ncc(sumsAt(xs, ys, l)) });
  coarse.sort((a, b) => b.corr - a.corr);
  let best = { lag: 0, sums: { xy: 0, xx: 0, yy: 0 }, corr: -Infinity };
  for (const c of coarse.slice(0, 3)) {
    for (let lag = Math.max(minLag, c.lag - 12); lag <= Math.min(maxLag, c.lag + 12); lag++) {
      const sums = sumsAt(sent, received, lag);
      const corr = ncc(sums);
      if (corr > best.corr) best = { lag, sums, corr };
    }
  }
  return best;
}

export function bestCorrelation(sent: Int16Array, received: Int16Array, options: CorrelationOptions): Correlation {
  const rate = options.sampleRate ?? 16000;
  const maxLag = Math.round((options.maxLagMs * rate) / 1000);
  const minLag = Math.round(((options.minLagMs ?? -options.maxLagMs) * rate) / 1000);
  const minOverlap = options.minOverlapMs === undefined ? Math.floor(sent.length / 2) : Math.round((options.minOverlapMs * rate) / 1000);
  const { lag, sums } = searchLag(sent, received, minLag, maxLag, minOverlap);
  return { corr: ncc(sums), lag, lagMs: (lag * 1000) / rate };
}

export interface AlignedCorrelationOptions extends CorrelationOptions {
  /** Length of the pieces aligned on their own (default 500 ms). */
  segmentMs?: number;
  /** How far a piece's lag may stray from the best overall lag (default 60 ms: three frames). */
  driftMs?: number;
}

export interface AlignedCorrelation extends Correlation {
  /** Each segment's lag, ms. */
  segmentLagsMs: number[];
  /** The single-lag figure, for comparison. */
  global: Correlation;
}

/**
 * NCC with the alignment allowed to move between segments. An adaptive
 * jitter buffer tracks its delay target by dropping or inserting whole
 * 20 ms frames, so the lag between sent and received audio steps by 20 ms
 * now and then during a call, and one lag cannot fit all of it. Here the
 * best overall lag is found first; then each `segmentMs` piece of the sent
 * audio takes its best lag within ±`driftMs` of it, and the result is
 * Σxy/√(Σx²Σy²) summed over all pieces, each at its own lag — still a
 * plain waveform correlation, sample against sample.
 */
export function alignedCorrelation(sent: Int16Array, received: Int16Array, options: AlignedCorrelationOptions): AlignedCorrelation {
  const rate = options.sampleRate ?? 16000;
  const global = bestCorrelation(sent, received, options);
  const maxLag = Math.round((options.maxLagMs * rate) / 1000);
  const minLag = Math.round(((options.minLagMs ?? -options.maxLagMs) * rate) / 1000);
  const drift = Math.round(((options.driftMs ?? 60) * rate) / 1000);
  const segment = Math.round(((options.segmentMs ?? 500) * rate) / 1000);
  const total: Sums = { xy: 0, xx: 0, yy: 0 };
  const segmentLagsMs: number[] = [];
  for (let from = 0; from + segment / 4 < sent.length; from += segment) {
    const piece = sent.subarray(from, Math.min(sent.length, from + segment));
    const lo = Math.max(minLag, global.lag - drift);
    const hi = Math.min(maxLag, global.lag + drift);
    // The piece starts at `from`: its lag l means received[from + i + l].
    const shifted = received.subarray(Math.max(0, from + lo), Math.min(received.length, from + hi + piece.length));
    const base = Math.max(0, from + lo) - from;
    const { lag, sums } = searchLag(piece, shifted, lo - base, hi - base);
    total.xy += sums.xy;
    total.xx += sums.xx;
    total.yy += sums.yy;
    segmentLagsMs.push(((lag + base) * 1000) / rate);
  }
  return { corr: ncc(total), lag: global.lag, lagMs: global.lagMs, segmentLagsMs, global };
}
/** The part of `samples` from `fromMs` to `toMs`. */
export function slice(samples: Int16Array, fromMs: number, toMs: number, sampleRate = 16000): Int16Array {
  return samples.subarray(Math.round((fromMs * sampleRate) / 1000), Math.round((toMs * sampleRate) / 1000));
}
