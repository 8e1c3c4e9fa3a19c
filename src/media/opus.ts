/**
 * Opus (RFC 6716) for calls: 20 ms mono frames of signed 16-bit
 * little-endian PCM at 16 kHz (wideband, the default) or 48 kHz, through
 * the native libopus 1.3.1 of `@discordjs/opus`.
 *
 * - `OpusEncoder`: `encode(pcm)` takes exactly one frame (320 samples at
 *   16 kHz, 960 at 48 kHz) and returns one packet. Application VOIP, VBR,
 *   configurable bitrate and complexity; in-band FEC (SILK LBRR) and the
 *   expected loss can be switched at run time with `setFec` when RTCP
 *   reports loss.
 * - `OpusDecoder`: `decode(packet)` returns one frame and accepts only
 *   packets of 20 ms in all (RFC 6716 §3.1, checked before libopus sees
 *   them); `decodeLost()` (or `decode(null)`) returns one frame of
 *   concealment; `decodeFec(next)` is the hook for a lost frame whose next
 *   packet is already here.
 *
 * What the wrapper exposes, and what it does not. `@discordjs/opus` 0.10
 * has `encode`, `decode`, `setBitrate` and raw `applyEncoderCTL` /
 * `applyDecoderCTL(request, int)`. It has no loss concealment call and its
 * `decode` always passes `decode_fec = 0` with a 120 ms output buffer:
 *
 * - Concealment is done with a packet whose frame is empty — only a TOC byte
 *   for 20 ms in the last packet's mode. libopus treats a frame of 0 or 1
 *   bytes as lost and conceals exactly the duration the TOC names
 *   (opus_decoder.c, "Payloads of 1 (2 including ToC) or 0 trigger the
 *   PLC/DTX"; RFC 6716 §3.2.1), so one call gives one 20 ms frame and the
 *   decoder's timeline stays aligned.
 * - In-band FEC can be produced (the encoder CTLs work) but NOT decoded:
 *   recovering frame n from packet n+1 needs `opus_decode(..., decode_fec =
 *   1)`, which the wrapper never calls. `decodeFec` therefore checks the
 *   next packet and falls back to concealment; `OpusDecoder.fecDecoding` is
 *   `false` so callers and statistics can tell. `opusPacketHasFec` reads the
 *   LBRR flag of a packet (RFC 6716 §4.2.3), so a receiver can at least see
 *   that the sender's FEC is on.
 * - GET CTLs must never go through `applyEncoderCTL`: it passes an int where
 *   libopus expects a pointer. Only SET requests are used here, and the
 *   encoder's settings are remembered on this side.
 *
 * The native module is loaded on first use (`loadOpusBinding`), so code that
 * imports this file for types or never makes a call does not load it; when it
 * cannot be loaded the error says why and how to fix it.
 */
import { createRequire } from 'node:module';
import { OpusError } from './errors.js';

/** Sample rates supported for calls: wideband (default) and fullband. */
export type OpusSampleRate = 16000 | 48000;

export const OPUS_FRAME_MS = 20;

/** libopus CTL request numbers (opus_defines.h) used through `apply*CTL`. */
export const OPUS_CTL = {
  SET_APPLICATION: 4000,
  SET_BITRATE: 4002,
  SET_VBR: 4006,
  SET_COMPLEXITY: 4010,
  SET_INBAND_FEC: 4012,
  SET_PACKET_LOSS_PERC: 4014,
  SET_DTX: 4016,
  SET_SIGNAL: 4024,
  RESET_STATE: 4028,
} as const;
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SIGNAL_VOICE = 3001;

/** The part of `@discordjs/opus` used here. */
export interface NativeOpus {
  encode(pcm: Buffer): Buffer;
  decode(packet: Buffer): Buffer;
  applyEncoderCTL(request: number, value: number): void;
  applyDecoderCTL(request: number, value: number): void;
  setBitrate(bitrate: number): void;
}

export interface OpusBinding {
  OpusEncoder: new (rate: number, channels: number) => NativeOpus;
}

