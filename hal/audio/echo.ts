/**
 * The sound-test driver (`driver: echo`): what is played to the speaker
 * comes back as the microphone `delayMs` later (default 1000 ms, in whole
 * 20 ms frames). An "echo" service account runs a media engine on it: the
 * caller hears their own voice a second after speaking, through the whole
 * path (network, jitter buffer, codec both ways).
 *
 * Frames are kept by the capture tick they were played in: the microphone
 * at tick n is what was played at tick n − delay, silence when nothing was.
 */
import { AudioError } from './errors.js';
import { RealtimeFrameClock } from './clock.js';
import type { FrameClock } from './clock.js';
import { checkFrame, checkSampleRate } from './sim.js';
import { AUDIO_FRAME_MS, frameSamplesAt } from './types.js';
import type { AudioDevice, AudioSampleRate, CaptureCallback } from './types.js';

export const DEFAULT_ECHO_DELAY_MS = 1000;
const MAX_ECHO_DELAY_MS = 10_000;

export interface EchoAudioOptions {
  sampleRate: AudioSampleRate;
  delayMs?: number;
  clock?: FrameClock;
}

export class EchoAudioDevice implements AudioDevice {
  readonly sampleRate: AudioSampleRate;
  readonly frameSamples: number;
  readonly delayFrames: number;
  readonly #clock: FrameClock;
  readonly #silence: Buffer;
  readonly #played = new Map<number, Buffer>();
  #tick = 0;
  #lastPlayed = -1;
  #started = false;
  #closed = false;

  constructor(options: EchoAudioOptions) {
    this.sampleRate = checkSampleRate(options.sampleRate);
    this.frameSamples = frameSamplesAt(this.sampleRate);
    const delayMs = options.delayMs ?? DEFAULT_ECHO_DELAY_MS;
    if (!Number.isFinite(delayMs) || delayMs < AUDIO_FRAME_MS || delayMs > MAX_ECHO_DELAY_MS) {
      throw new AudioError('ERR_AUDIO_OPTIONS', `echo audio: delayMs ${delayMs}, expected ${AUDIO_FRAME_MS}–${MAX_ECHO_DELAY_MS}`);
    }
    this.delayFrames = Math.round(delayMs / AUDIO_FRAME_MS);
    this.#silence = Buffer.alloc(this.frameSamples * 2);
    this.#clock = options.clock ?? new RealtimeFrameClock();
  }

  start(onCaptureFrame: CaptureCallback): void {
    if (this.#closed) throw new AudioError('ERR_AUDIO_STATE', 'echo audio: start after close');
    if (this.#started) throw new AudioError('ERR_AUDIO_STATE', 'echo audio: already started');
    this.#started = true;
    this.#clock.start(AUDIO_FRAME_MS, (time) => {
      const n = this.#tick++;
      const source = n - this.delayFrames;
      const mic = this.#played.get(source) ?? this.#silence;
      this.#played.delete(source);
      onCaptureFrame(mic, time);
    });
  }

  play(pcm: Buffer): void {
    if (this.#closed) return;
    checkFrame('echo audio', pcm, this.frameSamples);
    // The frame belongs to the tick being handled (the last one captured), or the next free one.
    const slot = Math.max(this.#tick - 1, this.#lastPlayed + 1);
    this.#lastPlayed = slot;
    this.#played.set(slot, Buffer.from(pcm));
    // A speaker running ahead of the clock must not grow the map without end.
    if (this.#played.size > 2 * this.delayFrames + 50) {
      const oldest = this.#played.keys().next().value;
      if (oldest !== undefined) this.#played.delete(oldest);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.stop();
    this.#played.clear();
  }
}
