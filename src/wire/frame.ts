import { WireError } from '../errors.js';

/** Noise's own limit: a message is at most 65535 bytes, so a 2-byte length prefix covers it. */
export const MAX_FRAME = 65535;

/** Prefix a payload with its 2-byte big-endian length. */
export function encodeFrame(payload: Uint8Array): Buffer {
  if (payload.length > MAX_FRAME) {
    throw new WireError('ERR_WIRE_FRAME_TOO_LONG', `frame: length ${payload.length}, expected at most ${MAX_FRAME}`);
  }
  const out = Buffer.allocUnsafe(2 + payload.length);
  out.writeUInt16BE(payload.length, 0);
  out.set(payload, 2);
  return out;
}

/**
 * Splits a byte stream into frames. Pure: feed it chunks as they arrive,
 * it returns the complete frames. Holds at most one partial frame.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  readonly #minLength: number;
  readonly #maxLength: number;

  /**
   * @param minLength frames shorter than this are malformed (e.g. 16 for a Noise transport message: the tag alone)
   * @param maxLength frames longer than this are refused as soon as their prefix arrives
   */
  constructor(minLength = 1, maxLength = MAX_FRAME) {
    this.#minLength = minLength;
    this.#maxLength = maxLength;
  }

  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: Buffer[] = [];
    let data = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    let offset = 0;
    while (data.length - offset >= 2) {
      const length = data.readUInt16BE(offset);
      if (length < this.#minLength) {
        this.#reset();
        throw new WireError('ERR_WIRE_FRAME_TOO_SHORT', `frame: length ${length}, expected at least ${this.#minLength}`);
      }
      if (length > this.#maxLength) {
        this.#reset();
        throw new WireError('ERR_WIRE_FRAME_TOO_LONG', `frame: length ${length}, expected at most ${this.#maxLength}`);
      }
      if (data.length - offset - 2 < length) break;
      frames.push(data.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    data = data.subarray(offset);
    this.#chunks = data.length > 0 ? [data] : [];
    this.#buffered = data.length;
    return frames;
  }

  /** Hand over whatever partial frame is buffered (raw bytes, prefix included) and forget it. */
  takeRemainder(): Buffer | undefined {
    if (this.#buffered === 0) return undefined;
    const rest = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    this.#reset();
    return rest;
  }

  #reset(): void {
    this.#chunks = [];
    this.#buffered = 0;
  }
}
