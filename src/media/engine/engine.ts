/**
 * MediaEngine: the media engine as the call layer sees it, on the main
 * thread. It starts a worker thread (worker.ts) that owns the audio device
 * and a `MediaCore`, and proxies to it: packets from the network go in with
 * `receive`, protected packets come out through each stream's `send`
 * callback, and the worker pushes statistics (about once a second and on
 * change), DTMF and traces back as events.
 *
 *   const engine = await MediaEngine.start({ audio: { driver: 'sim', sampleRate: 16000 } });
 *   engine.addStream(legId, params, (packet) => path.send(packet));
 *   path.on('media', (packet) => engine.receive(legId, packet));
 *   engine.on('dtmf', ({ streamId, digit }) => …);
 *   …
 *   await engine.close();
 *
 * The audio device opens when the first stream is added and closes when
 * the last is removed (see core.ts): with the sim driver, the output WAV
 * holds the audio of that call, complete once the last stream is removed
 * or the engine closed.
 *
 * Events: `dtmf` (DtmfEvent), `stats` (streamId, MediaStreamStats),
 * `trace` (TraceRecord, when started with `trace: true`), `error` (an
 * Error with a `code` and the `context` it happened in; emitted only when
 * someone listens, always logged).
 *
 * The worker runs compiled JavaScript: `worker.js` beside this file. Under
 * vitest this file is the TypeScript source, which Node 20 cannot run in a
 * worker, so the compiled `dist/src/media/engine/worker.js` is used, and a
 * clear error says to run `npm run build` when it is missing.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { AudioSpec } from '../../../hal/audio/types.js';
import { PartylineError } from '../../errors.js';
import { checkDtmfDigits } from '../dtmf.js';
import { MediaError } from '../errors.js';
import { MAX_STREAMS } from './core.js';
import { ownArrayBuffer } from './protocol.js';
import type { EngineUsage, FromWorker, ToWorker, WorkerErrorInfo, WorkerInit } from './protocol.js';
import { resolveStreamParams } from './types.js';
import type { DtmfEvent, MediaStreamStats, StreamParams, TraceRecord } from './types.js';

export type { AudioSpec } from '../../../hal/audio/types.js';
export type { CodecParams, DtmfEvent, MediaStreamStats, SrtpKeyMaterial, StreamParams, TraceRecord } from './types.js';
export { DEFAULT_DTMF_PAYLOAD_TYPE, DEFAULT_OPUS_PAYLOAD_TYPE, makeSrtpKeyMaterial } from './types.js';
export type { EngineUsage } from './protocol.js';

export interface MediaEngineOptions {
  audio: AudioSpec;
  /** Emit `trace` events: per-frame capture and playout times (benchmarks). */
  trace?: boolean;
  log?: Logger;
}

/** An error the worker reported: its code (ERR_AUDIO_*, ERR_MEDIA_*, ERR_OPUS_* …) and what it was doing. */
export class MediaEngineError extends PartylineError {
  readonly context: string;
  readonly streamId: string | undefined;

  constructor(info: WorkerErrorInfo) {
    super(info.code ?? 'ERR_MEDIA_ENGINE', `media engine, ${info.context}: ${info.message}`);
    this.context = info.context;
    this.streamId = info.streamId;
  }
}

const CLOSE_TIMEOUT_MS = 5000;

interface StreamEntry {
  send: (packet: Buffer) => void;
  stats?: MediaStreamStats;
  removing: boolean;
}

/** Where the compiled worker is. */
export function workerUrl(here: string = import.meta.url): URL {
  if (!here.endsWith('.ts')) return new URL('./worker.js', here);
  const compiled = new URL('../../../dist/src/media/engine/worker.js', here);
  if (!existsSync(fileURLToPath(compiled))) {
    throw new MediaError(
      'ERR_MEDIA_ENGINE_WORKER',
      `media engine worker ${fileURLToPath(compiled)} is missing: run \`npm run build\` first (the worker runs the compiled JavaScript; Node 20 cannot run a TypeScript worker)`,
    );
  }
  return compiled;
}

export class MediaEngine extends EventEmitter {
  readonly #worker: Worker;
  readonly #log: Logger | undefined;
  readonly #streams = new Map<string, StreamEntry>();
  readonly #pending = new Map<number, (message: FromWorker) => void>();
  #nextReq = 1;
  #alive = true;
  #closing: Promise<void> | undefined;

