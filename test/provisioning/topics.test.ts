import { describe, expect, it } from 'vitest';
import {
  MAX_PAYLOAD_BYTES, classifyTopic, commandErrorId, decodeCommand, decodeDesired, decodeReport, deviceTopics, encodeDesired, encodeReport, encodeResponse,
} from '../../src/provisioning/topics.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('provisioning topics', () => {
  const t = deviceTopics('partyline', 'gt4azhixjrjfkavr');

  it('names every topic of a device under <prefix>/<deviceId>/', () => {
    expect(t).toMatchObject({
      status: 'partyline/gt4azhixjrjfkavr/status',
      info: 'partyline/gt4azhixjrjfkavr/info',
      desired: 'partyline/gt4azhixjrjfkavr/config/desired',
      reported: 'partyline/gt4azhixjrjfkavr/config/reported',
      telemetry: 'partyline/gt4azhixjrjfkavr/telemetry',
      subscriptions: ['partyline/gt4azhixjrjfkavr/config/desired', 'partyline/gt4azhixjrjfkavr/cmd/+'],
    });
    expect(t.command('call')).toBe('partyline/gt4azhixjrjfkavr/cmd/call');
    expect(t.response('log-level')).toBe('partyline/gt4azhixjrjfkavr/cmd/log-level/response');
    expect(t.event('hook')).toBe('partyline/gt4azhixjrjfkavr/event/hook');
    expect(deviceTopics('site/a', 'x1').status).toBe('site/a/x1/status');
  });

  it('refuses device ids and prefixes that would break the topic tree', () => {
    for (const id of ['', 'a/b', 'a+', '#', 'x'.repeat(65)]) expect(() => deviceTopics('partyline', id)).toThrow(/device id/);
    for (const prefix of ['', '/p', 'p/', 'a/#', '+']) expect(() => deviceTopics(prefix, 'abc')).toThrow(/topic prefix/);
  });

  it('classifies what arrives', () => {
    expect(classifyTopic(t, t.desired)).toEqual({ kind: 'desired' });
    expect(classifyTopic(t, t.command('status'))).toEqual({ kind: 'command', name: 'status' });
    expect(classifyTopic(t, t.response('status'))).toEqual({ kind: 'other' });
    expect(classifyTopic(t, 'partyline/other/config/desired')).toEqual({ kind: 'other' });
  });

  it('decodes desired configurations and round-trips them', () => {
    const desired = { version: 7, config: { account: { user: 'alice' } } };
    expect(decodeDesired(bytes(encodeDesired(desired)))).toEqual(desired);
    expect(decodeDesired(bytes('{"version":"2024-05-01.1","config":{}}'))).toEqual({ version: '2024-05-01.1', config: {} });
    expect(decodeDesired(Buffer.alloc(0))).toBeNull();
  });

  it.each([
    ['not json', /expected a JSON object, got text that is not JSON/],
    ['[1,2]', /expected a JSON object, got an array/],
    ['"text"', /expected a JSON object, got "text"/],
    ['{"config":{}}', /version: expected an integer >= 0 or 1-64 printable characters, got nothing/],
    ['{"version":-1,"config":{}}', /version: .* got -1/],
    ['{"version":"has space","config":{}}', /version: .* got "has space"/],
    ['{"version":1}', /config: expected a map of settings, got nothing/],
    ['{"version":1,"config":{},"extra":true}', /expected only "version" and "config", got "extra"/],
  ])('rejects the desired payload %s with a clear error', (payload, message) => {
    expect(() => decodeDesired(bytes(payload))).toThrow(message);
  });

  it('refuses oversized payloads before parsing them', () => {
    expect(() => decodeDesired(Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20))).toThrow(/bytes, expected at most/);
  });

  it('encodes and decodes reports', () => {
    const report = { version: 3, status: 'rolled-back' as const, errors: ['did not log in within 60 s'], at: '2026-01-01T00:00:00.000Z' };
    expect(decodeReport(bytes(encodeReport(report)))).toEqual(report);
    expect(() => decodeReport(bytes('{"version":3,"status":"maybe","errors":[]}'))).toThrow(/applied\|rejected\|rolled-back/);
  });

  it('decodes commands; an error still carries the correlation id when there is one', () => {
    expect(decodeCommand('call', bytes('{"id":"42","args":{"user":"bob"}}'))).toEqual({ id: '42', args: { user: 'bob' } });
    expect(decodeCommand('status', bytes('{"id":"x"}'))).toEqual({ id: 'x', args: {} });
    const unknown = (() => {
      try {
        decodeCommand('format-disk', bytes('{"id":"7"}'));
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(unknown).toMatchObject({ code: 'ERR_PROVISIONING_PAYLOAD', message: expect.stringMatching(/unknown command "format-disk"/) as string });
    expect(commandErrorId(unknown)).toBe('7');
    expect(() => decodeCommand('call', bytes('{"args":[]}'))).toThrow(/id: expected a correlation id .*args: expected an object/);
    expect(encodeResponse({ id: '42', ok: false, error: { code: 'ERR_X', message: 'no' } })).toBe('{"id":"42","ok":false,"error":{"code":"ERR_X","message":"no"}}');
  });
});
