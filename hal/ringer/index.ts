/**
 * The ringer: `Ringer` (start(cadence) / stop / state) with a `sim` driver
 * and an `audio` driver that rings through a sound device's speaker.
 */
export type { Ringer, RingerState } from './types.js';
export { SimRinger } from './sim.js';
export type { RingerEvent } from './sim.js';
export { AudioRinger } from './audio.js';
export type { AudioRingerOptions } from './audio.js';
