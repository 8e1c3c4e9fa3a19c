/**
 * The handset's sound card (`driver: alsa`) through naudiodon (PortAudio's
 * ALSA host API): 20 ms mono S16LE frames at 16 or 48 kHz, capture driving
 * the frame callback as the `AudioDevice` contract says.
 *
 * - Two PortAudio streams on the one device, capture and playback, so a
 *   speaker with nothing to play never holds up the microphone (naudiodon's
 *   callback waits for data, and a duplex stream would stall both ways).
 * - Capture: reads of exactly one frame (`highwaterMark`); each frame runs
 *   the callback, which hands the speaker its frame with `play`.
 * - Playback follows the capture clock: a capture period in which nothing
 *   was played puts a frame of silence on the speaker (counted from the
 *   start, as the sim driver does), so the card never runs dry while the
 *   engine is quiet (gaps become silence), and the
 *   stream starts `primeFrames` of silence ahead to absorb jitter. Frames
 *   are written one at a time, honouring the stream's backpressure
 *   (`write` false → wait for `drain`); past `playoutFrames` queued, the
 *   oldest are dropped (counted) rather than let the delay grow.
 * - Recovery: an under/overrun (PortAudio's status flags, reported as a
 *   stream error with `closeOnError`) or any stream error counts an xrun and
 *   reopens that stream; capture that stops for `stallMs` (a stalled
 *   stream, an unplugged card) reopens both. An open that fails (the card is
 *   gone) is retried with back-off up to 2 s until `close`; the device name
 *   is looked up again each time, since a replugged USB card may get another
 *   index. Frames not captured while a stream is down are not invented: the
 *   callback resumes with the next real frame.
 *
 * naudiodon prints a few lines to stdout when a stream opens (PortAudio's
 * version and the stream options) and logs stream errors to stderr; those
 * are its own, not ours.
 */
import { performance } from 'node:perf_hooks';
import { AudioError } from './errors.js';
import { loadPortAudio, resolveAlsaDevice } from './portaudio.js';
import type { PortAudioModule, PortAudioStream, PortAudioStreamOptions } from './portaudio.js';
import { checkFrame, checkSampleRate } from './sim.js';
import { frameSamplesAt } from './types.js';
import type { AudioDevice, AudioSampleRate, CaptureCallback } from './types.js';

/** The logging the driver needs (a pino logger fits). */
export interface AudioLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface AlsaAudioOptions {
  sampleRate: AudioSampleRate;
  /** ALSA device name: `default`, `plughw:1,0`, a PCM from the ALSA configuration. */
  device: string;
  /** naudiodon, or a stand-in (default: `loadPortAudio(device)`). */
  portAudio?: PortAudioModule;
  /** Capture silent this long means the stream stalled: reopen (default 500 ms). */
  stallMs?: number;
  /** Frames of silence written ahead when playback opens (default 2). */
  primeFrames?: number;
  /** Frames that may wait for the speaker before the oldest are dropped (default 5). */
  playoutFrames?: number;
  log?: AudioLogger;
}

export interface AlsaAudioStats {
  /** Frames handed to the capture callback. */
  capturedFrames: number;
  /** Frames written to the playback stream (played and silence). */
  writtenFrames: number;
  /** Frames of silence written for capture periods with nothing played, and priming. */
  silenceFrames: number;
  /** Played frames dropped because the speaker fell behind. */
  droppedFrames: number;
  /** Under/overruns and other stream errors. */
  xruns: number;
  /** Capture stalls detected. */
  stalls: number;
  /** Streams reopened (either direction). */
  reopens: number;
  lastError: string | undefined;
}

type Direction = 'capture' | 'playback';
const MAX_BACKOFF_MS = 2000;
const QUIT_TIMEOUT_MS = 1000;
const noLog: AudioLogger = { info: () => {}, warn: () => {} };

export class AlsaAudioDevice implements AudioDevice {
  readonly sampleRate: AudioSampleRate;
  readonly frameSamples: number;
  readonly device: string;
  readonly #frameBytes: number;
  readonly #pa: PortAudioModule;
  readonly #stallMs: number;
  readonly #primeFrames: number;
  readonly #playoutFrames: number;
  readonly #log: AudioLogger;
  readonly #silence: Buffer;
  readonly #stats: AlsaAudioStats = { capturedFrames: 0, writtenFrames: 0, silenceFrames: 0, droppedFrames: 0, xruns: 0, stalls: 0, reopens: 0, lastError: undefined };
  readonly #streams: Record<Direction, PortAudioStream | undefined> = { capture: undefined, playback: undefined };
  readonly #generation: Record<Direction, number> = { capture: 0, playback: 0 };
  readonly #retry: Record<Direction, NodeJS.Timeout | undefined> = { capture: undefined, playback: undefined };
  readonly #backoff: Record<Direction, number> = { capture: 0, playback: 0 };
  readonly #quitting = new Set<Promise<void>>();
  #onCapture: CaptureCallback | undefined;
  #pending: Buffer = Buffer.alloc(0);
  #queue: Buffer[] = [];
  #blocked = false;
  #blockedSince = 0;
  /** Capture periods so far, and frames put on the speaker's queue for them (played or silence). */
  #ticks = 0;
  #fed = 0;
  #lastCapture = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;

