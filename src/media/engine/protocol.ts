/**
 * Messages between `MediaEngine` (main thread) and its worker. Packets
 * travel as ArrayBuffers of their own, transferred, not copied again;
 * Buffers in parameters arrive as Uint8Arrays (structured clone).
 */
import type { AudioSpec } from '../../../hal/audio/types.js';
import type { DtmfEvent, MediaStreamStats, StreamParams, TraceRecord } from './types.js';

export interface WorkerInit {
  audio: AudioSpec;
  trace: boolean;
}

export type ToWorker =
  | { type: 'add'; id: string; params: StreamParams }
  | { type: 'remove'; id: string }
  | { type: 'receive'; id: string; packet: ArrayBuffer }
  | { type: 'hold'; id: string; held: boolean }
  | { type: 'dtmf'; id: string; digits: string }
  | { type: 'mute'; muted: boolean }
  | { type: 'volume'; level: number }
  | { type: 'usage'; req: number }
  | { type: 'close'; req: number };

export interface WorkerErrorInfo {
  message: string;
  code?: string;
  /** What the worker was doing. */
  context: string;
  /** The stream concerned, if one. */
  streamId?: string;
}

export interface EngineUsage {
  /** ms the worker spent in ticks and received packets. */
  busyMs: number;
  ticks: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'failed'; error: WorkerErrorInfo }
  | { type: 'send'; id: string; packet: ArrayBuffer }
  | { type: 'stats'; id: string; stats: MediaStreamStats }
  | { type: 'removed'; id: string }
  | { type: 'dtmf'; event: DtmfEvent }
  | { type: 'trace'; record: TraceRecord }
  | { type: 'error'; error: WorkerErrorInfo }
  | { type: 'usage'; req: number; usage: EngineUsage }
  | { type: 'closed'; req: number };

/** The bytes of `packet` in an ArrayBuffer of their own, safe to transfer (a Buffer may sit in a shared pool). */
export function ownArrayBuffer(packet: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(packet.byteLength);
  new Uint8Array(ab).set(packet);
  return ab;
}

export function errorInfo(err: unknown, context: string, streamId?: string): WorkerErrorInfo {
  const info: WorkerErrorInfo = { message: err instanceof Error ? err.message : String(err), context };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') info.code = code;
  if (streamId !== undefined) info.streamId = streamId;
  return info;
}
