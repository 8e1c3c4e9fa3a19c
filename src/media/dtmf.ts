/**
 * DTMF as RTP telephone events (RFC 4733): the payload codec, a sender that
 * turns digits into one event packet per 20 ms frame, and a receiver that
 * reports each event once.
 *
 * Payload (RFC 4733 §2.3, 4 bytes):
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |     event     |E|R| volume    |          duration             |
 *     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Events 0–15 are the DTMF digits 0–9, *, #, A–D (§3.2). Volume is the
 * power level in −dBm0 (0–63); duration is in RTP timestamp units since the
 * event began. The R bit is sent 0 and ignored.
 *
 * Clock: the events share the timestamp clock of the audio they go with.
 * With Opus that is 48 kHz (RFC 7587 §4.1), so telephone-event is
 * negotiated at 48000 rather than the traditional 8000 and one timeline
 * serves both payload types (RFC 4733 §2.2 lets the event clock match the
 * audio's).
 *
 * Sending (`DtmfSender`, one `step` per 20 ms frame): each digit is a tone of
 * `toneFrames` packets (5: 100 ms) with one timestamp — the frame the tone
 * began — and a growing duration, the marker bit on the first; the last
 * has the E bit and is sent three times in all (§2.5.1.4), in new packets
 * as SRTP requires; then `gapFrames` of audio before the next digit (the
 * two repeats plus one frame: 60 ms, the first multiple of 20 ms over the
 * usual 50 ms). While a digit is sent the stream's audio pauses.
 *
 * Receiving (`DtmfReceiver`): an event is reported at its first packet,
 * whichever that is, and never again for the same timestamp.
 *
 * Malformed payloads and digits throw `MediaError` `ERR_MEDIA_DTMF`.
 */
import { MediaError } from './errors.js';

/** The DTMF digits by event code (RFC 4733 §3.2). */
export const DTMF_DIGITS = '0123456789*#ABCD';
export const TELEPHONE_EVENT_LENGTH = 4;
/** A typical level, −10 dBm0. */
export const DEFAULT_DTMF_VOLUME = 10;

export interface TelephoneEvent {
  /** 0–255; 0–15 are DTMF. */
  event: number;
  /** E bit: the last packet of the event. */
  end: boolean;
  /** Power in −dBm0, 0–63. */
  volume: number;
  /** Timestamp units since the event began, 0–65535. */
  duration: number;
}

function check(what: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new MediaError('ERR_MEDIA_DTMF', `telephone event ${what}: ${value}, expected an integer 0..${max}`);
  }
}

export function encodeTelephoneEvent(e: TelephoneEvent): Buffer {
  check('event', e.event, 255);
  check('volume', e.volume, 63);
  check('duration', e.duration, 0xffff);
  const out = Buffer.alloc(TELEPHONE_EVENT_LENGTH);
  out[0] = e.event;
  out[1] = (e.end ? 0x80 : 0) | e.volume;
  out.writeUInt16BE(e.duration, 2);
  return out;
}

export function decodeTelephoneEvent(payload: Uint8Array): TelephoneEvent {
  if (payload.length !== TELEPHONE_EVENT_LENGTH) {
    throw new MediaError('ERR_MEDIA_DTMF', `telephone event: payload of ${payload.length} bytes, expected ${TELEPHONE_EVENT_LENGTH}`);
  }
  return { event: payload[0]!, end: (payload[1]! & 0x80) !== 0, volume: payload[1]! & 0x3f, duration: (payload[2]! << 8) | payload[3]! };
}

/** The event code of a digit (a–d accepted as A–D). */
export function dtmfEvent(digit: string): number {
  const at = digit.length === 1 ? DTMF_DIGITS.indexOf(digit.toUpperCase()) : -1;
  if (at < 0) throw new MediaError('ERR_MEDIA_DTMF', `DTMF digit ${JSON.stringify(digit)}: expected one of 0-9 * # A-D`);
  return at;
}

/** The digit of an event code, or undefined for events that are not DTMF. */
export function dtmfDigit(event: number): string | undefined {
  return event >= 0 && event < DTMF_DIGITS.length ? DTMF_DIGITS[event] : undefined;
}

/** Check a string of digits (1–64 of them); returns it upper-cased. */
export function checkDtmfDigits(digits: string): string {
  if (typeof digits !== 'string' || digits.length === 0 || digits.length > 64) {
    throw new MediaError('ERR_MEDIA_DTMF', `DTMF digits ${JSON.stringify(digits)}: expected 1 to 64 of 0-9 * # A-D`);
  }
  for (const d of digits) dtmfEvent(d);
  return digits.toUpperCase();
}

