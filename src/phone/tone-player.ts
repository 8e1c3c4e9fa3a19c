import type { AudioDevice } from '../../hal/audio/types.js';
import { ToneGenerator, toneSpec } from '../../hal/tones/index.js';
import type { ToneCountry } from '../../hal/tones/index.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../system/logging.js';
import type { ToneName } from './phone-app.js';

/**
 * Call-progress tones to the handset (hal/tones/): opens the audio device
 * while a tone plays and closes it when the tone stops, before the call's
 * media engine takes the device. The device's capture clock paces the
 * frames; what it captures is ignored.
 */
export class TonePlayer {
  #open: () => AudioDevice;
  #country: () => ToneCountry;
  #log: Logger;
  #device: AudioDevice | undefined;
  #playing: ToneName | null = null;
  /** Closing the last device: the next one opens after it. */
  #closing: Promise<void> = Promise.resolve();

  constructor(options: { open: () => AudioDevice; country: () => ToneCountry; log: Logger }) {
    this.#open = options.open;
    this.#country = options.country;
    this.#log = options.log;
  }

  get playing(): ToneName | null {
    return this.#playing;
  }

  play(name: ToneName | null): void {
    if (name === this.#playing) return;
    this.#playing = name;
    this.#stop();
    if (!name) return;
    const start = (): void => {
      if (this.#playing !== name || this.#device) return;
      try {
        const device = this.#open();
        const generator = new ToneGenerator(toneSpec(this.#country(), name), { sampleRate: device.sampleRate });
        device.start(() => device.play(generator.nextFrame()));
        this.#device = device;
      } catch (err) {
        this.#log.warn({ tone: name, err: errorMessage(err) }, 'cannot play the tone');
      }
    };
    void this.#closing.then(start);
  }

  async close(): Promise<void> {
    this.#playing = null;
    this.#stop();
    await this.#closing;
  }

  #stop(): void {
    const device = this.#device;
    this.#device = undefined;
    if (!device) return;
    this.#closing = this.#closing.then(() => device.close()).catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'closing the tone device failed'));
  }
}
