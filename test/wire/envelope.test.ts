import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope } from '../../src/wire/envelope.js';

const bytes = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('message envelope', () => {
  it('round-trips requests, answers and notices', () => {
    for (const envelope of [
      { v: 1, type: 'login', id: 7, body: { user: 'alice' } },
      { v: 1, type: 'login', re: 7, body: { ok: true } },
      { v: 1, type: 'presence.update', body: {} },
    ]) {
      expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual(envelope);
    }
  });

  it.each([
    ['not JSON', Buffer.from('{'), 'ERR_WIRE_ENCODING', /not valid JSON/],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'ERR_WIRE_ENCODING', /UTF-8/],
    ['an array', bytes([1, 2]), 'ERR_WIRE_ENVELOPE', /expected an object, got array/],
    ['wrong version', bytes({ v: 2, type: 'a', body: {} }), 'ERR_WIRE_VERSION', /envelope.v: expected 1, got 2/],
    ['missing type', bytes({ v: 1, body: {} }), 'ERR_WIRE_ENVELOPE', /envelope.type/],
    ['bad type', bytes({ v: 1, type: 'Login!', body: {} }), 'ERR_WIRE_ENVELOPE', /envelope.type/],
    ['zero id', bytes({ v: 1, type: 'a', id: 0, body: {} }), 'ERR_WIRE_ENVELOPE', /envelope.id: expected an integer/],
    ['fractional re', bytes({ v: 1, type: 'a', re: 1.5, body: {} }), 'ERR_WIRE_ENVELOPE', /envelope.re/],
    ['null body', bytes({ v: 1, type: 'a', body: null }), 'ERR_WIRE_ENVELOPE', /envelope.body: expected an object, got null/],
    ['unknown field', bytes({ v: 1, type: 'a', body: {}, extra: 1 }), 'ERR_WIRE_ENVELOPE', /envelope.extra: unknown field/],
  ])('rejects %s with a typed error', (_name, input, code, message) => {
    expect(() => decodeEnvelope(input)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });
});
