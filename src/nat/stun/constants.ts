/**
 * STUN numbers: RFC 8489 (STUN), RFC 5780 (NAT behaviour discovery), RFC 8445
 * (the ICE attributes found in RFC 5769's sample request) and the IANA
 * "STUN Parameters" registry.
 */

/** Fixed value in every RFC 5389/8489 header; tells STUN from RFC 3489 and from other protocols. */
export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_LENGTH = 20;
export const TRANSACTION_ID_LENGTH = 12;
/** FINGERPRINT is CRC-32 of the message XOR this ("STUN" in ASCII). */
export const FINGERPRINT_XOR = 0x5354554e;

/** Message methods (12 bits). Only Binding is used by Partyline today. */
export const StunMethod = {
  BINDING: 0x001,
} as const;

export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** The two class bits C1 C0. */
export const CLASS_BITS: Readonly<Record<StunClass, number>> = {
  request: 0b00,
  indication: 0b01,
  success: 0b10,
  error: 0b11,
};

/** Attribute types. Below 0x8000 comprehension-required, from 0x8000 comprehension-optional. */
export const AttributeType = {
  MAPPED_ADDRESS: 0x0001,
  /** RFC 5780. */
  CHANGE_REQUEST: 0x0003,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  XOR_MAPPED_ADDRESS: 0x0020,
  /** RFC 8445 (ICE). */
  PRIORITY: 0x0024,
  /** RFC 8445 (ICE). */
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  /** RFC 8445 (ICE). */
  ICE_CONTROLLED: 0x8029,
  /** RFC 8445 (ICE). */
  ICE_CONTROLLING: 0x802a,
  /** RFC 5780. */
  RESPONSE_ORIGIN: 0x802b,
  /** RFC 5780. */
  OTHER_ADDRESS: 0x802c,
} as const;

/**
 * Partyline's own attributes live in the comprehension-optional range
 * 0xC000–0xFFFF (IANA: Expert Review), so that any other STUN agent ignores
 * them. None is used on the wire yet; the first is reserved for "answer this
 * client from another supernode" should that move from the overlay into STUN
 * (see `StunResponder.answerOnBehalf`).
 */
export const PARTYLINE_ATTRIBUTE_BASE = 0xc1a0;

/** Names used in error messages (`STUN attribute XOR-MAPPED-ADDRESS: ...`). */
const ATTRIBUTE_NAMES: ReadonlyMap<number, string> = new Map([
  [AttributeType.MAPPED_ADDRESS, 'MAPPED-ADDRESS'],
  [AttributeType.CHANGE_REQUEST, 'CHANGE-REQUEST'],
  [AttributeType.USERNAME, 'USERNAME'],
  [AttributeType.MESSAGE_INTEGRITY, 'MESSAGE-INTEGRITY'],
  [AttributeType.ERROR_CODE, 'ERROR-CODE'],
  [AttributeType.UNKNOWN_ATTRIBUTES, 'UNKNOWN-ATTRIBUTES'],
  [AttributeType.REALM, 'REALM'],
  [AttributeType.NONCE, 'NONCE'],
  [AttributeType.MESSAGE_INTEGRITY_SHA256, 'MESSAGE-INTEGRITY-SHA256'],
  [AttributeType.XOR_MAPPED_ADDRESS, 'XOR-MAPPED-ADDRESS'],
  [AttributeType.PRIORITY, 'PRIORITY'],
  [AttributeType.USE_CANDIDATE, 'USE-CANDIDATE'],
  [AttributeType.SOFTWARE, 'SOFTWARE'],
  [AttributeType.FINGERPRINT, 'FINGERPRINT'],
  [AttributeType.ICE_CONTROLLED, 'ICE-CONTROLLED'],
  [AttributeType.ICE_CONTROLLING, 'ICE-CONTROLLING'],
  [AttributeType.RESPONSE_ORIGIN, 'RESPONSE-ORIGIN'],
  [AttributeType.OTHER_ADDRESS, 'OTHER-ADDRESS'],
]);

export function attributeName(type: number): string {
  return ATTRIBUTE_NAMES.get(type) ?? `0x${type.toString(16).padStart(4, '0')}`;
}

export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

/** Error codes used by Partyline (RFC 8489 §14.8), with their recommended reason phrases. */
export const ErrorCode = {
  TRY_ALTERNATE: 300,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  UNKNOWN_ATTRIBUTE: 420,
  SERVER_ERROR: 500,
} as const;

export const ERROR_REASONS: ReadonlyMap<number, string> = new Map([
  [300, 'Try Alternate'],
  [400, 'Bad Request'],
  [401, 'Unauthorized'],
  [420, 'Unknown Attribute'],
  [500, 'Server Error'],
]);

/** Limits from RFC 8489 §14: USERNAME < 513 bytes, SOFTWARE/REALM/reason < 128 characters (763 bytes). */
export const MAX_USERNAME_BYTES = 513;
export const MAX_TEXT_BYTES = 763;
export const MAX_TEXT_CHARS = 128;
