/**
 * The ringer: what makes an idle phone ring for an incoming call.
 *
 * `start(cadence)` rings in a cadence (`ringCadence(country)` from
 * `hal/tones`, or any `ToneSpec`); `stop()` falls silent; starting again
 * while ringing switches cadence. `state` is `ringing` or `idle`.
 * Drivers: `sim` (records what it was told, for tests and `ctl status`) and
 * `audio` (plays the cadence through an audio device's speaker).
 */
import type { ToneSpec } from '../tones/tables.js';

export type RingerState = 'idle' | 'ringing';

export interface Ringer {
  readonly state: RingerState;
  /** The cadence being rung, while ringing. */
  readonly cadence: ToneSpec | undefined;
  start(cadence: ToneSpec): void;
  /** Stop ringing. Harmless when idle. */
  stop(): void;
  /** Stop and release what the driver holds (an audio device). Harmless twice. */
  close(): Promise<void>;
}
