import { describe, expect, it } from 'vitest';
import { decodePublicKey, isIpAddress, isMqttUrl } from '../../src/config/formats.js';

describe('decodePublicKey', () => {
  const bytes = Uint8Array.from({ length: 32 }, (_, i) => i);
  const hex = Buffer.from(bytes).toString('hex');
  const b64 = Buffer.from(bytes).toString('base64');

  it('decodes hex, base64 with and without padding, and base64url', () => {
    expect(decodePublicKey(hex)).toEqual(bytes);
    expect(decodePublicKey(hex.toUpperCase())).toEqual(bytes);
    expect(decodePublicKey(b64)).toEqual(bytes);
    expect(decodePublicKey(b64.replace(/=$/, ''))).toEqual(bytes);
    expect(decodePublicKey(Buffer.from(bytes).toString('base64url'))).toEqual(bytes);
  });

  it('rejects keys of the wrong length or alphabet', () => {
    expect(decodePublicKey(hex.slice(2))).toBeUndefined();
    expect(decodePublicKey(`${hex}00`)).toBeUndefined();
    expect(decodePublicKey(Buffer.alloc(31).toString('base64'))).toBeUndefined();
    expect(decodePublicKey(Buffer.alloc(33).toString('base64'))).toBeUndefined();
    expect(decodePublicKey(`${'z'.repeat(63)}!`)).toBeUndefined();
  });
});

describe('isMqttUrl', () => {
  it.each(['mqtt://broker:1883', 'mqtts://u:p@broker.example.net:8883', 'ws://10.0.0.1/mqtt', 'wss://broker/mqtt'])('accepts %s', (url) => {
    expect(isMqttUrl(url)).toBe(true);
  });
  it.each(['http://broker', 'broker:1883', 'mqtt://', ''])('rejects %j', (url) => {
    expect(isMqttUrl(url)).toBe(false);
  });
});

describe('isIpAddress', () => {
  it('accepts IPv4 and IPv6 bind addresses only', () => {
    expect(['0.0.0.0', '::', '192.0.2.1', 'fe80::1'].map(isIpAddress)).toEqual([true, true, true, true]);
    expect(['eth0', 'localhost', '0.0.0.0:1', ''].map(isIpAddress)).toEqual([false, false, false, false]);
  });
});
