/**
 * Typed errors of the media building blocks (STYLE.md 9): one class per
 * protocol, each code stable and prefixed by it.
 *
 * - `RtpError`: `ERR_RTP_TRUNCATED`, `ERR_RTP_VERSION`, `ERR_RTP_PADDING`,
 *   `ERR_RTP_EXTENSION`, `ERR_RTP_PAYLOAD_TYPE`, `ERR_RTP_ENCODE`;
 * - `RtcpError`: `ERR_RTCP_TRUNCATED`, `ERR_RTCP_VERSION`, `ERR_RTCP_LENGTH`,
 *   `ERR_RTCP_PADDING`, `ERR_RTCP_COMPOUND`, `ERR_RTCP_SDES`, `ERR_RTCP_BYE`,
 *   `ERR_RTCP_ENCODE`;
 * - `SrtpError`: `ERR_SRTP_KEY`, `ERR_SRTP_TRUNCATED`, `ERR_SRTP_TOO_LONG`,
 *   `ERR_SRTP_AUTH`, `ERR_SRTP_REPLAY`, `ERR_SRTP_INDEX`,
 *   `ERR_SRTP_KEY_EXHAUSTED`, `ERR_SRTP_NOT_RTP`, `ERR_SRTP_NOT_RTCP`,
 *   `ERR_SRTP_OPTIONS`;
 * - `MediaError`: `ERR_MEDIA_OPTIONS` (a jitter buffer, statistics or quality
 *   estimate was given parameters out of range);
 * - `OpusError`: `ERR_OPUS_UNAVAILABLE` (the native codec cannot be loaded),
 *   `ERR_OPUS_OPTIONS`, `ERR_OPUS_FRAME` (PCM of the wrong size),
 *   `ERR_OPUS_PACKET` (a packet libopus rejects or that is empty),
 *   `ERR_OPUS_DURATION` (a packet that is not one 20 ms frame),
 *   `ERR_OPUS_ENCODE`.
 */
import { PartylineError } from '../errors.js';

/** An RTP packet is malformed, or an `RtpPacket` cannot be encoded. */
export class RtpError extends PartylineError {
  constructor(code: `ERR_RTP_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** An RTCP (compound) packet is malformed, or cannot be encoded. */
export class RtcpError extends PartylineError {
  constructor(code: `ERR_RTCP_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * SRTP/SRTCP protection failed: bad key material, a packet that does not
 * authenticate, a replay, or a key used for more packets than it may protect.
 * Messages never contain key material.
 */
export class SrtpError extends PartylineError {
  constructor(code: `ERR_SRTP_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A media component was configured with values out of range. */
export class MediaError extends PartylineError {
  constructor(code: `ERR_MEDIA_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The Opus codec failed: the native module is missing, a PCM frame has the
 * wrong size, or a packet is malformed or not 20 ms long.
 */
export class OpusError extends PartylineError {
  constructor(code: `ERR_OPUS_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
