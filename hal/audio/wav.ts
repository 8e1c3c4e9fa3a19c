/**
 * 16-bit PCM mono WAV files (RIFF/WAVE): what the simulated audio driver
 * plays as the microphone and writes from the speaker.
 *
 * Reading accepts a `fmt ` chunk of format 1 (PCM) or 0xFFFE
 * (WAVE_FORMAT_EXTENSIBLE with the PCM sub-format), one channel, 16 bits per
 * sample; other chunks (LIST, fact …) are skipped. Anything else is refused
 * with an `AudioError` saying what was found and what was expected:
 * `ERR_AUDIO_WAV_FORMAT` (not RIFF/WAVE, compressed, stereo, 8/24/32-bit,
 * no `fmt ` or `data` chunk) and `ERR_AUDIO_WAV_TRUNCATED` (a header or
 * chunk cut short — also what a recording whose writer died before fixing
 * the sizes looks like).
 *
 * Sample rate: `readWav(path, { sampleRate })` converts the file to the rate
 * asked for (`resample.ts`: box-filter decimation 48k → 16k, linear
 * interpolation otherwise), so a 48 kHz prompt plays on a 16 kHz device.
 *
 * `WavWriter` streams a recording: a header with zero sizes first, frames
 * appended as they come, the sizes written on `close()`, after which the
 * file is a valid WAV.
 */
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { AudioError } from './errors.js';
import { resample } from './resample.js';

const HEADER_LENGTH = 44;
const FORMAT_PCM = 1;
const FORMAT_EXTENSIBLE = 0xfffe;
/** Largest data chunk a RIFF size field can describe. */
const MAX_DATA_BYTES = 0xffffffff - (HEADER_LENGTH - 8);

export interface WavAudio {
  sampleRate: number;
  samples: Int16Array;
}

/** Decode a 16-bit PCM mono WAV. `where` names the file in error messages. */
export function decodeWav(bytes: Buffer, where = 'WAV'): WavAudio {
  if (bytes.length < 12) throw new AudioError('ERR_AUDIO_WAV_TRUNCATED', `${where}: ${bytes.length} bytes, expected at least a 12-byte RIFF header`);
  const riff = bytes.toString('latin1', 0, 4);
  const wave = bytes.toString('latin1', 8, 12);
  if (riff !== 'RIFF' || wave !== 'WAVE') {
    throw new AudioError('ERR_AUDIO_WAV_FORMAT', `${where}: starts with ${JSON.stringify(riff)}…${JSON.stringify(wave)}, expected "RIFF"…"WAVE"`);
  }
  let sampleRate: number | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (body + size > bytes.length) {
      throw new AudioError('ERR_AUDIO_WAV_TRUNCATED', `${where}: chunk "${id}" at offset ${offset} declares ${size} bytes, only ${bytes.length - body} left in the file`);
    }
    if (id === 'fmt ') {
      sampleRate = checkFormat(bytes.subarray(body, body + size), where);
    } else if (id === 'data') {
      if (sampleRate === undefined) throw new AudioError('ERR_AUDIO_WAV_FORMAT', `${where}: "data" chunk at offset ${offset} before any "fmt " chunk`);
      if (size % 2 !== 0) throw new AudioError('ERR_AUDIO_WAV_TRUNCATED', `${where}: "data" chunk of ${size} bytes, expected whole 16-bit samples (an even count)`);
      const samples = new Int16Array(size / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(body + 2 * i);
      return { sampleRate, samples };
    }
    offset = body + size + (size % 2); // chunks are word-aligned
  }
  if (offset < bytes.length) throw new AudioError('ERR_AUDIO_WAV_TRUNCATED', `${where}: chunk header at offset ${offset} cut short`);
  throw new AudioError('ERR_AUDIO_WAV_FORMAT', `${where}: no ${sampleRate === undefined ? '"fmt " chunk' : '"data" chunk'}`);
}

