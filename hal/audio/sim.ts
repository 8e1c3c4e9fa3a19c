/**
 * The simulated audio driver (`driver: sim`), a first-class driver like
 * baresip's mock modules: the microphone is a WAV file, the speaker is a WAV
 * file, and the 20 ms frame clock runs in real time (`RealtimeFrameClock`,
 * drift-corrected against `performance.now()`) unless a test passes its own.
 *
 * - `input`: played as the microphone from the first frame after `start`,
 *   then silence; silence throughout when unset. Converted to the device
 *   rate when the file has another.
 * - `output`: everything played to the speaker, written as a WAV file that
 *   is created (rewritten) when the device opens and complete after
 *   `close()`; discarded when unset. The file follows the capture clock: a
 *   frame period in which nothing was played is written as silence, so time
 *   in the file is time since `start`.
 */
import { AudioError } from './errors.js';
import { RealtimeFrameClock } from './clock.js';
import type { FrameClock } from './clock.js';
import { AUDIO_FRAME_MS, frameSamplesAt } from './types.js';
import type { AudioDevice, AudioSampleRate, CaptureCallback } from './types.js';
import { readWav, WavWriter } from './wav.js';

export interface SimAudioOptions {
  sampleRate: AudioSampleRate;
  input?: string;
  output?: string;
  /** The frame clock (default: a new `RealtimeFrameClock`). */
  clock?: FrameClock;
}

/** Frames between writes of the output file. */
const FLUSH_FRAMES = 50;

export class SimAudioDevice implements AudioDevice {
  readonly sampleRate: AudioSampleRate;
  readonly frameSamples: number;
  readonly #clock: FrameClock;
  readonly #input: Int16Array | undefined;
  readonly #silence: Buffer;
  #writer: WavWriter | undefined;
  #started = false;
  #closed = false;
  #ticks = 0;
  #played = 0;

  constructor(options: SimAudioOptions) {
    this.sampleRate = checkSampleRate(options.sampleRate);
    this.frameSamples = frameSamplesAt(this.sampleRate);
    this.#silence = Buffer.alloc(this.frameSamples * 2);
    this.#clock = options.clock ?? new RealtimeFrameClock();
    this.#input = options.input !== undefined ? readWav(options.input, { sampleRate: this.sampleRate }).samples : undefined;
    if (options.output !== undefined) this.#writer = new WavWriter(options.output, this.sampleRate);
  }

  start(onCaptureFrame: CaptureCallback): void {
    if (this.#closed) throw new AudioError('ERR_AUDIO_STATE', 'sim audio: start after close');
    if (this.#started) throw new AudioError('ERR_AUDIO_STATE', 'sim audio: already started');
    this.#started = true;
    this.#clock.start(AUDIO_FRAME_MS, (time) => {
      const n = this.#ticks++;
      // The speaker was not fed for a frame period: it played silence.
      while (this.#played < n) this.#write(this.#silence);
      onCaptureFrame(this.#micFrame(n), time);
      if (this.#writer && n % FLUSH_FRAMES === FLUSH_FRAMES - 1) this.#writer.flush();
    });
  }

  play(pcm: Buffer): void {
    if (this.#closed) return;
    checkFrame('sim audio', pcm, this.frameSamples);
    this.#write(pcm);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.stop();
    this.#writer?.close();
    this.#writer = undefined;
  }

  #write(pcm: Buffer): void {
    this.#played++;
    this.#writer?.append(pcm);
  }

  #micFrame(n: number): Buffer {
    const input = this.#input;
    const from = n * this.frameSamples;
    if (!input || from >= input.length) return this.#silence;
    const frame = Buffer.alloc(this.frameSamples * 2);
    const to = Math.min(input.length, from + this.frameSamples);
    for (let i = from; i < to; i++) frame.writeInt16LE(input[i]!, (i - from) * 2);
    return frame;
  }
}

export function checkSampleRate(rate: unknown): AudioSampleRate {
  if (rate !== 16000 && rate !== 48000) throw new AudioError('ERR_AUDIO_OPTIONS', `audio sampleRate ${String(rate)}, expected 16000 or 48000`);
  return rate;
}

export function checkFrame(what: string, pcm: unknown, frameSamples: number): void {
  if (!Buffer.isBuffer(pcm) || pcm.length !== frameSamples * 2) {
    const got = Buffer.isBuffer(pcm) ? `${pcm.length} bytes` : typeof pcm;
    throw new AudioError('ERR_AUDIO_FRAME', `${what}: played frame of ${got}, expected ${frameSamples * 2} bytes (${frameSamples} samples of S16LE)`);
  }
}
