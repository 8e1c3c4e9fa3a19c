import { createHash } from 'node:crypto';
import { StunError } from './errors.js';

/**
 * MESSAGE-INTEGRITY keys (RFC 8489 §9, RFC 5389 §15.4).
 *
 * Short-term credentials: key = SASLprep(password). Long-term credentials:
 * key = MD5(username ":" realm ":" SASLprep(password)).
 *
 * SASLprep (RFC 4013) is implemented as a practical subset:
 * - mapping: non-ASCII spaces (RFC 3454 table C.1.2) become U+0020, the
 *   "commonly mapped to nothing" characters (table B.1) are removed;
 * - normalisation: Unicode NFKC;
 * - prohibited output (tables C.1.2–C.9: controls, private use,
 *   non-characters, surrogates, tagging and change-display characters) is
 *   refused with `ERR_STUN_PASSWORD`.
 * Left out: the bidirectional-text rule (RFC 3454 §6) and the check for code
 * points unassigned in Unicode 3.2 (table A.1). Printable-ASCII passwords,
 * the only kind Partyline generates, pass through unchanged; RFC 5769's
 * `The<U+00AD>M<U+00AA>tr<U+2168>` becomes `TheMatrIX` as the RFC says.
 */
export function saslPrep(input: string): string {
  if (/^[\x20-\x7e]*$/.test(input)) return input;
  const mapped = Array.from(input)
    .filter((ch) => !inRanges(ch, MAPPED_TO_NOTHING))
    .map((ch) => (inRanges(ch, NON_ASCII_SPACE) ? ' ' : ch))
    .join('')
    .normalize('NFKC');
  for (const ch of mapped) {
    if (inRanges(ch, PROHIBITED) || isNonCharacter(ch.codePointAt(0)!)) {
      const cp = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      throw new StunError('ERR_STUN_PASSWORD', `STUN password: character U+${cp} is prohibited by SASLprep`);
    }
  }
  return mapped;
}

/** Short-term credential key: SASLprep(password) as UTF-8. */
export function shortTermKey(password: string): Buffer {
  return Buffer.from(saslPrep(password), 'utf8');
}

/** Long-term credential key (MD5 algorithm): MD5(username ":" realm ":" SASLprep(password)). */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${saslPrep(password)}`, 'utf8').digest();
}

type Ranges = ReadonlyArray<readonly [number, number]>;

/** RFC 3454 table C.1.2. */
const NON_ASCII_SPACE: Ranges = [[0x00a0, 0x00a0], [0x1680, 0x1680], [0x2000, 0x200b], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000]];
/** RFC 3454 table B.1. */
const MAPPED_TO_NOTHING: Ranges = [
  [0x00ad, 0x00ad], [0x034f, 0x034f], [0x1806, 0x1806], [0x180b, 0x180d], [0x200c, 0x200d], [0x2060, 0x2060], [0xfe00, 0xfe0f], [0xfeff, 0xfeff],
];
/** RFC 3454 tables C.2.1, C.2.2, C.3, C.5, C.6, C.7, C.8, C.9 (C.1.2 is mapped away before; C.4 is `isNonCharacter`). */
const PROHIBITED: Ranges = [
  [0x0000, 0x001f], [0x007f, 0x009f], [0x0340, 0x0341], [0x06dd, 0x06dd], [0x070f, 0x070f], [0x180e, 0x180e], [0x200c, 0x200f],
  [0x2028, 0x202e], [0x2060, 0x2063], [0x206a, 0x206f], [0x2ff0, 0x2ffb], [0xd800, 0xdfff], [0xe000, 0xf8ff], [0xfeff, 0xfeff],
  [0xfff9, 0xfffd], [0x1d173, 0x1d17a], [0xe0001, 0xe0001], [0xe0020, 0xe007f], [0xf0000, 0xffffd], [0x100000, 0x10fffd],
];

function inRanges(ch: string, ranges: Ranges): boolean {
  const cp = ch.codePointAt(0)!;
  return ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
}

/** RFC 3454 table C.4. */
function isNonCharacter(cp: number): boolean {
  return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
}