const NATIVE_MODULE = '@discordjs/opus';
const bindings = new Map<string, OpusBinding>();

/**
 * Load the native Opus module (cached). `moduleId` exists for tests of the
 * failure path. Throws `ERR_OPUS_UNAVAILABLE` naming the cause and the fix.
 */
export function loadOpusBinding(moduleId: string = NATIVE_MODULE): OpusBinding {
  const cached = bindings.get(moduleId);
  if (cached) return cached;
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(moduleId);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new OpusError(
      'ERR_OPUS_UNAVAILABLE',
      `cannot load the native Opus codec ${moduleId} (${reason}); install it with \`npm install\` ` +
        `from the project directory (package.json "allowScripts" must approve "${NATIVE_MODULE}", since npm 11 ` +
        `skips install scripts it does not approve), or build it again with \`npm rebuild ${NATIVE_MODULE}\` ` +
        '(needs python3, make and a C compiler when no prebuilt binary matches)',
      { cause: err },
    );
  }
  const ctor = (loaded as { OpusEncoder?: unknown } | null)?.OpusEncoder;
  if (typeof ctor !== 'function') {
    throw new OpusError('ERR_OPUS_UNAVAILABLE', `native Opus codec ${moduleId}: no OpusEncoder class, expected ${NATIVE_MODULE} 0.10`);
  }
  const binding = loaded as OpusBinding;
  bindings.set(moduleId, binding);
  return binding;
}

function checkSampleRate(rate: unknown): OpusSampleRate {
  if (rate !== 16000 && rate !== 48000) {
    throw new OpusError('ERR_OPUS_OPTIONS', `Opus sampleRate ${String(rate)}, expected 16000 or 48000`);
  }
  return rate;
}

function checkInt(what: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OpusError('ERR_OPUS_OPTIONS', `Opus ${what} ${value}, expected an integer in ${min}–${max}`);
  }
  return value;
}

