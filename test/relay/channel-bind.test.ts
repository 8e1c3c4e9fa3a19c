import { describe, expect, it } from 'vitest';
import { createTransactionId, decodeStunMessage, encodeStunMessage } from '../../src/nat/stun/message.js';
import {
  ATTR_CHANNEL_NUMBER,
  CHANNEL_BIND_METHOD,
  encodeChannelBindError,
  encodeChannelBindRequest,
  encodeChannelBindSuccess,
  parseChannelBindRequest,
  parseChannelBindResponse,
  verifyChannelBindIntegrity,
} from '../../src/relay/channel-bind.js';
import { RelayError } from '../../src/relay/errors.js';
import { expectTyped, rng } from '../helpers/fuzz.js';

const key = Buffer.from('0123456789abcdef0123', 'utf8');
const other = Buffer.from('fedcba9876543210fedc', 'utf8');

function request(channel = 0x4123, username = 'AbCdEf.0'): { transactionId: Buffer; packet: Buffer } {
  const transactionId = createTransactionId();
  return { transactionId, packet: encodeChannelBindRequest({ transactionId, username, channel, key }) };
}

describe('ChannelBind request', () => {
  it('carries USERNAME, CHANNEL-NUMBER, MESSAGE-INTEGRITY and FINGERPRINT, and reads back', () => {
    const { transactionId, packet } = request();
    expect(packet.readUInt16BE(0)).toBe(0x0009);
    const types: number[] = [];
    for (let at = 20; at < packet.length; at += 4 + ((packet.readUInt16BE(at + 2) + 3) & ~3)) types.push(packet.readUInt16BE(at));
    expect(types).toEqual([0x0006, ATTR_CHANNEL_NUMBER, 0x0008, 0x8028]);
    expect(parseChannelBindRequest(packet)).toEqual({ ok: true, transactionId, username: 'AbCdEf.0', channel: 0x4123 });
  });

  it('verifies with the leg key only', () => {
    const { packet } = request();
    expect(verifyChannelBindIntegrity(packet, key)).toBe(true);
    expect(verifyChannelBindIntegrity(packet, other)).toBe(false);
  });

  it('refuses to encode a channel outside 0x4000-0x4fff', () => {
    expect(() => encodeChannelBindRequest({ transactionId: createTransactionId(), username: 'u', channel: 0x5000, key })).toThrow(
      expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_BIND' }),
    );
  });

  it('asks for a 400 when USERNAME, MESSAGE-INTEGRITY or a valid CHANNEL-NUMBER is missing', () => {
    const transactionId = createTransactionId();
    const channel = Buffer.from([0x40, 0x01, 0, 0]);
    const noIntegrity = encodeStunMessage({ method: CHANNEL_BIND_METHOD, class: 'request', transactionId, attributes: [{ kind: 'username', value: 'u' }, { kind: 'raw', type: ATTR_CHANNEL_NUMBER, value: channel }] }, { fingerprint: true });
    expect(parseChannelBindRequest(noIntegrity)).toMatchObject({ ok: false, code: 400 });
    const noChannel = encodeStunMessage({ method: CHANNEL_BIND_METHOD, class: 'request', transactionId, attributes: [{ kind: 'username', value: 'u' }] }, { integrityKey: key, fingerprint: true });
    expect(parseChannelBindRequest(noChannel)).toMatchObject({ ok: false, code: 400, reason: expect.stringContaining('CHANNEL-NUMBER') });
    const badChannel = encodeStunMessage({ method: CHANNEL_BIND_METHOD, class: 'request', transactionId, attributes: [{ kind: 'username', value: 'u' }, { kind: 'raw', type: ATTR_CHANNEL_NUMBER, value: Buffer.from([0x3f, 0xff, 0, 0]) }] }, { integrityKey: key });
    expect(parseChannelBindRequest(badChannel)).toMatchObject({ ok: false, code: 400, reason: expect.stringContaining('outside') });
  });

  it('asks for a 420 listing unknown comprehension-required attributes', () => {
    const transactionId = createTransactionId();
    const packet = encodeStunMessage({ method: CHANNEL_BIND_METHOD, class: 'request', transactionId, attributes: [{ kind: 'username', value: 'u' }, { kind: 'raw', type: 0x7777, value: Buffer.alloc(4) }] }, { integrityKey: key });
    expect(parseChannelBindRequest(packet)).toMatchObject({ ok: false, code: 420, unknown: [0x7777] });
  });

  it('throws for a bad FINGERPRINT, a Binding request and broken framing (no answer due)', () => {
    const { packet } = request();
    const badFingerprint = Buffer.from(packet);
    badFingerprint[badFingerprint.length - 1]! ^= 1;
    expect(() => parseChannelBindRequest(badFingerprint)).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_BIND', message: expect.stringContaining('FINGERPRINT') }));
    const binding = encodeStunMessage({ method: 0x001, class: 'request', transactionId: createTransactionId(), attributes: [] });
    expect(() => parseChannelBindRequest(binding)).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_BIND' }));
    expect(() => parseChannelBindRequest(packet.subarray(0, 30))).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_BIND' }));
  });

  it('gives a value or a RelayError for mutated requests', () => {
    const random = rng(Number(process.env.FUZZ_SEED ?? 0xb1d));
    const { packet } = request();
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const mutated = Buffer.from(packet.subarray(0, random() < 0.2 ? Math.floor(random() * packet.length) : packet.length));
      for (let j = 0; j < 3; j++) if (mutated.length > 0) mutated[Math.floor(random() * mutated.length)]! ^= 1 << Math.floor(random() * 8);
      seen.add(expectTyped(() => parseChannelBindRequest(mutated), RelayError));
    }
    expect(seen).toEqual(new Set(['ok', 'error']));
  });
});

describe('ChannelBind response', () => {
  it('a success carries XOR-MAPPED-ADDRESS and verifies with the leg key', () => {
    const transactionId = createTransactionId();
    const packet = encodeChannelBindSuccess(transactionId, { address: '192.0.2.1', port: 32853 }, key);
    expect(decodeStunMessage(packet)).toMatchObject({ method: CHANNEL_BIND_METHOD, class: 'success' });
    expect(parseChannelBindResponse(packet, key)).toEqual({ ok: true, transactionId, mapped: { address: '192.0.2.1', port: 32853 } });
    expect(() => parseChannelBindResponse(packet, other)).toThrow(expect.objectContaining({ code: 'ERR_RELAY_BAD_RESPONSE' }));
  });

  it('an error carries its code and reason', () => {
    const transactionId = createTransactionId();
    expect(parseChannelBindResponse(encodeChannelBindError(transactionId, 401), key)).toEqual({ ok: false, transactionId, code: 401, reason: 'Unauthorized' });
    expect(parseChannelBindResponse(encodeChannelBindError(transactionId, 420, [0x7777]), key)).toMatchObject({ ok: false, code: 420 });
  });

  it('a response to another method is refused', () => {
    const binding = encodeStunMessage({ method: 0x001, class: 'success', transactionId: createTransactionId(), attributes: [] });
    expect(() => parseChannelBindResponse(binding, key)).toThrow(expect.objectContaining({ code: 'ERR_RELAY_CHANNEL_BIND' }));
  });
});
