/**
 * Call-progress tones and ring cadences (DESIGN.md "tones"): country tables
 * after ITU-T E.180 (`tables.ts`) and a generator of 20 ms PCM frames
 * (`generator.ts`).
 *
 *     const gen = new ToneGenerator(toneSpec('us', 'dial'), { sampleRate: 16000 });
 *     device.play(gen.nextFrame()); // in each capture callback
 */
export { TONE_COUNTRIES, TONE_NAMES, isToneCountry, ringCadence, toneSpec } from './tables.js';
export type { ToneCountry, ToneName, ToneSegment, ToneSpec } from './tables.js';
export { DBM0_PEAK, DEFAULT_TONE_LEVEL_DBM0, ToneGenerator, componentPeak } from './generator.js';
export type { ToneGeneratorOptions } from './generator.js';