function nativeCall<T>(code: `ERR_OPUS_${string}`, what: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw new OpusError(code, `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

export interface OpusEncoderOptions {
  /** 16000 (wideband, default) or 48000. */
  sampleRate?: OpusSampleRate;
  /** Target bitrate in bit/s, 6000–510000 (default 24000 at 16 kHz, 32000 at 48 kHz). */
  bitrate?: number;
  /** Encoder complexity 0–10 (default: libopus's, 10). */
  complexity?: number;
  /** In-band FEC from the start (default off; switch it with `setFec`). */
  fec?: boolean;
  /** Expected packet loss in percent, 0–100 (default 0). */
  packetLossPercent?: number;
  /**
   * Discontinuous transmission (default off). With DTX on, libopus returns a
   * packet of 1–2 bytes (nothing to send) for most frames of silence, and a
   * real packet about every 400 ms to refresh the comfort noise. Off by
   * default: media keeps flowing in silence to hold NAT bindings open.
   */
  dtx?: boolean;
}

/** Largest packet libopus returns under DTX for a frame that need not be sent (RFC 6716 §3.2.1: a TOC with no frame data). */
export const OPUS_DTX_PACKET_MAX_BYTES = 2;

/** Encodes 20 ms mono S16LE frames into Opus packets. */
export class OpusEncoder {
  readonly sampleRate: OpusSampleRate;
  /** Samples in one frame. */
  readonly frameSamples: number;
  /** Bytes of PCM in one frame. */
  readonly frameBytes: number;
  #native: NativeOpus;
  #bitrate: number;
  #fec = false;
  #lossPercent = 0;
  readonly #dtx: boolean;

  constructor(options: OpusEncoderOptions = {}, binding: OpusBinding = loadOpusBinding()) {
    this.sampleRate = checkSampleRate(options.sampleRate ?? 16000);
    this.frameSamples = (this.sampleRate * OPUS_FRAME_MS) / 1000;
    this.frameBytes = this.frameSamples * 2;
    const bitrate = checkInt('bitrate', options.bitrate ?? (this.sampleRate === 16000 ? 24000 : 32000), 6000, 510000);
    const complexity = options.complexity === undefined ? undefined : checkInt('complexity', options.complexity, 0, 10);
    const loss = checkInt('packetLossPercent', options.packetLossPercent ?? 0, 0, 100);
    if (options.dtx !== undefined && typeof options.dtx !== 'boolean') throw new OpusError('ERR_OPUS_OPTIONS', `Opus dtx ${String(options.dtx)}, expected a boolean`);
    this.#dtx = options.dtx ?? false;
    this.#native = nativeCall('ERR_OPUS_UNAVAILABLE', 'Opus encoder', () => new binding.OpusEncoder(this.sampleRate, 1));
    nativeCall('ERR_OPUS_ENCODE', 'Opus encoder setup', () => {
      // The application can only be chosen before the first frame.
      this.#native.applyEncoderCTL(OPUS_CTL.SET_APPLICATION, OPUS_APPLICATION_VOIP);
      this.#native.applyEncoderCTL(OPUS_CTL.SET_SIGNAL, OPUS_SIGNAL_VOICE);
      this.#native.applyEncoderCTL(OPUS_CTL.SET_VBR, 1);
      // DTX off unless asked for: media keeps flowing in silence to hold NAT bindings open.
      this.#native.applyEncoderCTL(OPUS_CTL.SET_DTX, this.#dtx ? 1 : 0);
      if (complexity !== undefined) this.#native.applyEncoderCTL(OPUS_CTL.SET_COMPLEXITY, complexity);
    });
    this.#bitrate = bitrate;
    nativeCall('ERR_OPUS_ENCODE', 'Opus encoder setup', () => this.#native.setBitrate(bitrate));
    this.setFec(options.fec ?? false, loss);
  }

  get bitrate(): number {
    return this.#bitrate;
  }

  get fec(): boolean {
    return this.#fec;
  }

  /** Whether DTX is on: packets of `OPUS_DTX_PACKET_MAX_BYTES` or less need not be sent. */
  get dtx(): boolean {
    return this.#dtx;
  }

  get packetLossPercent(): number {
    return this.#lossPercent;
  }

  /** Change the target bitrate (bit/s, 6000–510000); takes effect with the next frame. */
  setBitrate(bitrate: number): void {
    checkInt('bitrate', bitrate, 6000, 510000);
    nativeCall('ERR_OPUS_ENCODE', 'Opus setBitrate', () => this.#native.setBitrate(bitrate));
    this.#bitrate = bitrate;
  }

  /**
   * Switch in-band FEC and tell the encoder the loss to expect (percent,
   * 0–100; keeps the current value when left out). libopus adds LBRR data
   * only when the expected loss is above 0 and the bitrate leaves room for it.
   */
  setFec(enabled: boolean, packetLossPercent: number = this.#lossPercent): void {
    checkInt('packetLossPercent', packetLossPercent, 0, 100);
    nativeCall('ERR_OPUS_ENCODE', 'Opus setFec', () => {
      this.#native.applyEncoderCTL(OPUS_CTL.SET_INBAND_FEC, enabled ? 1 : 0);
      this.#native.applyEncoderCTL(OPUS_CTL.SET_PACKET_LOSS_PERC, packetLossPercent);
    });
    this.#fec = enabled;
    this.#lossPercent = packetLossPercent;
  }

  /** Encode one 20 ms frame (exactly `frameBytes` of S16LE PCM) into one packet. */
  encode(pcm: Buffer): Buffer {
    if (!Buffer.isBuffer(pcm)) throw new OpusError('ERR_OPUS_FRAME', 'Opus encode: PCM must be a Buffer');
    if (pcm.length !== this.frameBytes) {
      throw new OpusError(
        'ERR_OPUS_FRAME',
        `Opus encode: PCM frame of ${pcm.length} bytes, expected ${this.frameBytes} ` +
          `(${this.frameSamples} samples, ${OPUS_FRAME_MS} ms mono S16LE at ${this.sampleRate} Hz)`,
      );
    }
    // The native side reads the bytes as int16: give it an aligned copy when needed.
    const input = pcm.byteOffset % 2 === 0 ? pcm : Buffer.from(pcm);
    const packet = nativeCall('ERR_OPUS_ENCODE', 'Opus encode', () => this.#native.encode(input));
    if (packet.length === 0) throw new OpusError('ERR_OPUS_ENCODE', 'Opus encode: libopus returned an empty packet');
    return packet;
  }
}

export interface OpusDecoderOptions {
  /** 16000 (wideband, default) or 48000; any Opus packet decodes at either. */
  sampleRate?: OpusSampleRate;
}

/** Decodes Opus packets of 20 ms into mono S16LE frames, with loss concealment. */
export class OpusDecoder {
  readonly sampleRate: OpusSampleRate;
  readonly frameSamples: number;
  readonly frameBytes: number;
  /** Whether `decodeFec` really decodes FEC data. It does not: `@discordjs/opus` never asks libopus for it. */
  readonly fecDecoding = false;
  #native: NativeOpus;
  /** TOC of a 20 ms frame in the mode of the last packet, used to ask for concealment. */
  #concealToc = 0x48;

  constructor(options: OpusDecoderOptions = {}, binding: OpusBinding = loadOpusBinding()) {
    this.sampleRate = checkSampleRate(options.sampleRate ?? 16000);
    this.frameSamples = (this.sampleRate * OPUS_FRAME_MS) / 1000;
    this.frameBytes = this.frameSamples * 2;
    this.#native = nativeCall('ERR_OPUS_UNAVAILABLE', 'Opus decoder', () => new binding.OpusEncoder(this.sampleRate, 1));
  }

  /** Decode one packet of 20 ms; `null` means the packet was lost (same as `decodeLost`). */
  decode(packet: Buffer | null): Buffer {
    if (packet === null) return this.decodeLost();
    checkPacket(packet);
    const pcm = this.#run('Opus decode', packet);
    this.#concealToc = concealTocFor(packet[0] as number);
    return pcm;
  }

  /** One 20 ms frame of concealment for a lost packet (silence before the first packet). */
  decodeLost(): Buffer {
    return this.#run('Opus concealment', Buffer.of(this.#concealToc));
  }

  /**
   * The frame before `nextPacket` was lost and `nextPacket` has arrived: what
   * to play for the lost frame. With `fecDecoding` false this checks
   * `nextPacket` (typed error when malformed) and returns concealment; the
   * caller then decodes `nextPacket` itself in its turn.
   */
  decodeFec(nextPacket: Buffer): Buffer {
    checkPacket(nextPacket);
    return this.decodeLost();
  }

  /** Forget the stream (new source, or after a long pause). */
  reset(): void {
    nativeCall('ERR_OPUS_PACKET', 'Opus decoder reset', () => this.#native.applyDecoderCTL(OPUS_CTL.RESET_STATE, 0));
    this.#concealToc = 0x48;
  }

  #run(what: string, packet: Buffer): Buffer {
    const pcm = nativeCall('ERR_OPUS_PACKET', what, () => this.#native.decode(packet));
    if (pcm.length !== this.frameBytes) {
      throw new OpusError('ERR_OPUS_PACKET', `${what}: ${pcm.length} bytes of PCM, expected ${this.frameBytes}`);
    }
    return pcm;
  }
}

/** Samples per frame at 48 kHz for each TOC configuration (RFC 6716 §3.1, table 2). */
function frameSamples48k(config: number): number {
  if (config < 12) return [480, 960, 1920, 2880][config % 4] as number; // SILK: 10, 20, 40, 60 ms
  if (config < 16) return config % 2 === 0 ? 480 : 960; // hybrid: 10, 20 ms
  return [120, 240, 480, 960][config % 4] as number; // CELT: 2.5, 5, 10, 20 ms
}

/** Duration of an Opus packet in ms from its TOC and frame count (RFC 6716 §3.1–3.2); throws on a malformed header. */
export function opusPacketDurationMs(packet: Buffer): number {
  if (packet.length === 0) throw new OpusError('ERR_OPUS_PACKET', 'Opus packet: empty, expected at least the TOC byte');
  const toc = packet[0] as number;
  let frames: number;
  switch (toc & 3) {
    case 0:
      frames = 1;
      break;
    case 1:
    case 2:
      frames = 2;
      break;
    default:
      if (packet.length < 2) throw new OpusError('ERR_OPUS_PACKET', 'Opus packet: code 3 without its frame count byte');
      frames = (packet[1] as number) & 0x3f;
      if (frames === 0) throw new OpusError('ERR_OPUS_PACKET', 'Opus packet: code 3 with 0 frames');
  }
  return (frames * frameSamples48k(toc >> 3)) / 48;
}

function checkPacket(packet: Buffer): void {
  if (!Buffer.isBuffer(packet)) throw new OpusError('ERR_OPUS_PACKET', 'Opus decode: packet must be a Buffer');
  const ms = opusPacketDurationMs(packet);
  if (ms !== OPUS_FRAME_MS) {
    throw new OpusError('ERR_OPUS_DURATION', `Opus decode: packet of ${ms} ms, expected ${OPUS_FRAME_MS} ms`);
  }
}

/** A code-0 TOC for one 20 ms frame in the mode, bandwidth and channels of `toc`. */
function concealTocFor(toc: number): number {
  const config = toc >> 3;
  const config20 = config < 12 ? (config & ~3) | 1 : config < 16 ? config | 1 : (config & ~3) | 3;
  return (config20 << 3) | (toc & 4);
}

/**
 * Whether a SILK or hybrid packet carries in-band FEC (its LBRR flag, RFC
 * 6716 §4.2.3), read with the range decoder of §4.1.1–4.1.3 from the first
 * frame. Packets in CELT mode, with an empty first frame, or of code 3 give
 * false.
 */
export function opusPacketHasFec(packet: Buffer): boolean {
  if (packet.length < 2) return false;
  const toc = packet[0] as number;
  const config = toc >> 3;
  if (config >= 16) return false;
  let frame: Buffer;
  switch (toc & 3) {
    case 0:
      frame = packet.subarray(1);
      break;
    case 1:
      frame = packet.subarray(1, 1 + Math.floor((packet.length - 1) / 2));
      break;
    case 2: {
      const b1 = packet[1] as number;
      const [len, start] = b1 < 252 ? [b1, 2] : [b1 + 4 * (packet[2] ?? 0), 3];
      frame = packet.subarray(start, start + len);
      break;
    }
    default:
      return false;
  }
  if (frame.length <= 1) return false;
  const silkFrames = config < 12 ? [1, 1, 2, 3][config % 4] as number : 1;
  const dec = new RangeDecoder(frame);
  // Mono (or mid) channel first: one VAD flag per SILK frame, then its LBRR
  // flag; a stereo packet's side-channel flags follow and are not read.
  for (let i = 0; i < silkFrames; i++) dec.bitLogp(1);
  return dec.bitLogp(1);
}

/** The Opus range decoder (RFC 6716 §4.1), only as far as `ec_dec_bit_logp`. */
class RangeDecoder {
  #buf: Buffer;
  #pos = 0;
  #rng = 128;
  #val: number;
  #rem: number;

  constructor(buf: Buffer) {
    this.#buf = buf;
    this.#rem = this.#next();
    this.#val = 127 - (this.#rem >> 1);
    this.#normalize();
  }

  bitLogp(logp: number): boolean {
    const s = Math.floor(this.#rng / 2 ** logp);
    const bit = this.#val < s;
    if (bit) {
      this.#rng = s;
    } else {
      this.#val -= s;
      this.#rng -= s;
    }
    this.#normalize();
    return bit;
  }

  #next(): number {
    return this.#pos < this.#buf.length ? (this.#buf[this.#pos++] as number) : 0;
  }

  #normalize(): void {
    while (this.#rng <= 2 ** 23) {
      this.#rng *= 256;
      const sym = ((this.#rem << 8) | (this.#rem = this.#next())) >> 1;
      this.#val = (this.#val * 256 + (255 & ~sym)) % 2 ** 31;
    }
  }
}
