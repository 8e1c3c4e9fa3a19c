/**
 * What the media engine takes and gives, shared by the main-thread proxy
 * (`engine.ts`), the worker (`worker.ts`) and the core (`core.ts`).
 */
import { randomBytes } from 'node:crypto';
import { MediaError } from '../errors.js';
import { SRTP_PROFILES } from '../srtp.js';
import type { SrtpProfile } from '../srtp.js';

export type { AudioSpec } from '../../../hal/audio/types.js';

/** RTP payload types used unless the call negotiates others. */
export const DEFAULT_OPUS_PAYLOAD_TYPE = 111;
export const DEFAULT_DTMF_PAYLOAD_TYPE = 101;
/** Opus's RTP clock whatever the audio bandwidth (RFC 7587 §4.1); telephone events share it (see dtmf.ts). */
export const OPUS_RTP_CLOCK = 48000;
/** RTP timestamp units in one 20 ms frame. */
export const FRAME_TICKS = 960;

export interface CodecParams {
  /** Opus audio bandwidth: 16000 (wideband) or 48000 (fullband). Encoding converts the device's frames when it has the other rate. */
  sampleRate: 16000 | 48000;
  /** Opus target bitrate, bit/s (6000–510000). */
  bitrate: number;
  /** RTP payload type of Opus (default 111). */
  payloadType?: number;
  /** RTP payload type of telephone-event (default 101). */
  dtmfPayloadType?: number;
  /**
   * Adaptive in-band FEC (default true): switched on, with the loss to
   * expect, when the peer's RTCP reports more than 1 % loss, off again after
   * 10 s of reports without loss. false: never.
   */
  fec?: boolean;
  /** Opus DTX (default false): in silence, one packet per 400 ms instead of 50 per second. Held streams send every frame regardless. */
  dtx?: boolean;
}

export interface SrtpKeyMaterial {
  key: Buffer;
  salt: Buffer;
}

export interface StreamParams {
  codec: CodecParams;
  /** One SRTP profile for both directions; each side sends with its own master key and salt. */
  srtp: { profile: SrtpProfile; send: SrtpKeyMaterial; receive: SrtpKeyMaterial };
  /** Our SSRC on this stream. */
  ssrc: number;
}

/** `StreamParams` with the defaults filled in. */
export interface ResolvedStreamParams extends StreamParams {
  codec: Required<CodecParams>;
}

/** One stream's figures, pushed by the worker about once a second and on change. */
export interface MediaStreamStats {
  /** RTP packets sent (audio and telephone events). */
  packetsSent: number;
  /** RTP packets received that passed SRTP and decoding. */
  packetsReceived: number;
  /** RFC 3550 cumulative loss of the peer's stream. */
  packetsLost: number;
  /** RFC 3550 interarrival jitter, ms. */
  jitterMs: number;
  /** Round-trip time from the peer's last report about us (LSR/DLSR), ms; null until one came. */
  rttMs: number | null;
  /** E-model MOS estimate of what we hear (loss and lateness at the jitter buffer, half the RTT, buffer and codec delay); null before RTT is known or audio came. */
  mos: number | null;
  /** Loss of the peer's stream over the last report interval, percent. */
  lossPct: number;
  /** Bytes of SRTP/SRTCP sent and received (UDP payloads). */
  bytesSent: number;
  bytesReceived: number;
  /** SRTP and SRTCP packets sent and accepted (each one UDP datagram, or one relay.data message over TCP). */
  datagramsSent: number;
  datagramsReceived: number;
  /** The jitter buffer's target delay, ms. */
  jitterBufferMs: number;
  /** Whether our encoder's in-band FEC is on now. */
  fec: boolean;
  /** Our encoder's target bitrate, bit/s. */
  bitrate: number;
  /** SRTP/SRTCP we sent over the last second, bit/s of UDP payload. */
  sendBitrate: number;
  /** Wall-clock time (ms since the epoch) of the last packet accepted, null before any. */
  lastPacketAt: number | null;
  /** Packets dropped by SRTP: authentication failures and replays. */
  srtpRejected: number;
  /** Packets dropped as malformed (not RTP/RTCP, bad header, unknown payload type, undecodable). */
  malformed: number;
  /** Telephone events sent and received (digits). */
  dtmfSent: number;
  dtmfReceived: number;
  held: boolean;
}

