/**
 * MediaCore: the media engine without the thread. It owns the audio device
 * and the streams (one per call leg: 1 for a call, up to 5 for a conference
 * this phone mixes), and does all the work of a 20 ms tick in the device's
 * capture callback:
 *
 * 1. each stream's jitter buffer gives one frame, decoded (or concealed, or
 *    silence);
 * 2. the speaker gets the sum of the streams not on hold (saturating int16);
 * 3. each stream is sent the microphone plus the other non-held streams'
 *    frames (mix-minus: nobody hears themselves); a held stream is sent
 *    silence, still 50 packets a second so NAT bindings and consent stay
 *    open, and is not mixed into anything.
 *
 * With one stream that is microphone → stream, stream → speaker.
 *
 * Device lifetime: the device opens when the first stream is added and
 * closes when the last one goes — a phone's handset audio lives for the
 * call, and the sim driver's output WAV then holds exactly one call.
 *
 * Time: `now()` (default `performance.now()`) stamps packet arrivals; the
 * device's tick times drive playout and sending; `wallOffsetMs` (default
 * `performance.timeOrigin`) turns both into wall-clock time for RTCP's NTP
 * timestamps and traces. Tests pass a fake clock and a manual frame clock.
 *
 * Failures: bad parameters throw from `addStream` (nothing is added);
 * anything a tick or a packet runs into is reported through `onError` and
 * never thrown into the device or the network code.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AudioDevice } from '../../../hal/audio/types.js';
import { MediaError } from '../errors.js';
import { MediaStream, toSamples } from './stream.js';
import { resolveStreamParams } from './types.js';
import type { DtmfEvent, MediaStreamStats, StreamParams, TraceRecord } from './types.js';

/** Streams one engine mixes at most (a 5-way conference hosted here). */
export const MAX_STREAMS = 5;
/** How often stats are pushed, ms. */
const STATS_INTERVAL_MS = 1000;

export interface MediaCoreOptions {
  /** Opens the audio device (called when the first stream is added). */
  openDevice: () => AudioDevice;
  /** Sends a protected packet (SRTP or SRTCP) of a stream to the network. */
  send: (streamId: string, packet: Buffer) => void;
  onDtmf?: (event: DtmfEvent) => void;
  onStats?: (streamId: string, stats: MediaStreamStats) => void;
  onError?: (err: unknown, context: string) => void;
  /** Per-frame capture/playout records (see `TraceRecord`); tracing is on when given. */
  onTrace?: (record: TraceRecord) => void;
  now?: () => number;
  wallOffsetMs?: number;
  random?: () => number;
}

export class MediaCore {
  #muted = false;
  /** Speaker gain from setVolume (1 = 0 dB). */
  #gain = 1;
  readonly #o: MediaCoreOptions;
  readonly #now: () => number;
  readonly #wallOffsetMs: number;
  readonly #random: () => number;
  readonly #cname = `partyline-${randomBytes(8).toString('hex')}`;
  readonly #streams = new Map<string, MediaStream>();
  #device: AudioDevice | undefined;
  #closing: Promise<void> = Promise.resolve();
  #lastTickMs: number | undefined;
  #nextStatsAt: number | undefined;
  #closed = false;
  /**
   * Time spent working, ms: ticks and received packets, measured with
   * `performance.now()` (the thread does not block in them, so this is its
   * CPU time; `process.cpuUsage` would count the whole process).
   */
  busyMs = 0;
  ticks = 0;

  constructor(options: MediaCoreOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#wallOffsetMs = options.wallOffsetMs ?? performance.timeOrigin;
    this.#random = options.random ?? Math.random;
  }

