/**
 * naudiodon (PortAudio) for the `alsa` driver: loading the native module,
 * and finding an ALSA device by name in PortAudio's device list.
 *
 * The module is loaded on first use, never at import, so the sim and echo
 * drivers (and every test that uses them) work where naudiodon does not. A
 * module that cannot load — not built (npm skipped its install script:
 * `allowScripts`), built against a PortAudio of the wrong architecture
 * (arm64 before `scripts/naudiodon-arm64.mjs`), or a missing `libasound2`
 * — is an `ERR_AUDIO_UNAVAILABLE` naming the cause.
 *
 * Device names: PortAudio's ALSA host API lists the PCMs the ALSA
 * configuration defines by their names (`default`, `pulse`, a `pcm.NAME`
 * from `~/.asoundrc` or `ALSA_CONFIG_PATH`) and each card's devices as
 * `CARD NAME: DEVICE NAME (hw:C,D)`. `resolveAlsaDevice` takes the
 * configured name as ALSA spells it: an exact PortAudio name, or
 * `hw:C,D` / `plughw:C,D` (`,D` defaults to 0) matched by the `(hw:C,D)`
 * suffix. PortAudio opens a card's device as `hw:` unless the environment
 * has `PA_ALSA_PLUGHW=1`, which makes it open `plughw:` (ALSA converts rate
 * and format); `loadPortAudio` sets that for `plughw:` names before the
 * device list is built.
 */
import { createRequire } from 'node:module';
import { AudioError } from './errors.js';

export interface PortAudioDeviceInfo {
  readonly id: number;
  readonly name: string;
  readonly maxInputChannels: number;
  readonly maxOutputChannels: number;
  readonly defaultSampleRate: number;
  readonly hostAPIName: string;
}

/** What naudiodon's `AudioIO` takes for one direction. */
export interface PortAudioStreamOptions {
  deviceId: number;
  sampleRate: number;
  channelCount: number;
  sampleFormat: 16;
  /** Frames per PortAudio callback. */
  framesPerBuffer: number;
  /** Chunks the native queue holds between PortAudio's thread and JavaScript. */
  maxQueue: number;
  /** Bytes per read (input) or buffered before `write` returns false (output). */
  highwaterMark: number;
  /** Report under/overruns as stream errors (else naudiodon only prints them). */
  closeOnError: boolean;
}

/** The subset of naudiodon's stream the driver uses (a Node stream plus start/quit). */
export interface PortAudioStream {
  start(): void;
  /** Stop after what is queued has played (output) and release the device. */
  quit(callback?: () => void): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error', listener: (err: unknown) => void): this;
  on(event: 'drain' | 'end' | 'close', listener: () => void): this;
  removeAllListeners(): this;
  /** Output streams: false when the caller should wait for `drain`. */
  write?(chunk: Buffer): boolean;
}

export interface PortAudioModule {
  getDevices(): PortAudioDeviceInfo[];
  AudioIO(options: { inOptions: PortAudioStreamOptions } | { outOptions: PortAudioStreamOptions }): PortAudioStream;
}

let cached: PortAudioModule | undefined;

/**
 * Load naudiodon (once). For a `plughw:` device name, set `PA_ALSA_PLUGHW=1`
 * first so PortAudio opens cards through ALSA's plug layer.
 */
export function loadPortAudio(deviceName?: string): PortAudioModule {
  if (deviceName !== undefined && /^plughw:/.test(deviceName) && process.env['PA_ALSA_PLUGHW'] === undefined) {
    process.env['PA_ALSA_PLUGHW'] = '1';
  }
  if (cached) return cached;
  try {
    const require = createRequire(import.meta.url);
    cached = require('naudiodon') as PortAudioModule;
    return cached;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new AudioError(
      'ERR_AUDIO_UNAVAILABLE',
      `alsa audio: naudiodon (PortAudio) cannot load: ${reason}. ` +
        `Check that npm ran its install script (package.json allowScripts), that libasound2 is installed, ` +
        `and on arm64 that scripts/naudiodon-arm64.mjs relinked it against Debian's libportaudio2 (hal/README.md)`,
      { cause: err },
    );
  }
}

const HW = /^(?:plug)?hw:(\d+)(?:,(\d+))?$/;

/** The names a device list offers, for error messages. */
function offered(devices: readonly PortAudioDeviceInfo[]): string {
  return devices.length === 0 ? 'none' : devices.map((d) => JSON.stringify(d.name)).join(', ');
}

/**
 * The PortAudio device for an ALSA device name; it must both capture and
 * play (a handset does both). Throws `ERR_AUDIO_DEVICE` naming what exists.
 */
export function resolveAlsaDevice(name: string, devices: readonly PortAudioDeviceInfo[]): PortAudioDeviceInfo {
  const alsa = devices.filter((d) => d.hostAPIName === 'ALSA');
  let found = alsa.find((d) => d.name === name);
  const hw = HW.exec(name);
  if (!found && hw) {
    const suffix = `(hw:${hw[1]},${hw[2] ?? '0'})`;
    found = alsa.find((d) => d.name.endsWith(suffix));
  }
  if (!found) {
    throw new AudioError('ERR_AUDIO_DEVICE', `alsa audio: no ALSA device ${JSON.stringify(name)}; PortAudio offers ${offered(alsa)}`);
  }
  if (found.maxInputChannels < 1 || found.maxOutputChannels < 1) {
    throw new AudioError(
      'ERR_AUDIO_DEVICE',
      `alsa audio: device ${JSON.stringify(name)} (${found.name}) has ${found.maxInputChannels} capture and ${found.maxOutputChannels} playback channels, expected at least 1 of each`,
    );
  }
  return found;
}