  /** Loads naudiodon and finds the device; opens nothing until `start`. Throws `ERR_AUDIO_OPTIONS`, `ERR_AUDIO_UNAVAILABLE`, `ERR_AUDIO_DEVICE`. */
  constructor(options: AlsaAudioOptions) {
    this.sampleRate = checkSampleRate(options.sampleRate);
    this.frameSamples = frameSamplesAt(this.sampleRate);
    this.#frameBytes = this.frameSamples * 2;
    if (typeof options.device !== 'string' || options.device.trim() === '') {
      throw new AudioError('ERR_AUDIO_OPTIONS', `alsa audio: device ${JSON.stringify(options.device)}, expected an ALSA device name such as "default" or "plughw:1,0"`);
    }
    this.device = options.device;
    this.#stallMs = positive('stallMs', options.stallMs ?? 500);
    this.#primeFrames = positive('primeFrames', options.primeFrames ?? 2, true);
    this.#playoutFrames = positive('playoutFrames', options.playoutFrames ?? 5);
    this.#log = options.log ?? noLog;
    this.#silence = Buffer.alloc(this.#frameBytes);
    this.#pa = options.portAudio ?? loadPortAudio(this.device);
    this.#deviceId(); // fail now on a name that does not exist
  }

  stats(): AlsaAudioStats {
    return { ...this.#stats };
  }

  start(onCaptureFrame: CaptureCallback): void {
    if (this.#closed) throw new AudioError('ERR_AUDIO_STATE', 'alsa audio: start after close');
    if (this.#onCapture) throw new AudioError('ERR_AUDIO_STATE', 'alsa audio: already started');
    this.#onCapture = onCaptureFrame;
    try {
      this.#open('playback');
      this.#open('capture');
    } catch (err) {
      this.#onCapture = undefined;
      this.#shutdown();
      throw err;
    }
    this.#lastCapture = performance.now();
    const every = Math.max(10, Math.floor(this.#stallMs / 4));
    this.#watchdog = setInterval(() => this.#checkStall(), every);
  }

  play(pcm: Buffer): void {
    if (this.#closed) return;
    checkFrame('alsa audio', pcm, this.frameSamples);
    this.#fed++;
    this.#queue.push(Buffer.from(pcm));
    this.#trim();
    this.#pump();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#shutdown();
    await Promise.all([...this.#quitting]);
  }

  #shutdown(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    for (const dir of ['capture', 'playback'] as const) {
      if (this.#retry[dir]) clearTimeout(this.#retry[dir]);
      this.#retry[dir] = undefined;
      this.#release(dir);
    }
    this.#queue = [];
  }

  #deviceId(): number {
    return resolveAlsaDevice(this.device, this.#pa.getDevices()).id;
  }

  #streamOptions(deviceId: number, maxQueue: number, highwaterMark: number): PortAudioStreamOptions {
    return { deviceId, sampleRate: this.sampleRate, channelCount: 1, sampleFormat: 16, framesPerBuffer: this.frameSamples, maxQueue, highwaterMark, closeOnError: true };
  }

  /** Open one direction now; throws `ERR_AUDIO_DEVICE` / `ERR_AUDIO_OPEN`. */
  #open(dir: Direction): void {
    const id = this.#deviceId();
    const generation = ++this.#generation[dir];
    let stream: PortAudioStream;
    try {
      stream =
        dir === 'capture'
          ? this.#pa.AudioIO({ inOptions: this.#streamOptions(id, 8, this.#frameBytes) })
          : this.#pa.AudioIO({ outOptions: this.#streamOptions(id, 2, 2 * this.#frameBytes) });
    } catch (err) {
      throw new AudioError('ERR_AUDIO_OPEN', `alsa audio: cannot open ${dir} on ${JSON.stringify(this.device)} at ${this.sampleRate} Hz: ${message(err)}`, { cause: err });
    }
    const current = (): boolean => generation === this.#generation[dir] && !this.#closed;
    stream.on('error', (err) => {
      if (current()) this.#failed(dir, err);
    });
    stream.on('end', () => {
      if (current()) this.#failed(dir, new Error('stream ended'));
    });
    if (dir === 'capture') {
      stream.on('data', (chunk) => {
        if (current()) this.#captured(chunk);
      });
    } else {
      stream.on('drain', () => {
        if (!current()) return;
        this.#blocked = false;
        this.#pump();
      });
    }
    this.#streams[dir] = stream;
    try {
      stream.start();
    } catch (err) {
      this.#release(dir);
      throw new AudioError('ERR_AUDIO_OPEN', `alsa audio: cannot start ${dir} on ${JSON.stringify(this.device)}: ${message(err)}`, { cause: err });
    }
    if (dir === 'capture') {
      this.#pending = Buffer.alloc(0);
    } else {
      this.#blocked = false;
      for (let i = 0; i < this.#primeFrames; i++) this.#queue.unshift(this.#silence);
      this.#stats.silenceFrames += this.#primeFrames;
      this.#pump();
    }
  }

  /** Stop listening to a stream and quit it in the background (bounded: a stalled one may never finish). */
  #release(dir: Direction): void {
    const stream = this.#streams[dir];
    this.#streams[dir] = undefined;
    this.#generation[dir]++;
    if (!stream) return;
    stream.removeAllListeners();
    stream.on('error', () => {}); // late errors of a stream being closed are expected
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
      try {
        const r = stream.quit(() => resolve());
        if (r instanceof Promise) r.catch((err: unknown) => this.#log.warn({ err: message(err), dir }, 'audio stream quit failed'));
      } catch (err) {
        this.#log.warn({ err: message(err), dir }, 'audio stream quit failed');
        resolve();
      }
    }).finally(() => {
      clearTimeout(timer);
      this.#quitting.delete(done);
    });
    this.#quitting.add(done);
  }

  #failed(dir: Direction, err: unknown): void {
    const text = message(err);
    this.#stats.xruns++;
    this.#stats.lastError = text;
    this.#log.warn({ device: this.device, dir, err: text }, 'audio xrun: reopening the stream');
    this.#reopen(dir);
  }

  #reopen(dir: Direction): void {
    this.#release(dir);
    if (this.#closed || this.#retry[dir]) return;
    const delay = this.#backoff[dir];
    this.#retry[dir] = setTimeout(() => {
      this.#retry[dir] = undefined;
      if (this.#closed) return;
      try {
        this.#open(dir);
        this.#stats.reopens++;
        this.#backoff[dir] = 0;
        if (dir === 'capture') this.#lastCapture = performance.now();
      } catch (err) {
        this.#stats.lastError = message(err);
        this.#backoff[dir] = Math.min(MAX_BACKOFF_MS, Math.max(50, 2 * this.#backoff[dir]));
        this.#log.warn({ device: this.device, dir, err: message(err), retryMs: this.#backoff[dir] }, 'audio device reopen failed');
        this.#reopen(dir);
      }
    }, delay);
  }

  #checkStall(): void {
    const now = performance.now();
    const captureStalled = this.#streams.capture !== undefined && now - this.#lastCapture > this.#stallMs;
    const playbackStalled = this.#streams.playback !== undefined && this.#blocked && now - this.#blockedSince > this.#stallMs;
    if (!captureStalled && !playbackStalled) return;
    this.#stats.stalls++;
    this.#stats.lastError = captureStalled ? `capture stalled for ${Math.round(now - this.#lastCapture)} ms` : 'playback stalled';
    this.#log.warn({ device: this.device, captureStalled, playbackStalled }, 'audio stream stalled: reopening');
    if (captureStalled) {
      this.#lastCapture = now; // one reopen per stall period
      this.#reopen('capture');
    }
    this.#reopen('playback');
  }

  #captured(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= this.#frameBytes) {
      const frame = this.#pending.subarray(0, this.#frameBytes);
      this.#pending = this.#pending.subarray(this.#frameBytes);
      this.#tick(frame);
      if (this.#closed) return;
    }
  }

