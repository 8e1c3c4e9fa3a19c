import { describe, expect, it } from 'vitest';
import { HostPortError, formatHostPort, isHostPort, normalizeHostPort, parseHostPort } from '../../src/util/host-port.js';

describe('parseHostPort', () => {
  it.each([
    ['10.0.0.1:4000', '10.0.0.1', 4000],
    ['example.org:443', 'example.org', 443],
    ['[::1]:4000', '::1', 4000],
    ['Phone-1.LOCAL:80', 'phone-1.local', 80],
    ['localhost:1', 'localhost', 1],
    ['sn_1.example.org:65535', 'sn_1.example.org', 65535],
    ['[2001:DB8:0:0:0:0:0:1]:5060', '2001:db8::1', 5060],
    ['[0:0:0:0:0:0:0:0]:9', '::', 9],
    ['[::FFFF:192.0.2.1]:4000', '::ffff:192.0.2.1', 4000],
    ['[fe80::1%eth0]:4000', 'fe80::1%eth0', 4000],
  ])('parses %s', (text, host, port) => {
    expect(parseHostPort(text)).toEqual({ host, port });
  });

  it.each([
    ['', 'empty'],
    ['example.org', 'missing ":port"'],
    ['example.org:', 'missing port'],
    [':4000', 'is not a host name'],
    ['10.0.0.1:0', 'not a decimal number'],
    ['10.0.0.1:65536', 'out of range'],
    ['10.0.0.1:99999', 'out of range'],
    ['10.0.0.1:04000', 'not a decimal number'],
    ['10.0.0.1:+40', 'not a decimal number'],
    ['10.0.0.1:4e3', 'not a decimal number'],
    ['10.0.0.1:40.0', 'not a decimal number'],
    ['::1:4000', 'must be in brackets'],
    ['[::1]', 'missing ":port" after "]"'],
    ['[::1:4000', 'missing "]"'],
    ['[example.org]:80', 'not an IPv6 address'],
    ['10.0.0.256:80', 'is not a host name'],
    ['1.2.3:80', 'is not a host name'],
    ['-bad.example:80', 'is not a host name'],
    ['bad..example:80', 'is not a host name'],
    ['exa mple.org:80', 'whitespace'],
    [' example.org:80', 'whitespace'],
    ['example.org:80\n', 'whitespace'],
    [`${'a'.repeat(64)}.org:80`, 'is not a host name'],
  ])('rejects %j (%s)', (text, reason) => {
    let caught: unknown;
    try {
      parseHostPort(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(HostPortError);
    const error = caught as HostPortError;
    expect(error.code).toBe('ERR_HOST_PORT_INVALID');
    expect(error.message).toBe(`expected "host:port", got ${JSON.stringify(text)}`);
    expect(error.input).toBe(text);
    expect(error.reason).toContain(reason);
    expect(isHostPort(text)).toBe(false);
  });

  it('uses the exact message format for plain text', () => {
    expect(() => parseHostPort('nope')).toThrow('expected "host:port", got "nope"');
  });

  it('isHostPort accepts valid text and refuses non-strings', () => {
    expect(isHostPort('10.0.0.1:4000')).toBe(true);
    expect(isHostPort('[::1]:4000')).toBe(true);
    expect(isHostPort(4000)).toBe(false);
    expect(isHostPort(undefined)).toBe(false);
    expect(isHostPort({ host: 'a', port: 1 })).toBe(false);
  });
});

describe('formatHostPort', () => {
  it.each([
    [{ host: '10.0.0.1', port: 4000 }, '10.0.0.1:4000'],
    [{ host: 'Example.org', port: 443 }, 'example.org:443'],
    [{ host: '::1', port: 4000 }, '[::1]:4000'],
    [{ host: '2001:db8:0:0:0:0:0:1', port: 80 }, '[2001:db8::1]:80'],
  ])('formats %j as %s', (value, text) => {
    expect(formatHostPort(value)).toBe(text);
  });

  it.each([
    [{ host: '10.0.0.1', port: 0 }],
    [{ host: '10.0.0.1', port: 65536 }],
    [{ host: '10.0.0.1', port: 80.5 }],
    [{ host: '', port: 80 }],
    [{ host: 'bad host', port: 80 }],
  ])('rejects %j', (value) => {
    expect(() => formatHostPort(value)).toThrow(HostPortError);
  });

  it('round-trips through parseHostPort', () => {
    for (const text of ['10.0.0.1:4000', 'example.org:443', '[::1]:4000', '[::ffff:192.0.2.1]:1', '[fe80::1%eth0]:4000']) {
      expect(formatHostPort(parseHostPort(text))).toBe(text);
    }
  });

  it('normalizeHostPort gives one spelling per endpoint', () => {
    expect(normalizeHostPort('[0:0:0:0:0:0:0:1]:4000')).toBe('[::1]:4000');
    expect(normalizeHostPort('EXAMPLE.org:443')).toBe('example.org:443');
  });
});
