/**
 * The audio HAL's typed errors (STYLE.md 9). `hal/` never imports `src/`, so
 * this is its own small class, shaped like `PartylineError`: a stable `code`,
 * `name` the class name, `cause` when wrapping.
 *
 * Codes: `ERR_AUDIO_OPTIONS` (a device spec out of range),
 * `ERR_AUDIO_DRIVER` (unknown driver, or one not built yet),
 * `ERR_AUDIO_WAV_FORMAT` (not RIFF/WAVE, not 16-bit PCM, not mono),
 * `ERR_AUDIO_WAV_TRUNCATED` (a chunk runs past the end of the file),
 * `ERR_AUDIO_WAV_RATE` (a sample rate that cannot be converted),
 * `ERR_AUDIO_IO` (a WAV file cannot be read or written),
 * `ERR_AUDIO_FRAME` (a frame of the wrong size was played),
 * `ERR_AUDIO_STATE` (start twice, or play after close),
 * `ERR_AUDIO_UNAVAILABLE` (naudiodon / PortAudio cannot load),
 * `ERR_AUDIO_DEVICE` (no ALSA device of that name, or one that cannot both capture and play),
 * `ERR_AUDIO_OPEN` (PortAudio refused to open or start a stream),
 * `ERR_AUDIO_TONE` (an unknown tone or country, a malformed cadence).
 */
export class AudioError extends Error {
  readonly code: string;

  constructor(code: `ERR_AUDIO_${string}`, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