  #tick(frame: Buffer): void {
    const onCapture = this.#onCapture;
    if (!onCapture) return;
    // A period in which nothing was played puts silence on the speaker (as the sim driver writes it).
    while (this.#fed < this.#ticks) {
      this.#fed++;
      this.#queue.push(this.#silence);
      this.#stats.silenceFrames++;
    }
    this.#ticks++;
    this.#lastCapture = performance.now();
    this.#stats.capturedFrames++;
    try {
      onCapture(frame, this.#lastCapture);
    } catch (err) {
      this.#log.warn({ err: message(err) }, 'audio capture callback failed');
    }
    this.#trim();
    this.#pump();
  }

  /** Past `playoutFrames` waiting, drop the oldest rather than let the delay grow. */
  #trim(): void {
    while (this.#queue.length > this.#playoutFrames) {
      this.#queue.shift();
      this.#stats.droppedFrames++;
    }
  }

  #pump(): void {
    const out = this.#streams.playback;
    if (!out?.write) return;
    while (!this.#blocked && this.#queue.length > 0) {
      const frame = this.#queue.shift()!;
      this.#stats.writtenFrames++;
      if (!out.write(frame)) {
        this.#blocked = true;
        this.#blockedSince = performance.now();
      }
    }
  }
}

function positive(what: string, value: number, zeroOk = false): number {
  if (!Number.isFinite(value) || value < 0 || (!zeroOk && value === 0)) {
    throw new AudioError('ERR_AUDIO_OPTIONS', `alsa audio: ${what} ${value}, expected a number ${zeroOk ? '≥' : '>'} 0`);
  }
  return value;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
