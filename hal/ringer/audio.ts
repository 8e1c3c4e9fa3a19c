/**
 * The audio ringer (`audio`): plays the ring cadence through a sound
 * device's speaker — the loudspeaker of a desk phone without a bell.
 *
 * The device is opened on `start` (through the `open` function given, e.g.
 * `() => openAudioDevice(spec)`) and closed on `stop`, since the media
 * engine opens the same card for a call once the phone is answered. Frames
 * come from a `ToneGenerator` in the device's capture callback, so the
 * cadence runs on the card's clock, exact by sample count. A `stop` closes
 * the device in the background; a `start` after it waits for that close
 * before opening again. A device that fails to open or start is reported
 * to `onError` and the ringer goes back to idle.
 */
import type { AudioDevice } from '../audio/types.js';
import { ToneGenerator } from '../tones/generator.js';
import type { ToneSpec } from '../tones/tables.js';
import type { Ringer, RingerState } from './types.js';

export interface AudioRingerOptions {
  /** Open the device to ring on (called on each start). */
  open: () => AudioDevice;
  /** Ring level in dBm0 (default −6: louder than call-progress tones). */
  levelDbm0?: number;
  onError?: (err: unknown) => void;
}

export class AudioRinger implements Ringer {
  readonly #open: () => AudioDevice;
  readonly #levelDbm0: number;
  readonly #onError: (err: unknown) => void;
  #cadence: ToneSpec | undefined;
  #device: AudioDevice | undefined;
  #generator: ToneGenerator | undefined;
  #closing: Promise<void> = Promise.resolve();
  #session = 0;
  #closed = false;

  constructor(options: AudioRingerOptions) {
    this.#open = options.open;
    this.#levelDbm0 = options.levelDbm0 ?? -6;
    this.#onError = options.onError ?? (() => {});
  }

  get state(): RingerState {
    return this.#cadence ? 'ringing' : 'idle';
  }

  get cadence(): ToneSpec | undefined {
    return this.#cadence;
  }

  start(cadence: ToneSpec): void {
    if (this.#closed) return;
    this.#cadence = cadence;
    if (this.#device && this.#generator) {
      // Already ringing: switch cadence from the next frame.
      this.#generator = new ToneGenerator(cadence, { sampleRate: this.#device.sampleRate, levelDbm0: this.#levelDbm0 });
      return;
    }
    const session = ++this.#session;
    this.#closing
      .then(() => {
        if (session !== this.#session || !this.#cadence) return;
        const device = this.#open();
        const generator = new ToneGenerator(this.#cadence, { sampleRate: device.sampleRate, levelDbm0: this.#levelDbm0 });
        this.#device = device;
        this.#generator = generator;
        device.start(() => {
          if (this.#device === device && this.#generator) device.play(this.#generator.nextFrame());
        });
      })
      .catch((err: unknown) => {
        this.#cadence = undefined;
        this.#release();
        this.#onError(err);
      });
  }

  stop(): void {
    this.#session++;
    this.#cadence = undefined;
    this.#release();
  }

  async close(): Promise<void> {
    this.stop();
    this.#closed = true;
    await this.#closing;
  }

  #release(): void {
    const device = this.#device;
    this.#device = undefined;
    this.#generator = undefined;
    if (!device) return;
    this.#closing = this.#closing
      .then(() => device.close())
      .catch((err: unknown) => this.#onError(err));
  }
}