/** A received DTMF digit. */
export interface DtmfEvent {
  streamId: string;
  digit: string;
}

/**
 * Per-frame timing, when tracing is on: `capture` when a frame is sent
 * (our SSRC), `playout` when a frame is handed to the speaker (the peer's
 * SSRC). `atMs` is wall-clock ms (performance.timeOrigin + the frame's
 * tick), so two engines' records compare: playout − capture of the same
 * (ssrc, timestamp) is the software mouth-to-ear delay.
 */
export interface TraceRecord {
  kind: 'capture' | 'playout';
  streamId: string;
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  atMs: number;
}

function fail(what: string, value: unknown, expected: string): never {
  throw new MediaError('ERR_MEDIA_STREAM', `media stream ${what}: ${typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value}, expected ${expected}`);
}

function int(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(what, value, `an integer ${min}..${max}`);
  return value;
}

function keyOf(what: string, value: unknown, length: number): Buffer {
  if (!(value instanceof Uint8Array)) fail(what, value, `${length} bytes`);
  if (value.length !== length) throw new MediaError('ERR_MEDIA_STREAM', `media stream ${what}: ${value.length} bytes, expected ${length}`);
  return Buffer.from(value);
}

/** Check stream parameters (wherever they came from) and fill in the defaults. Throws `MediaError` `ERR_MEDIA_STREAM`. Keys are copied, never shown. */
export function resolveStreamParams(params: StreamParams): ResolvedStreamParams {
  const c = params?.codec;
  if (typeof c !== 'object' || c === null) fail('codec', c, 'an object');
  if (c.sampleRate !== 16000 && c.sampleRate !== 48000) fail('codec.sampleRate', c.sampleRate, '16000 or 48000');
  const bitrate = int('codec.bitrate', c.bitrate, 6000, 510000);
  const payloadType = int('codec.payloadType', c.payloadType ?? DEFAULT_OPUS_PAYLOAD_TYPE, 96, 127);
  const dtmfPayloadType = int('codec.dtmfPayloadType', c.dtmfPayloadType ?? DEFAULT_DTMF_PAYLOAD_TYPE, 96, 127);
  if (payloadType === dtmfPayloadType) fail('codec.dtmfPayloadType', dtmfPayloadType, `a payload type other than Opus's ${payloadType}`);
  for (const flag of ['fec', 'dtx'] as const) if (c[flag] !== undefined && typeof c[flag] !== 'boolean') fail(`codec.${flag}`, c[flag], 'a boolean');
  const s = params.srtp;
  if (typeof s !== 'object' || s === null) fail('srtp', s, 'an object');
  const profile = SRTP_PROFILES[s.profile];
  if (!profile || !Object.hasOwn(SRTP_PROFILES, s.profile)) throw new MediaError('ERR_MEDIA_STREAM', `media stream srtp.profile: ${JSON.stringify(s.profile)}, expected one of ${Object.keys(SRTP_PROFILES).join(', ')}`);
  return {
    codec: { sampleRate: c.sampleRate, bitrate, payloadType, dtmfPayloadType, fec: c.fec ?? true, dtx: c.dtx ?? false },
    srtp: {
      profile: s.profile,
      send: { key: keyOf('srtp.send.key', s.send?.key, profile.masterKeyLength), salt: keyOf('srtp.send.salt', s.send?.salt, profile.masterSaltLength) },
      receive: { key: keyOf('srtp.receive.key', s.receive?.key, profile.masterKeyLength), salt: keyOf('srtp.receive.salt', s.receive?.salt, profile.masterSaltLength) },
    },
    ssrc: int('ssrc', params.ssrc, 0, 0xffffffff),
  };
}

/** Fresh random SRTP master key and salt for `profile`. */
export function makeSrtpKeyMaterial(profile: SrtpProfile): SrtpKeyMaterial {
  const p = SRTP_PROFILES[profile];
  if (!p) throw new MediaError('ERR_MEDIA_STREAM', `SRTP profile ${JSON.stringify(profile)}: unknown`);
  return { key: randomBytes(p.masterKeyLength), salt: randomBytes(p.masterSaltLength) };
}