function checkFormat(fmt: Buffer, where: string): number {
  if (fmt.length < 16) throw new AudioError('ERR_AUDIO_WAV_TRUNCATED', `${where}: "fmt " chunk of ${fmt.length} bytes, expected at least 16`);
  let format = fmt.readUInt16LE(0);
  const channels = fmt.readUInt16LE(2);
  const sampleRate = fmt.readUInt32LE(4);
  const bits = fmt.readUInt16LE(14);
  if (format === FORMAT_EXTENSIBLE) {
    if (fmt.length < 40) throw new AudioError('ERR_AUDIO_WAV_TRUNCATED', `${where}: WAVE_FORMAT_EXTENSIBLE "fmt " chunk of ${fmt.length} bytes, expected 40`);
    format = fmt.readUInt16LE(24); // first two bytes of the sub-format GUID
  }
  if (format !== FORMAT_PCM) throw new AudioError('ERR_AUDIO_WAV_FORMAT', `${where}: audio format ${format}, expected 1 (PCM)`);
  if (channels !== 1) throw new AudioError('ERR_AUDIO_WAV_FORMAT', `${where}: ${channels} channels, expected 1 (mono)`);
  if (bits !== 16) throw new AudioError('ERR_AUDIO_WAV_FORMAT', `${where}: ${bits} bits per sample, expected 16`);
  if (sampleRate === 0) throw new AudioError('ERR_AUDIO_WAV_FORMAT', `${where}: sample rate 0`);
  return sampleRate;
}

function header(sampleRate: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(HEADER_LENGTH);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(HEADER_LENGTH - 8 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(FORMAT_PCM, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** Encode mono 16-bit samples as a WAV file. */
export function encodeWav(samples: Int16Array, sampleRate: number): Buffer {
  const out = Buffer.alloc(HEADER_LENGTH + samples.length * 2);
  header(sampleRate, samples.length * 2).copy(out);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, HEADER_LENGTH + 2 * i);
  return out;
}

function ioError(what: string, path: string, err: unknown): AudioError {
  return new AudioError('ERR_AUDIO_IO', `${what} ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Read a WAV file; with `sampleRate`, converted to that rate. */
export function readWav(path: string, options: { sampleRate?: number } = {}): WavAudio {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw ioError('cannot read WAV', path, err);
  }
  const wav = decodeWav(bytes, `WAV ${path}`);
  if (options.sampleRate === undefined || options.sampleRate === wav.sampleRate) return wav;
  return { sampleRate: options.sampleRate, samples: resample(wav.samples, wav.sampleRate, options.sampleRate) };
}

/** Write a whole WAV file. */
export function writeWav(path: string, samples: Int16Array, sampleRate: number): void {
  try {
    writeFileSync(path, encodeWav(samples, sampleRate));
  } catch (err) {
    throw ioError('cannot write WAV', path, err);
  }
}

/**
 * A WAV recording written as it goes. `append` buffers, `flush` writes what
 * is buffered (the sim driver flushes about once a second), `close` flushes
 * and writes the sizes. Synchronous: a few KB a second.
 */
export class WavWriter {
  readonly path: string;
  readonly sampleRate: number;
  #fd: number | undefined;
  #pending: Buffer[] = [];
  #dataBytes = 0;
  #position = HEADER_LENGTH;

  constructor(path: string, sampleRate: number) {
    this.path = path;
    this.sampleRate = sampleRate;
    try {
      this.#fd = openSync(path, 'w');
      writeSync(this.#fd, header(sampleRate, 0), 0, HEADER_LENGTH, 0);
    } catch (err) {
      throw ioError('cannot write WAV', path, err);
    }
  }

  /** Bytes of PCM appended so far. */
  get dataBytes(): number {
    return this.#dataBytes;
  }

  /** Append S16LE PCM (copied). Past the 4 GiB a RIFF file can hold, the rest is dropped. */
  append(pcm: Buffer): void {
    if (this.#fd === undefined) throw new AudioError('ERR_AUDIO_STATE', `WAV ${this.path}: append after close`);
    const room = MAX_DATA_BYTES - this.#dataBytes;
    const take = Math.min(room - (room % 2), pcm.length);
    if (take <= 0) return;
    this.#pending.push(Buffer.from(pcm.subarray(0, take)));
    this.#dataBytes += take;
  }

  flush(): void {
    if (this.#fd === undefined || this.#pending.length === 0) return;
    const chunk = Buffer.concat(this.#pending);
    this.#pending = [];
    try {
      writeSync(this.#fd, chunk, 0, chunk.length, this.#position);
    } catch (err) {
      throw ioError('cannot write WAV', this.path, err);
    }
    this.#position += chunk.length;
  }

  /** Flush, write the final sizes and close the file. Harmless twice. */
  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    try {
      this.flush();
      writeSync(fd, header(this.sampleRate, this.#dataBytes), 0, HEADER_LENGTH, 0);
    } catch (err) {
      throw err instanceof AudioError ? err : ioError('cannot write WAV', this.path, err);
    } finally {
      this.#fd = undefined;
      closeSync(fd);
    }
  }
}
