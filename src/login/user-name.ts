import { AccountError } from '../errors.js';

/**
 * User names on the login server.
 *
 * A name is normalised first — Unicode NFKC (so full-width `ＡＬＩＣＥ` and
 * the Kelvin sign fold to ASCII), lower-cased, surrounding white space
 * trimmed — and the result must then be:
 *
 * - 2 to 32 characters long,
 * - made of `a-z`, `0-9`, `.`, `_` and `-` only,
 * - starting with a letter,
 * - not one of {@link RESERVED_USER_NAMES}.
 *
 * Names are unique after normalisation: `Alice`, ` alice ` and `ＡＬＩＣＥ` are
 * the same account. `echo` is an ordinary name (the sound-test account).
 */
export const USER_NAME_MIN_LENGTH = 2;
export const USER_NAME_MAX_LENGTH = 32;

/**
 * Names nobody may register: they would let a user pass for the network's
 * own operator or collide with words the protocol or the dial plan may
 * give a meaning to.
 */
export const RESERVED_USER_NAMES: ReadonlySet<string> = new Set([
  'admin',
  'administrator',
  'root',
  'system',
  'partyline',
  'supernode',
  'login',
  'nobody',
  'anonymous',
  'everyone',
  'null',
  'undefined',
]);

const NOT_ALLOWED = /[^a-z0-9._-]/u;
/** Longer raw input is refused before normalisation (it comes off the network). */
const RAW_INPUT_LIMIT = 256;

/** NFKC, lower case, trimmed. Does not validate. */
export function normaliseUserName(input: string): string {
  return input.normalize('NFKC').toLowerCase().trim();
}

/**
 * What is wrong with `input` as a user name, or `undefined` when it is a
 * valid name once normalised.
 */
export function userNameProblem(input: string): string | undefined {
  if (input.length > RAW_INPUT_LIMIT) return lengthProblem(input.length);
  const name = normaliseUserName(input);
  if (name.length === 0) return 'empty';
  const bad = NOT_ALLOWED.exec(name);
  if (bad !== null) return `only a-z, 0-9, ".", "_" and "-" are allowed (found ${JSON.stringify(bad[0])})`;
  if (name.length < USER_NAME_MIN_LENGTH || name.length > USER_NAME_MAX_LENGTH) {
    return lengthProblem(name.length);
  }
  if (!/^[a-z]/.test(name)) return 'must start with a letter (a-z)';
  if (RESERVED_USER_NAMES.has(name)) return 'is reserved';
  return undefined;
}

function lengthProblem(length: number): string {
  return `must be ${USER_NAME_MIN_LENGTH} to ${USER_NAME_MAX_LENGTH} characters long, got ${length}`;
}

/** True when `input` is a valid user name once normalised. */
export function isValidUserName(input: string): boolean {
  return userNameProblem(input) === undefined;
}

/**
 * Normalise and validate a user name; returns the normalised name.
 * @throws AccountError `ERR_ACCOUNT_NAME_INVALID`, e.g.
 *   `user name "Al ice": only a-z, 0-9, ".", "_" and "-" are allowed (found " ")`
 */
export function parseUserName(input: string): string {
  const problem = userNameProblem(input);
  if (problem !== undefined) {
    const shown = input.length > 40 ? `${input.slice(0, 40)}…` : input;
    throw new AccountError('ERR_ACCOUNT_NAME_INVALID', `user name ${JSON.stringify(shown)}: ${problem}`);
  }
  return normaliseUserName(input);
}