  private constructor(worker: Worker, log: Logger | undefined) {
    super();
    this.#worker = worker;
    this.#log = log;
    worker.on('message', (m: FromWorker) => this.#onMessage(m));
    worker.on('error', (err) => {
      this.#log?.error({ err: err.message }, 'media engine worker failed');
      this.#report({ message: err.message, context: 'worker thread' });
    });
    worker.on('exit', (code) => {
      this.#alive = false;
      if (!this.#closing) this.#log?.error({ code }, 'media engine worker exited');
      for (const resolve of this.#pending.values()) resolve({ type: 'closed', req: 0 });
      this.#pending.clear();
    });
  }

  override on(event: 'dtmf', listener: (event: DtmfEvent) => void): this;
  override on(event: 'stats', listener: (streamId: string, stats: MediaStreamStats) => void): this;
  override on(event: 'trace', listener: (record: TraceRecord) => void): this;
  override on(event: 'error', listener: (err: MediaEngineError) => void): this;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter's own signature
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  /** Start the worker. Rejects when the audio spec is unusable (unknown driver, alsa before issue 7, unreadable input WAV) or the worker cannot start. */
  static async start(options: MediaEngineOptions): Promise<MediaEngine> {
    const init: WorkerInit = { audio: options.audio, trace: options.trace ?? false };
    // A small young generation keeps the worker's RSS down (it allocates little: packets and frames);
    // the old-generation cap keeps a runaway worker from taking the phone's memory.
    const worker = new Worker(workerUrl(), { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 } });
    const first = await new Promise<FromWorker | Error>((resolve) => {
      const onMessage = (m: FromWorker): void => {
        if (m.type !== 'ready' && m.type !== 'failed') return;
        cleanup();
        resolve(m);
      };
      const onError = (err: Error): void => {
        cleanup();
        resolve(err);
      };
      const onExit = (code: number): void => {
        cleanup();
        resolve(new Error(`worker exited with code ${code} before it was ready`));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    if (first instanceof Error || first.type === 'failed') {
      await worker.terminate();
      if (first instanceof Error) throw new MediaError('ERR_MEDIA_ENGINE_START', `media engine: ${first.message}`, { cause: first });
      throw new MediaEngineError(first.type === 'failed' ? first.error : { message: 'unexpected message', context: 'starting' });
    }
    options.log?.debug({ driver: options.audio.driver, sampleRate: options.audio.sampleRate }, 'media engine started');
    return new MediaEngine(worker, options.log);
  }

  /**
   * Add a call leg. Parameters are checked here (throws `MediaError`
   * `ERR_MEDIA_STREAM`, `ERR_MEDIA_ENGINE_*`); the device opens in the
   * worker, and if that fails the stream is gone again and an `error` event
   * says why. `send` is how the stream's SRTP/SRTCP packets leave.
   */
  addStream(id: string, params: StreamParams, send: (packet: Buffer) => void): void {
    this.#checkOpen();
    if (typeof id !== 'string' || id.length === 0) throw new MediaError('ERR_MEDIA_STREAM', 'media stream id: expected a non-empty string');
    if (this.#streams.has(id)) throw new MediaError('ERR_MEDIA_ENGINE_STREAM_EXISTS', `media stream ${id}: already added`);
    if (this.#streams.size >= MAX_STREAMS) throw new MediaError('ERR_MEDIA_ENGINE_FULL', `media stream ${id}: ${MAX_STREAMS} streams already, the most one engine mixes`);
    if (typeof send !== 'function') throw new MediaError('ERR_MEDIA_STREAM', `media stream ${id}: send must be a function`);
    const resolved = resolveStreamParams(params);
    this.#streams.set(id, { send, removing: false });
    this.#post({ type: 'add', id, params: resolved });
  }

  /** A packet from the network for stream `id` (SRTP or SRTCP). Unknown streams' packets are dropped. */
  receive(id: string, packet: Buffer): void {
    if (!this.#alive || this.#closing || !this.#streams.has(id)) return;
    const ab = ownArrayBuffer(packet);
    this.#post({ type: 'receive', id, packet: ab }, [ab]);
  }

  /** Hold (send silence, mix nothing of it) or resume a stream. */
  setHold(id: string, held: boolean): void {
    this.#stream(id);
    this.#post({ type: 'hold', id, held: held === true });
  }

  /** Send DTMF digits (0-9 * # A-D) on a stream; throws `ERR_MEDIA_DTMF` for others. */
  sendDtmf(id: string, digits: string): void {
    this.#stream(id);
    this.#post({ type: 'dtmf', id, digits: checkDtmfDigits(digits) });
  }

  /** Mute or unmute the microphone (every stream gets silence from it). */
  setMute(muted: boolean): void {
    this.#checkOpen();
    this.#post({ type: 'mute', muted: muted === true });
  }

  /** Handset volume 0–10 (5 = 0 dB, ±3 dB a step, 0 = silent); throws `ERR_MEDIA_OPTIONS` otherwise. */
  setVolume(level: number): void {
    this.#checkOpen();
    if (!Number.isInteger(level) || level < 0 || level > 10) throw new MediaError('ERR_MEDIA_OPTIONS', `volume ${String(level)}: expected an integer 0..10`);
    this.#post({ type: 'volume', level });
  }

  /** Remove a stream (a last RTCP BYE still goes out through its `send`). Unknown ids are ignored. */
  removeStream(id: string): void {
    const entry = this.#streams.get(id);
    if (!entry || entry.removing) return;
    entry.removing = true;
    if (!this.#alive) {
      this.#streams.delete(id);
      return;
    }
    this.#post({ type: 'remove', id });
  }

  /** The latest statistics the worker pushed for a stream (about once a second), undefined before the first or once it is gone. */
  stats(id: string): MediaStreamStats | undefined {
    return this.#streams.get(id)?.stats;
  }

  /** Work done in the worker so far, and its event loop utilisation (for benchmarks). */
  async usage(): Promise<EngineUsage & { eventLoopUtilization: number }> {
    this.#checkOpen();
    const req = this.#nextReq++;
    const reply = await new Promise<FromWorker>((resolve) => {
      this.#pending.set(req, resolve);
      this.#post({ type: 'usage', req });
    });
    const usage = reply.type === 'usage' ? reply.usage : { busyMs: 0, ticks: 0 };
    return { ...usage, eventLoopUtilization: this.#worker.performance.eventLoopUtilization().utilization };
  }

  /** Remove every stream, close the device (the sim output WAV is complete after this) and stop the worker. Harmless twice. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#alive) {
      const req = this.#nextReq++;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#log?.warn('media engine worker did not close in time');
          resolve();
        }, CLOSE_TIMEOUT_MS);
        this.#pending.set(req, () => {
          clearTimeout(timer);
          resolve();
        });
        this.#post({ type: 'close', req });
      });
    }
    this.#streams.clear();
    await this.#worker.terminate();
    this.#alive = false;
  }

  #checkOpen(): void {
    if (!this.#alive || this.#closing) throw new MediaError('ERR_MEDIA_ENGINE_CLOSED', 'media engine: closed');
  }

  #stream(id: string): StreamEntry {
    this.#checkOpen();
    const entry = this.#streams.get(id);
    if (!entry || entry.removing) throw new MediaError('ERR_MEDIA_ENGINE_NO_STREAM', `media stream ${id}: no such stream`);
    return entry;
  }

  #post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    if (this.#alive) this.#worker.postMessage(message, transfer);
  }

  #onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'send': {
        const entry = this.#streams.get(m.id);
        if (!entry) return;
        try {
          entry.send(Buffer.from(m.packet));
        } catch (err) {
          this.#report({ message: err instanceof Error ? err.message : String(err), context: 'sending a packet', streamId: m.id });
        }
        return;
      }
      case 'stats': {
        const entry = this.#streams.get(m.id);
        if (entry) entry.stats = m.stats;
        this.#safeEmit('stats', m.id, m.stats);
        return;
      }
      case 'removed':
        this.#streams.delete(m.id);
        return;
      case 'dtmf':
        this.#log?.debug({ streamId: m.event.streamId, digit: m.event.digit }, 'DTMF received');
        this.#safeEmit('dtmf', m.event);
        return;
      case 'trace':
        this.#safeEmit('trace', m.record);
        return;
      case 'error':
        this.#report(m.error);
        return;
      case 'usage':
      case 'closed': {
        const resolve = this.#pending.get(m.req);
        this.#pending.delete(m.req);
        resolve?.(m);
        return;
      }
      default:
        return;
    }
  }

  #report(info: WorkerErrorInfo): void {
    const err = new MediaEngineError(info);
    this.#log?.warn({ code: err.code, context: info.context, streamId: info.streamId, err: info.message }, 'media engine error');
    if (this.listenerCount('error') > 0) this.#safeEmit('error', err);
  }

  /** One failing listener must not break the engine (STYLE.md: extensions on an event bus). */
  #safeEmit(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.#log?.error({ event, err: err instanceof Error ? err.message : String(err) }, 'media engine listener failed');
    }
  }
}