  get streamIds(): string[] {
    return [...this.#streams.keys()];
  }

  get deviceOpen(): boolean {
    return this.#device !== undefined;
  }

  /** Add a call leg. Throws `MediaError` (`ERR_MEDIA_STREAM`, `ERR_MEDIA_ENGINE_*`), or the device's error when it cannot open. */
  addStream(id: string, params: StreamParams): void {
    if (this.#closed) throw new MediaError('ERR_MEDIA_ENGINE_CLOSED', 'media engine: closed');
    if (typeof id !== 'string' || id.length === 0) throw new MediaError('ERR_MEDIA_STREAM', 'media stream id: expected a non-empty string');
    if (this.#streams.has(id)) throw new MediaError('ERR_MEDIA_ENGINE_STREAM_EXISTS', `media stream ${id}: already added`);
    if (this.#streams.size >= MAX_STREAMS) throw new MediaError('ERR_MEDIA_ENGINE_FULL', `media stream ${id}: ${MAX_STREAMS} streams already, the most one engine mixes`);
    const resolved = resolveStreamParams(params);
    const device = this.#device ?? this.#openDevice();
    const stream = new MediaStream(id, resolved, {
      id,
      deviceRate: device.sampleRate,
      wallOffsetMs: this.#wallOffsetMs,
      cname: this.#cname,
      random: this.#random,
      send: (packet) => this.#o.send(id, packet),
      onDtmf: (digit) => this.#o.onDtmf?.({ streamId: id, digit }),
      onTrace: this.#o.onTrace,
    });
    this.#streams.set(id, stream);
  }

  #openDevice(): AudioDevice {
    const device = this.#o.openDevice();
    this.#device = device;
    this.#lastTickMs = undefined;
    device.start((pcm, time) => this.#tick(device, pcm, time));
    return device;
  }

  /** Remove a call leg (a last RTCP report with BYE goes out); the device closes with the last one. */
  async removeStream(id: string): Promise<void> {
    const stream = this.#streams.get(id);
    if (!stream) return;
    this.#streams.delete(id);
    try {
      stream.sendBye(this.#lastTickMs ?? this.#now());
    } catch (err) {
      this.#o.onError?.(err, `stream ${id}: sending BYE`);
    }
    if (this.#streams.size === 0) await this.#closeDevice();
  }

  async #closeDevice(): Promise<void> {
    const device = this.#device;
    this.#device = undefined;
    if (device) this.#closing = device.close();
    await this.#closing;
  }

  /** A packet for stream `id` from the network; unknown streams' packets are dropped. Never throws. */
  receive(id: string, packet: Buffer): void {
    const stream = this.#streams.get(id);
    if (!stream) return;
    const start = performance.now();
    stream.receive(packet, this.#now());
    this.busyMs += performance.now() - start;
  }

  setHold(id: string, held: boolean): void {
    const stream = this.#get(id);
    if (stream.held === held) return;
    stream.setHold(held);
    this.#pushStats(stream);
  }

  /** Mute the microphone: every stream is sent silence from it (conference partners still hear each other). */
  setMute(muted: boolean): void {
    this.#muted = muted;
  }

  /**
   * Handset volume 0–10: the speaker gain, 5 = as received (0 dB), each step
   * ±3 dB, 0 = silent.
   */
  setVolume(level: number): void {
    if (!Number.isInteger(level) || level < 0 || level > 10) throw new MediaError('ERR_MEDIA_OPTIONS', `volume ${String(level)}: expected an integer 0..10`);
    this.#gain = level === 0 ? 0 : 10 ** ((3 * (level - 5)) / 20);
  }

  /** Queue DTMF digits (0-9 * # A-D) on a stream. Throws `ERR_MEDIA_DTMF` for other characters. */
  sendDtmf(id: string, digits: string): void {
    this.#get(id).sendDtmf(digits);
  }

  stats(id: string): MediaStreamStats | undefined {
    return this.#streams.get(id)?.stats(this.#lastTickMs ?? this.#now());
  }

  /** Remove every stream and close the device. Harmless twice. */
  async close(): Promise<void> {
    if (this.#closed) return this.#closing;
    this.#closed = true;
    for (const id of [...this.#streams.keys()]) await this.removeStream(id);
    await this.#closeDevice();
  }

  #get(id: string): MediaStream {
    const stream = this.#streams.get(id);
    if (!stream) throw new MediaError('ERR_MEDIA_ENGINE_NO_STREAM', `media stream ${id}: no such stream`);
    return stream;
  }

  #pushStats(stream: MediaStream): void {
    if (this.#o.onStats) this.#o.onStats(stream.id, stream.stats(this.#lastTickMs ?? this.#now()));
  }

  // ------------------------------------------------------------ the tick

  #tick(device: AudioDevice, micPcm: Buffer, timeMs: number): void {
    if (device !== this.#device) return;
    const start = performance.now();
    this.#lastTickMs = timeMs;
    const streams = [...this.#streams.values()];
    const n = device.frameSamples;
    const mic = micPcm.length === n * 2 && !this.#muted ? toSamples(micPcm) : new Int16Array(n);
    const decoded: Array<Int16Array | undefined> = [];
    for (const s of streams) {
      try {
        decoded.push(s.playFrame(timeMs));
      } catch (err) {
        decoded.push(undefined);
        this.#o.onError?.(err, `stream ${s.id}: playout`);
      }
    }
    // Speaker: every non-held stream.
    const sum = new Int32Array(n);
    streams.forEach((s, i) => {
      const frame = decoded[i];
      if (frame && !s.held) for (let k = 0; k < n; k++) sum[k]! += frame[k]!;
    });
    try {
      const gain = this.#gain;
      if (gain === 1) device.play(samplesToBuffer(saturate(sum)));
      else {
        const speaker = new Int32Array(n);
        for (let k = 0; k < n; k++) speaker[k] = Math.round(sum[k]! * gain);
        device.play(samplesToBuffer(saturate(speaker)));
      }
    } catch (err) {
      this.#o.onError?.(err, 'playing a frame');
    }
    // Each stream: the microphone plus everyone else (mix-minus).
    streams.forEach((s, i) => {
      try {
        let out: Int16Array;
        if (s.held) {
          out = new Int16Array(n);
        } else if (streams.length === 1) {
          out = mic;
        } else {
          const mix = new Int32Array(n);
          for (let k = 0; k < n; k++) mix[k] = sum[k]! + mic[k]!;
          const own = decoded[i];
          if (own) for (let k = 0; k < n; k++) mix[k]! -= own[k]!;
          out = saturate(mix);
        }
        s.sendFrame(out, timeMs);
      } catch (err) {
        this.#o.onError?.(err, `stream ${s.id}: sending`);
      }
    });
    if (this.#nextStatsAt === undefined || timeMs >= this.#nextStatsAt) {
      this.#nextStatsAt = timeMs + STATS_INTERVAL_MS;
      for (const s of streams) this.#pushStats(s);
    }
    this.busyMs += performance.now() - start;
    this.ticks++;
  }
}

/** int32 sums to int16 samples, clipped. */
function saturate(sum: Int32Array): Int16Array {
  const out = new Int16Array(sum.length);
  for (let k = 0; k < sum.length; k++) {
    const v = sum[k]!;
    out[k] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

/** Int16 samples as S16LE bytes (a view: the host is little-endian, as Node's targets here are). */
export function samplesToBuffer(samples: Int16Array): Buffer {
  return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
}
