/**
 * Sample-rate conversion of mono 16-bit PCM, simple on purpose: it converts
 * test and prompt WAV files to the device rate, not live call audio.
 *
 * - Same rate: a copy.
 * - Integer down-sampling (48 kHz → 16 kHz): the mean of the samples
 *   around each one kept, a box filter that keeps most of the aliasing out.
 * - Anything else (16 kHz → 48 kHz included): linear interpolation.
 */
import { AudioError } from './errors.js';

const MIN_RATE = 8000;
const MAX_RATE = 192000;

function checkRate(what: string, rate: number): void {
  if (!Number.isInteger(rate) || rate < MIN_RATE || rate > MAX_RATE) {
    throw new AudioError('ERR_AUDIO_WAV_RATE', `resample: ${what} rate ${rate} Hz, expected an integer ${MIN_RATE}–${MAX_RATE}`);
  }
}

export function resample(samples: Int16Array, fromRate: number, toRate: number): Int16Array {
  checkRate('source', fromRate);
  checkRate('target', toRate);
  if (fromRate === toRate) return samples.slice();
  if (fromRate > toRate && fromRate % toRate === 0) {
    const factor = fromRate / toRate;
    // Centred on the sample kept, so the output is not shifted in time.
    const out = new Int16Array(Math.floor(samples.length / factor));
    const half = Math.floor((factor - 1) / 2);
    for (let i = 0; i < out.length; i++) {
      let sum = 0;
      for (let k = -half; k < factor - half; k++) sum += samples[Math.min(samples.length - 1, Math.max(0, i * factor + k))]!;
      out[i] = Math.round(sum / factor);
    }
    return out;
  }
  const length = Math.floor((samples.length * toRate) / fromRate);
  const out = new Int16Array(length);
  const step = fromRate / toRate;
  for (let i = 0; i < length; i++) {
    const x = i * step;
    const i0 = Math.floor(x);
    const a = samples[i0] ?? 0;
    const b = samples[i0 + 1] ?? a;
    out[i] = Math.round(a + (b - a) * (x - i0));
  }
  return out;
}
