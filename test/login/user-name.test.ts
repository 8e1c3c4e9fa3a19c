import { describe, expect, it } from 'vitest';
import { AccountError } from '../../src/errors.js';
import { isValidUserName, normaliseUserName, parseUserName, RESERVED_USER_NAMES, userNameProblem } from '../../src/login/user-name.js';

describe('user names', () => {
  it.each([
    ['alice', 'alice'],
    ['Alice', 'alice'],
    ['  bob  ', 'bob'],
    ['\u3000carol\t', 'carol'], // ideographic space
    ['ＡＬＩＣＥ', 'alice'], // full-width letters fold under NFKC
    ['\u212Aate', 'kate'], // KELVIN SIGN
    ['ﬁona', 'fiona'], // ligature fi
    ['al.ice_b-2', 'al.ice_b-2'],
    ['echo', 'echo'], // the sound-test account is an ordinary name
    ['ab', 'ab'],
    ['a'.repeat(32), 'a'.repeat(32)],
  ])('accepts %j as %j', (input, expected) => {
    expect(normaliseUserName(input)).toBe(expected);
    expect(parseUserName(input)).toBe(expected);
    expect(isValidUserName(input)).toBe(true);
    expect(userNameProblem(input)).toBeUndefined();
  });

  it.each([
    ['Al ice', 'user name "Al ice": only a-z, 0-9, ".", "_" and "-" are allowed (found " ")'],
    ['al@ice', 'user name "al@ice": only a-z, 0-9, ".", "_" and "-" are allowed (found "@")'],
    ['bjørn', 'user name "bjørn": only a-z, 0-9, ".", "_" and "-" are allowed (found "ø")'],
    ['al\u0000ice', 'user name "al\\u0000ice": only a-z, 0-9, ".", "_" and "-" are allowed (found "\\u0000")'],
    ['', 'user name "": empty'],
    ['   ', 'user name "   ": empty'],
    ['a', 'user name "a": must be 2 to 32 characters long, got 1'],
    ['a'.repeat(33), `user name "${'a'.repeat(33)}": must be 2 to 32 characters long, got 33`],
    ['1alice', 'user name "1alice": must start with a letter (a-z)'],
    ['.alice', 'user name ".alice": must start with a letter (a-z)'],
    ['_x', 'user name "_x": must start with a letter (a-z)'],
    ['Root', 'user name "Root": is reserved'],
    ['admin', 'user name "admin": is reserved'],
  ])('rejects %j', (input, message) => {
    expect(isValidUserName(input)).toBe(false);
    let caught: unknown;
    try {
      parseUserName(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AccountError);
    expect((caught as AccountError).code).toBe('ERR_ACCOUNT_NAME_INVALID');
    expect((caught as AccountError).message).toBe(message);
  });

  it('refuses huge input before normalising it and does not echo all of it', () => {
    const input = 'a'.repeat(100_000);
    expect(userNameProblem(input)).toBe('must be 2 to 32 characters long, got 100000');
    expect(() => parseUserName(input)).toThrow(/^user name "a{40}…": must be/);
  });

  it('keeps the reserved list lower-case and valid-looking', () => {
    for (const name of RESERVED_USER_NAMES) expect(name).toMatch(/^[a-z][a-z0-9._-]{1,31}$/);
    expect(RESERVED_USER_NAMES.has('echo')).toBe(false);
  });
});
