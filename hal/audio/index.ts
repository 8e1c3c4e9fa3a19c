/**
 * The audio HAL: `openAudioDevice(spec)` picks the driver by name.
 *
 * - `sim`: WAV files in and out (`sim.ts`).
 * - `echo`: the sound test (`echo.ts`).
 * - `alsa`: the handset's sound card through naudiodon / PortAudio
 *   (`alsa.ts`), the device chosen by its ALSA name.
 */
import { AlsaAudioDevice } from './alsa.js';
import type { AudioLogger } from './alsa.js';
import { AudioError } from './errors.js';
import type { PortAudioModule } from './portaudio.js';
import { ManualFrameClock } from './clock.js';
import type { FrameClock } from './clock.js';
import { EchoAudioDevice } from './echo.js';
import { checkSampleRate, SimAudioDevice } from './sim.js';
import { readWav } from './wav.js';
import type { AudioDevice, AudioSpec } from './types.js';

export { AudioError } from './errors.js';
export type { AudioDevice, AudioSampleRate, AudioSpec, SimAudioSpec, EchoAudioSpec, AlsaAudioSpec, CaptureCallback } from './types.js';
export { AUDIO_FRAME_MS, frameSamplesAt } from './types.js';
export { ManualFrameClock, RealtimeFrameClock } from './clock.js';
export type { FrameClock } from './clock.js';
export { AlsaAudioDevice } from './alsa.js';
export type { AlsaAudioOptions, AlsaAudioStats, AudioLogger } from './alsa.js';
export { loadPortAudio, resolveAlsaDevice } from './portaudio.js';
export type { PortAudioDeviceInfo, PortAudioModule } from './portaudio.js';

export interface OpenAudioOptions {
  /** Frame clock for the simulated drivers (default: real time). */
  clock?: FrameClock;
  /** Logger for the alsa driver's recoveries (xruns, stalls, reopen failures). */
  log?: AudioLogger;
  /** naudiodon stand-in for the alsa driver (tests). */
  portAudio?: PortAudioModule;
}

/**
 * Open the device a spec names. Throws `AudioError` (`ERR_AUDIO_DRIVER`,
 * `ERR_AUDIO_OPTIONS`, WAV errors for `sim`; for `alsa`
 * `ERR_AUDIO_UNAVAILABLE` when naudiodon cannot load and `ERR_AUDIO_DEVICE`
 * when no such ALSA device exists — the streams open at `start`, which
 * throws `ERR_AUDIO_OPEN` when PortAudio refuses them).
 */
export function openAudioDevice(spec: AudioSpec, options: OpenAudioOptions = {}): AudioDevice {
  const driver = (spec as { driver?: unknown }).driver;
  switch (spec.driver) {
    case 'sim':
      return new SimAudioDevice({ sampleRate: spec.sampleRate, input: spec.input, output: spec.output, clock: options.clock });
    case 'echo':
      return new EchoAudioDevice({ sampleRate: spec.sampleRate, delayMs: spec.delayMs, clock: options.clock });
    case 'alsa':
      return new AlsaAudioDevice({ sampleRate: spec.sampleRate, device: spec.device, log: options.log, portAudio: options.portAudio });
    default:
      throw new AudioError('ERR_AUDIO_DRIVER', `audio driver ${JSON.stringify(driver)}: unknown, expected "sim", "echo" or "alsa"`);
  }
}

/**
 * Check a spec without opening anything (nothing is created or rewritten):
 * the driver exists here, the rate and options are in range, the sim input
 * file is a WAV we can play. Throws what `openAudioDevice` would.
 */
export function checkAudioSpec(spec: AudioSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new AudioError('ERR_AUDIO_OPTIONS', `audio spec: ${String(spec)}, expected an object with a driver`);
  switch (spec.driver) {
    case 'sim':
      checkSampleRate(spec.sampleRate);
      if (spec.input !== undefined) readWav(spec.input, { sampleRate: spec.sampleRate });
      if (spec.output !== undefined && (typeof spec.output !== 'string' || spec.output.length === 0)) throw new AudioError('ERR_AUDIO_OPTIONS', 'sim audio output: expected a file path');
      return;
    case 'echo':
      // The constructor checks everything and opens nothing until start().
      new EchoAudioDevice({ sampleRate: spec.sampleRate, delayMs: spec.delayMs, clock: new ManualFrameClock() });
      return;
    case 'alsa':
      // Loads naudiodon and looks the name up in PortAudio's list; opens nothing.
      new AlsaAudioDevice({ sampleRate: spec.sampleRate, device: spec.device });
      return;
    default:
      openAudioDevice(spec); // throws: unknown driver
  }
}