export interface DtmfSenderOptions {
  /** RTP timestamp units in one frame (960: 20 ms at 48 kHz). */
  frameTicks: number;
  /** Frames a tone lasts (default 5: 100 ms). */
  toneFrames?: number;
  /** Times the end packet is sent (default 3, RFC 4733 §2.5.1.4). */
  endPackets?: number;
  /** Frames of audio between the last end packet and the next digit (default 1). */
  gapFrames?: number;
  volume?: number;
}

/** What to send for one frame. */
export type DtmfStep =
  | { kind: 'audio' }
  | { kind: 'event'; payload: Buffer; timestamp: number; marker: boolean; digit: string };

export class DtmfSender {
  readonly #frameTicks: number;
  readonly #toneFrames: number;
  readonly #endPackets: number;
  readonly #gapFrames: number;
  readonly #volume: number;
  readonly #queue: string[] = [];
  /** The digit being sent: its first frame's timestamp and how many frames it has had. */
  #current: { digit: string; event: number; timestamp: number; frame: number } | undefined;
  #gap = 0;

  constructor(options: DtmfSenderOptions) {
    this.#frameTicks = options.frameTicks;
    this.#toneFrames = options.toneFrames ?? 5;
    this.#endPackets = options.endPackets ?? 3;
    this.#gapFrames = options.gapFrames ?? 1;
    this.#volume = options.volume ?? DEFAULT_DTMF_VOLUME;
    check('frame ticks', this.#frameTicks, 0xffff);
    check('volume', this.#volume, 63);
    if (this.#frameTicks * this.#toneFrames > 0xffff || this.#toneFrames < 1 || this.#endPackets < 1 || this.#gapFrames < 0) {
      throw new MediaError('ERR_MEDIA_DTMF', `DTMF sender: ${this.#toneFrames} frames of ${this.#frameTicks} ticks, ${this.#endPackets} end packets, ${this.#gapFrames} gap frames do not make a tone`);
    }
  }

  /** Queue digits (checked, see `checkDtmfDigits`). */
  enqueue(digits: string): void {
    for (const d of checkDtmfDigits(digits)) this.#queue.push(d);
  }

  /** True while a digit is being sent or waits. */
  get busy(): boolean {
    return this.#current !== undefined || this.#queue.length > 0;
  }

  /** The frame whose RTP timestamp is `timestamp` is due: send audio, or this event packet. */
  step(timestamp: number): DtmfStep {
    if (this.#current === undefined) {
      if (this.#gap > 0) {
        this.#gap--;
        return { kind: 'audio' };
      }
      const digit = this.#queue.shift();
      if (digit === undefined) return { kind: 'audio' };
      this.#current = { digit, event: dtmfEvent(digit), timestamp: timestamp >>> 0, frame: 0 };
    }
    const c = this.#current;
    const frame = c.frame++;
    const end = frame >= this.#toneFrames - 1;
    const duration = Math.min(frame + 1, this.#toneFrames) * this.#frameTicks;
    const payload = encodeTelephoneEvent({ event: c.event, end, volume: this.#volume, duration });
    if (frame >= this.#toneFrames - 1 + this.#endPackets - 1) {
      this.#current = undefined;
      this.#gap = this.#gapFrames;
    }
    return { kind: 'event', payload, timestamp: c.timestamp, marker: frame === 0, digit: c.digit };
  }

  /** Forget queued digits and the one being sent (e.g. when the stream goes). */
  clear(): void {
    this.#queue.length = 0;
    this.#current = undefined;
    this.#gap = 0;
  }
}

/** Reports each received event once, by its timestamp. */
export class DtmfReceiver {
  readonly #seen: number[] = [];
  readonly #memory: number;

  constructor(memory = 32) {
    this.#memory = memory;
  }

  /**
   * A telephone-event packet arrived. Returns the digit when this is the
   * first packet of a DTMF event, undefined for the rest and for events
   * that are not DTMF. Throws `ERR_MEDIA_DTMF` for a malformed payload.
   */
  onPacket(timestamp: number, payload: Uint8Array): string | undefined {
    const e = decodeTelephoneEvent(payload);
    const ts = timestamp >>> 0;
    if (this.#seen.includes(ts)) return undefined;
    this.#seen.push(ts);
    if (this.#seen.length > this.#memory) this.#seen.shift();
    return dtmfDigit(e.event);
  }
}
