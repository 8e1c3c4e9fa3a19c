import { describe, expect, it } from 'vitest';
import {
  encodeFailure,
  encodeRequest,
  encodeSuccess,
  LineDecoder,
  MAX_REQUEST_LINE_BYTES,
  parseRequestLine,
  parseResponseLine,
} from '../../src/control/protocol.js';

function failure(line: string | Buffer): { id: number | null; code: string; message: string } {
  const parsed = parseRequestLine(line);
  if (parsed.ok) throw new Error(`expected a failure for ${String(line)}`);
  return { id: parsed.id, code: parsed.error.code, message: parsed.error.message };
}

describe('control requests', () => {
  it('accepts a full request, and one without v or args', () => {
    expect(parseRequestLine('{"v":1,"id":7,"command":"status","args":{"x":1}}')).toEqual({
      ok: true,
      request: { v: 1, id: 7, command: 'status', args: { x: 1 } },
    });
    expect(parseRequestLine(Buffer.from('{"id":0,"command":"phone.keys"}'))).toEqual({
      ok: true,
      request: { id: 0, command: 'phone.keys', args: {} },
    });
  });

  it('round-trips what the client encodes', () => {
    const line = encodeRequest(3, 'search', { user: 'bob' });
    expect(line.endsWith('\n')).toBe(true);
    expect(parseRequestLine(line.slice(0, -1))).toEqual({ ok: true, request: { v: 1, id: 3, command: 'search', args: { user: 'bob' } } });
  });

  it.each([
    ['not JSON', '{"id":1,', null, 'ERR_CONTROL_REQUEST', /^request is not valid JSON: /],
    ['a list', '[1,2]', null, 'ERR_CONTROL_REQUEST', /expected a JSON object \{"id", "command", "args"\}, got a list/],
    ['a number', '42', null, 'ERR_CONTROL_REQUEST', /got 42/],
    ['no id', '{"command":"status"}', null, 'ERR_CONTROL_REQUEST', /^invalid request: id: expected an integer 0\.\.2\^53-1, got nothing$/],
    ['a negative id', '{"id":-1,"command":"status"}', null, 'ERR_CONTROL_REQUEST', /id: expected an integer 0\.\.2\^53-1, got -1/],
    ['a bad command name', '{"id":4,"command":"Rm -rf"}', 4, 'ERR_CONTROL_REQUEST', /command: expected a command name \(lower case, e\.g\. "status"\), got "Rm -rf"/],
    ['args that are a list', '{"id":5,"command":"status","args":[]}', 5, 'ERR_CONTROL_REQUEST', /args: expected a JSON object of arguments, got a list of 0/],
    ['an unknown field', '{"id":6,"command":"status","argz":{}}', 6, 'ERR_CONTROL_REQUEST', /got unknown key "argz" \(did you mean "args"\?\)/],
    ['another version', '{"v":2,"id":8,"command":"status"}', 8, 'ERR_CONTROL_VERSION', /protocol version 2 is not supported; this node speaks "v": 1/],
  ])('rejects %s with a clear error, keeping the id when there is one', (_what, line, id, code, message) => {
    const result = failure(line);
    expect(result.id).toBe(id);
    expect(result.code).toBe(code);
    expect(result.message).toMatch(message);
  });

  it('rejects bytes that are not UTF-8', () => {
    expect(failure(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toEqual({ id: null, code: 'ERR_CONTROL_REQUEST', message: 'request is not valid UTF-8' });
  });

  it('never echoes a secret argument in an error', () => {
    const result = failure('{"id":1,"command":"status","args":{"password":"hunter22"},"extra":{"token":"abc"}}');
    expect(result.message).not.toMatch(/hunter22|abc/);
  });
});

describe('control responses', () => {
  it('encodes success and failure lines and decodes them back', () => {
    expect(encodeSuccess(1, { a: 1 })).toBe('{"v":1,"id":1,"ok":true,"result":{"a":1}}\n');
    expect(encodeSuccess(2, undefined)).toBe('{"v":1,"id":2,"ok":true,"result":null}\n');
    expect(encodeFailure(null, { code: 'ERR_X', message: 'm' })).toBe('{"v":1,"id":null,"ok":false,"error":{"code":"ERR_X","message":"m"}}\n');
    expect(parseResponseLine(encodeSuccess(1, [1, 2]).trim())).toEqual({ v: 1, id: 1, ok: true, result: [1, 2] });
    expect(parseResponseLine(encodeFailure(9, { code: 'ERR_Y', message: 'n' }).trim())).toEqual({ v: 1, id: 9, ok: false, error: { code: 'ERR_Y', message: 'n' } });
  });

  it('refuses to encode a result that is not JSON data', () => {
    expect(() => encodeSuccess(1, { n: 1n })).toThrow();
  });

  it.each([
    ['not JSON', 'hello', /not valid JSON/],
    ['no ok', '{"id":1,"result":1}', /invalid response/],
    ['a failure without code', '{"id":1,"ok":false,"error":{"message":"x"}}', /invalid response: error\.code/],
  ])('rejects a response that is %s with ERR_CONTROL_PROTOCOL', (_what, line, message) => {
    expect(() => parseResponseLine(line)).toThrow(expect.objectContaining({ code: 'ERR_CONTROL_PROTOCOL', message: expect.stringMatching(message) }));
  });
});

describe('LineDecoder', () => {
  it('splits lines across chunks, drops blank lines and a trailing CR', () => {
    const decoder = new LineDecoder(100);
    expect(decoder.push(Buffer.from('{"a"')).map(String)).toEqual([]);
    expect(decoder.pending).toBe(4);
    expect(decoder.push(Buffer.from(':1}\r\n\n{"b":2}\n{"c"')).map(String)).toEqual(['{"a":1}', '{"b":2}']);
    expect(decoder.push(Buffer.from(':3}\n')).map(String)).toEqual(['{"c":3}']);
    expect(decoder.pending).toBe(0);
  });

  it('keeps a multi-byte character split between chunks intact', () => {
    const decoder = new LineDecoder(100);
    const bytes = Buffer.from('{"user":"Zoë"}\n');
    const cut = bytes.indexOf(0xc3) + 1;
    expect(decoder.push(bytes.subarray(0, cut))).toEqual([]);
    expect(decoder.push(bytes.subarray(cut)).map((b) => b.toString('utf8'))).toEqual(['{"user":"Zoë"}']);
  });

  it('accepts a line of exactly the limit and throws ERR_CONTROL_LINE_TOO_LONG past it, before the newline arrives', () => {
    const decoder = new LineDecoder(MAX_REQUEST_LINE_BYTES, 'request');
    expect(decoder.push(Buffer.from(`${'x'.repeat(MAX_REQUEST_LINE_BYTES)}\n`))[0]?.length).toBe(MAX_REQUEST_LINE_BYTES);
    decoder.push(Buffer.alloc(MAX_REQUEST_LINE_BYTES, 0x61));
    expect(() => decoder.push(Buffer.from('a'))).toThrow(
      expect.objectContaining({ code: 'ERR_CONTROL_LINE_TOO_LONG', message: 'request line over the 65536-byte limit' }),
    );
    expect(decoder.pending).toBe(0);
  });

  it('gives the last line without a newline at the end of the stream', () => {
    const decoder = new LineDecoder(100);
    expect(decoder.push(Buffer.from('{"a":1}\n{"b":2}\r')).map(String)).toEqual(['{"a":1}']);
    expect(decoder.end()?.toString()).toBe('{"b":2}');
    expect(decoder.end()).toBeUndefined();
    decoder.push(Buffer.from('\r'));
    expect(decoder.end()).toBeUndefined();
  });
});
