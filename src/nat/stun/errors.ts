import { PartylineError } from '../../errors.js';
import type { StunClass } from './constants.js';

/**
 * A STUN message is malformed or a STUN transaction failed. Stable codes:
 *
 * - decoding: `ERR_STUN_TRUNCATED`, `ERR_STUN_NOT_STUN`, `ERR_STUN_MAGIC_COOKIE`,
 *   `ERR_STUN_LENGTH`, `ERR_STUN_ATTRIBUTE_TRUNCATED`, `ERR_STUN_ATTRIBUTE`,
 *   `ERR_STUN_AFTER_FINGERPRINT`, `ERR_STUN_UNKNOWN_ATTRIBUTES`
 *   ({@link StunUnknownAttributesError});
 * - encoding: `ERR_STUN_ENCODE`;
 * - credentials: `ERR_STUN_PASSWORD`;
 * - transactions: `ERR_STUN_ERROR_RESPONSE` ({@link StunErrorResponseError}),
 *   `ERR_STUN_NO_MAPPED_ADDRESS`, `ERR_STUN_SEND`, `ERR_STUN_CLOSED`.
 *
 * Timeouts and aborts use the project-wide `TimeoutError` (`ERR_TIMEOUT`)
 * and `AbortedError` (`ERR_ABORTED`).
 */
export class StunError extends PartylineError {
  constructor(code: `ERR_STUN_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** What a server needs to answer a request it could not fully decode. */
export interface StunHeader {
  method: number;
  class: StunClass;
  transactionId: Buffer;
}

/**
 * The message carries comprehension-required attributes this agent does not
 * know (RFC 8489 §6.3.1). A server answers a request with 420 (Unknown
 * Attribute) listing `unknown`; a client discards such a response.
 */
export class StunUnknownAttributesError extends StunError {
  readonly header: StunHeader;
  readonly unknown: readonly number[];

  constructor(header: StunHeader, unknown: readonly number[]) {
    const list = unknown.map((t) => `0x${t.toString(16).padStart(4, '0')}`).join(', ');
    super('ERR_STUN_UNKNOWN_ATTRIBUTES', `STUN message: unknown comprehension-required attribute(s) ${list}`);
    this.header = header;
    this.unknown = unknown;
  }
}

/** The server answered with an error response (e.g. 420 to a CHANGE-REQUEST it cannot honour). */
export class StunErrorResponseError extends StunError {
  readonly errorCode: number;
  readonly reason: string;
  readonly unknownAttributes: readonly number[];

  constructor(errorCode: number, reason: string, unknownAttributes: readonly number[] = []) {
    super('ERR_STUN_ERROR_RESPONSE', `STUN error response ${errorCode} ${JSON.stringify(reason)}`);
    this.errorCode = errorCode;
    this.reason = reason;
    this.unknownAttributes = unknownAttributes;
  }
}
