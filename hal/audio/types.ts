/**
 * The audio device of a desk phone, as the media engine sees it: 20 ms frames
 * of mono signed 16-bit little-endian PCM in both directions.
 *
 * The capture side drives the clock: `start(onCaptureFrame)` has the device
 * call back once per 20 ms with the frame just captured, and the engine does
 * all its per-frame work (jitter buffer, mixing, encoding, sending) in that
 * callback, handing the speaker its frame with `play` before returning. A
 * real sound card's capture and playback share one crystal, so one clock for
 * both keeps them from drifting apart.
 *
 * Drivers are chosen by name (`AudioSpec.driver`): `sim` (WAV files, paced
 * in real time), `echo` (a sound test: the speaker comes back as the
 * microphone after a delay) and `alsa` (the handset, issue 7).
 */

/** Sample rates of the device: wideband and fullband, the two Opus call rates. */
export type AudioSampleRate = 16000 | 48000;

/** Length of one frame. */
export const AUDIO_FRAME_MS = 20;

/** Called once per frame with the captured frame and the time it was captured (`performance.now()` timebase, ms). */
export type CaptureCallback = (pcm: Buffer, captureTimeMs: number) => void;

export interface AudioDevice {
  readonly sampleRate: AudioSampleRate;
  /** Samples in one 20 ms frame: 320 at 16 kHz, 960 at 48 kHz. */
  readonly frameSamples: number;
  /** Start capturing: `onCaptureFrame` runs every 20 ms until `close`. Throws `ERR_AUDIO_STATE` when started twice. */
  start(onCaptureFrame: CaptureCallback): void;
  /** Queue one frame (exactly `frameSamples` samples) for the speaker. */
  play(pcm: Buffer): void;
  /** Stop capturing and release the device (a WAV being written is complete afterwards). Harmless twice. */
  close(): Promise<void>;
}

/** The simulated device: a WAV file as the microphone, a WAV file as the speaker. */
export interface SimAudioSpec {
  driver: 'sim';
  sampleRate: AudioSampleRate;
  /** 16-bit mono WAV played as the microphone from the start, then silence; silence when unset. */
  input?: string;
  /** WAV file that receives everything played to the speaker (rewritten each time the device opens); discarded when unset. */
  output?: string;
}

/** The sound test: what the speaker plays comes back as the microphone `delayMs` later. */
export interface EchoAudioSpec {
  driver: 'echo';
  sampleRate: AudioSampleRate;
  /** Delay of the echo, ms (default 1000, rounded to whole frames). */
  delayMs?: number;
}

/** The handset's sound card through ALSA (issue 7). */
export interface AlsaAudioSpec {
  driver: 'alsa';
  sampleRate: AudioSampleRate;
  /** ALSA device name, e.g. `default` or `plughw:1,0`. */
  device: string;
}

export type AudioSpec = SimAudioSpec | EchoAudioSpec | AlsaAudioSpec;

/** Samples in one 20 ms frame at `sampleRate`. */
export function frameSamplesAt(sampleRate: AudioSampleRate): number {
  return (sampleRate * AUDIO_FRAME_MS) / 1000;
}
