import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AttributeType, StunMethod, attributeName } from '../../src/nat/stun/constants.js';
import { bytesToIp, canonicalIp, ipToBytes, sameTransportAddress } from '../../src/nat/stun/address.js';
import type { StunAttribute } from '../../src/nat/stun/attributes.js';
import { crc32 } from '../../src/nat/stun/crc32.js';
import { longTermKey, saslPrep, shortTermKey } from '../../src/nat/stun/credentials.js';
import { StunError, StunUnknownAttributesError } from '../../src/nat/stun/errors.js';
import {
  createTransactionId,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  isStunPacket,
  messageType,
  verifyFingerprint,
  verifyIntegrity,
} from '../../src/nat/stun/message.js';
import type { StunMessage } from '../../src/nat/stun/message.js';

interface Vector {
  section: string;
  name: string;
  password: string;
  passwordAfterSaslPrep?: string;
  software?: string;
  username?: string;
  realm?: string;
  nonce?: string;
  mappedAddress?: { address: string; port: number };
  transactionId: string;
  paddingByte: number;
  hex: string[];
}

const file = JSON.parse(readFileSync(new URL('../vectors/stun/rfc5769.json', import.meta.url), 'utf8')) as { source: string; vectors: Vector[] };
const vector = (section: string): Vector => file.vectors.find((v) => v.section === section)!;
const bytesOf = (v: Vector): Buffer => Buffer.from(v.hex.join('').replace(/ /g, ''), 'hex');
const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const withoutChecks = (m: StunMessage): StunMessage => ({ ...m, attributes: m.attributes.filter((a) => a.kind !== 'message-integrity' && a.kind !== 'fingerprint') });

describe('STUN message codec: RFC 5769 test vectors', () => {
  it('names its source', () => {
    expect(file.source).toMatch(/^RFC 5769/);
    expect(file.vectors.map((v) => v.section)).toEqual(['2.1', '2.2', '2.3', '2.4']);
  });

  it('2.1 sample request: every field, integrity, fingerprint, identical re-encoding', () => {
    const v = vector('2.1');
    const bytes = bytesOf(v);
    expect(bytes.length).toBe(108);
    const m = decodeStunMessage(bytes);
    expect(m.method).toBe(StunMethod.BINDING);
    expect(m.class).toBe('request');
    expect(m.transactionId.toString('hex')).toBe(v.transactionId);
    expect(m.attributes).toEqual([
      { kind: 'software', value: 'STUN test client' },
      { kind: 'priority', value: 0x6e0001ff },
      { kind: 'ice-controlled', value: 0x932ff9b151263b36n },
      { kind: 'username', value: 'evtj:h6vY' },
      { kind: 'message-integrity', value: hex('9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2') },
      { kind: 'fingerprint', value: 0xe57a3bcf },
    ]);
    expect(getAttribute(m, 'software')?.value).toBe(v.software);
    expect(getAttribute(m, 'username')?.value).toBe(v.username);
    expect(verifyIntegrity(bytes, shortTermKey(v.password))).toBe(true);
    expect(verifyIntegrity(bytes, shortTermKey('wrong password'))).toBe(false);
    expect(verifyFingerprint(bytes)).toBe(true);
    // Verbatim re-encoding, then a fresh computation of MESSAGE-INTEGRITY and FINGERPRINT.
    expect(encodeStunMessage(m, { paddingByte: v.paddingByte })).toEqual(bytes);
    expect(encodeStunMessage(withoutChecks(m), { paddingByte: v.paddingByte, integrityKey: shortTermKey(v.password), fingerprint: true })).toEqual(bytes);
  });

  it.each([['2.2'], ['2.3']])('%s sample response: mapped address, integrity, fingerprint, identical re-encoding', (section) => {
    const v = vector(section);
    const bytes = bytesOf(v);
    const m = decodeStunMessage(bytes);
    expect(m.method).toBe(StunMethod.BINDING);
    expect(m.class).toBe('success');
    expect(m.transactionId.toString('hex')).toBe(v.transactionId);
    expect(m.attributes.map((a) => a.kind)).toEqual(['software', 'xor-mapped-address', 'message-integrity', 'fingerprint']);
    expect(getAttribute(m, 'software')?.value).toBe(v.software);
    expect(getAttribute(m, 'xor-mapped-address')?.value).toEqual(v.mappedAddress);
    expect(verifyIntegrity(bytes, shortTermKey(v.password))).toBe(true);
    expect(verifyFingerprint(bytes)).toBe(true);
    expect(encodeStunMessage(m, { paddingByte: v.paddingByte })).toEqual(bytes);
    expect(encodeStunMessage(withoutChecks(m), { paddingByte: v.paddingByte, integrityKey: shortTermKey(v.password), fingerprint: true })).toEqual(bytes);
  });

  it('2.4 long-term request: SASLprep of the password, MD5 key, identical re-encoding', () => {
    const v = vector('2.4');
    const bytes = bytesOf(v);
    const m = decodeStunMessage(bytes);
    expect(m.class).toBe('request');
    expect(m.transactionId.toString('hex')).toBe(v.transactionId);
    expect(m.attributes.slice(0, 3)).toEqual([
      { kind: 'username', value: v.username },
      { kind: 'nonce', value: v.nonce },
      { kind: 'realm', value: v.realm },
    ]);
    expect(saslPrep(v.password)).toBe(v.passwordAfterSaslPrep);
    const key = longTermKey(v.username!, v.realm!, v.password);
    expect(verifyIntegrity(bytes, key)).toBe(true);
    expect(verifyFingerprint(bytes)).toBe(false); // this sample has none
    expect(encodeStunMessage(m)).toEqual(bytes);
    expect(encodeStunMessage(withoutChecks(m), { integrityKey: key })).toEqual(bytes);
  });

  it('detects a flipped bit with integrity and fingerprint', () => {
    const v = vector('2.2');
    const bytes = bytesOf(v);
    bytes[30]! ^= 0x01; // inside XOR-MAPPED-ADDRESS
    expect(verifyIntegrity(bytes, shortTermKey(v.password))).toBe(false);
    expect(verifyFingerprint(bytes)).toBe(false);
  });
});

describe('STUN message codec', () => {
  const transactionId = hex('0102030405060708090a0b0c');

  it('puts method and class bits where RFC 8489 figure 3 says', () => {
    expect(messageType(StunMethod.BINDING, 'request')).toBe(0x0001);
    expect(messageType(StunMethod.BINDING, 'indication')).toBe(0x0011);
    expect(messageType(StunMethod.BINDING, 'success')).toBe(0x0101);
    expect(messageType(StunMethod.BINDING, 'error')).toBe(0x0111);
    expect(messageType(0xfff, 'error')).toBe(0x3fff);
    for (const cls of ['request', 'indication', 'success', 'error'] as const) {
      for (const method of [0x001, 0x003, 0x00a, 0x080, 0xabc, 0xfff]) {
        const m = decodeStunMessage(encodeStunMessage({ method, class: cls, transactionId, attributes: [] }));
        expect([m.method, m.class]).toEqual([method, cls]);
      }
    }
  });

  it('round-trips every attribute it knows, IPv4 and IPv6, with MESSAGE-INTEGRITY-SHA256', () => {
    const attributes: StunAttribute[] = [
      { kind: 'xor-mapped-address', value: { address: '203.0.113.9', port: 40000 } },
      { kind: 'xor-mapped-address', value: { address: '2001:db8::1', port: 1 } },
      { kind: 'mapped-address', value: { address: '198.51.100.7', port: 65535 } },
      { kind: 'response-origin', value: { address: '192.0.2.10', port: 3478 } },
      { kind: 'other-address', value: { address: 'fe80::1:2', port: 3479 } },
      { kind: 'username', value: 'alice:bob' },
      { kind: 'software', value: 'partyline 0.1 ☎' },
      { kind: 'realm', value: 'example.org' },
      { kind: 'nonce', value: 'abc' },
      { kind: 'error-code', value: { code: 420, reason: 'Unknown Attribute' } },
      { kind: 'unknown-attributes', value: [0x0003, 0x7fff, 0x1234] },
      { kind: 'change-request', value: { changeIp: true, changePort: false } },
      { kind: 'priority', value: 0xffffffff },
      { kind: 'use-candidate' },
      { kind: 'ice-controlling', value: 0xffffffffffffffffn },
      { kind: 'ice-controlled', value: 0n },
      { kind: 'raw', type: 0xc1a0, value: Buffer.from('comprehension-optional') },
    ];
    const key = shortTermKey('secret');
    const bytes = encodeStunMessage(
      { method: StunMethod.BINDING, class: 'success', transactionId, attributes },
      { integrityKey: key, integrityAlgorithms: ['sha1', 'sha256'], fingerprint: true },
    );
    const m = decodeStunMessage(bytes);
    expect(m.attributes.slice(0, attributes.length)).toEqual(attributes);
    expect(m.attributes.slice(attributes.length).map((a) => a.kind)).toEqual(['message-integrity', 'message-integrity-sha256', 'fingerprint']);
    expect(verifyIntegrity(bytes, key, 'sha1')).toBe(true);
    expect(verifyIntegrity(bytes, key, 'sha256')).toBe(true);
    expect(verifyIntegrity(bytes, key)).toBe(true);
    expect(verifyIntegrity(bytes, shortTermKey('other'), 'sha256')).toBe(false);
    expect(verifyFingerprint(bytes)).toBe(true);
    expect(encodeStunMessage(m)).toEqual(bytes);
  });

  it('refuses to append a second FINGERPRINT or integrity attribute', () => {
    const m: StunMessage = { method: 1, class: 'request', transactionId, attributes: [{ kind: 'fingerprint', value: 1 }] };
    expect(() => encodeStunMessage(m, { fingerprint: true })).toThrow(expect.objectContaining({ code: 'ERR_STUN_ENCODE', message: expect.stringMatching(/already carries FINGERPRINT/) }));
  });

  it.each([
    ['a host name as address', { kind: 'xor-mapped-address', value: { address: 'example.org', port: 1 } }, /XOR-MAPPED-ADDRESS: "example.org" is not an IP address/],
    ['a port out of range', { kind: 'mapped-address', value: { address: '192.0.2.1', port: 70000 } }, /port 70000/],
    ['an error code out of range', { kind: 'error-code', value: { code: 200, reason: '' } }, /ERROR-CODE: code 200, expected 300..699/],
    ['a SOFTWARE of 128 characters', { kind: 'software', value: 'x'.repeat(128) }, /SOFTWARE: more than 127 characters/],
    ['a short MESSAGE-INTEGRITY', { kind: 'message-integrity', value: Buffer.alloc(19) }, /HMAC of 19 bytes, expected 20/],
  ] as Array<[string, StunAttribute, RegExp]>)('refuses to encode %s', (_name, attribute, message) => {
    expect(() => encodeStunMessage({ method: 1, class: 'request', transactionId, attributes: [attribute] })).toThrow(
      expect.objectContaining({ code: 'ERR_STUN_ENCODE', message: expect.stringMatching(message) }),
    );
  });

  it('tells STUN from RTP, DTLS and other traffic by the first byte (RFC 7983)', () => {
    expect(isStunPacket(bytesOf(vector('2.1')))).toBe(true);
    expect(isStunPacket(Buffer.from([0x03]))).toBe(true);
    expect(isStunPacket(Buffer.from([0x80, 0x00]))).toBe(false); // RTP/RTCP: 128..191
    expect(isStunPacket(Buffer.from([0x16, 0xfe]))).toBe(false); // DTLS: 20..63
    expect(isStunPacket(Buffer.from([0x04]))).toBe(false);
    expect(isStunPacket(Buffer.alloc(0))).toBe(false);
  });

  it('makes random 96-bit transaction ids', () => {
    const a = createTransactionId();
    expect(a.length).toBe(12);
    expect(createTransactionId().equals(a)).toBe(false);
  });

  it('computes the standard CRC-32 check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  it('applies the SASLprep subset: ASCII unchanged, spaces mapped, soft hyphen dropped, NFKC, controls refused', () => {
    expect(saslPrep('VOkJxbRl1RmTxUk/WvJxBt')).toBe('VOkJxbRl1RmTxUk/WvJxBt');
    expect(saslPrep('I\u00adX')).toBe('IX');
    expect(saslPrep('user\u00a0name')).toBe('user name');
    expect(saslPrep('\u2168')).toBe('IX');
    expect(() => saslPrep('a\u0007b')).toThrow(expect.objectContaining({ code: 'ERR_STUN_PASSWORD', message: 'STUN password: character U+0007 is prohibited by SASLprep' }));
    expect(() => saslPrep('\ue000é')).toThrow(expect.objectContaining({ code: 'ERR_STUN_PASSWORD' }));
  });

  it('writes IP addresses canonically', () => {
    expect(bytesToIp(ipToBytes('2001:DB8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(bytesToIp(ipToBytes('::')!)).toBe('::');
    expect(bytesToIp(ipToBytes('fe80::1%eth0')!)).toBe('fe80::1');
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(canonicalIp('1:2:3:4:5:6:7:8')).toBe('1:2:3:4:5:6:7:8');
    expect(canonicalIp('not an ip')).toBeUndefined();
    expect(sameTransportAddress({ address: '::ffff:127.0.0.1', port: 9 }, { address: '127.0.0.1', port: 9 })).toBe(true);
  });
});

describe('STUN message codec: malformed input', () => {
  const good = bytesOf(vector('2.2'));
  const patched = (offset: number, bytes: number[], base = good): Buffer => {
    const out = Buffer.from(base);
    Buffer.from(bytes).copy(out, offset);
    return out;
  };
  /** A Binding success with one attribute (type, raw value, padding added). */
  const withAttribute = (type: number, value: Buffer, declaredLength = value.length): Buffer => {
    const pad = (4 - (value.length % 4)) % 4;
    const out = Buffer.alloc(20 + 4 + value.length + pad);
    out.writeUInt16BE(0x0101, 0);
    out.writeUInt16BE(4 + value.length + pad, 2);
    out.writeUInt32BE(0x2112a442, 4);
    out.writeUInt16BE(type, 20);
    out.writeUInt16BE(declaredLength, 22);
    value.copy(out, 24);
    return out;
  };

  it.each([
    ['a truncated header', good.subarray(0, 12), 'ERR_STUN_TRUNCATED', 'STUN header: length 12, expected at least 20'],
    ['an empty datagram', Buffer.alloc(0), 'ERR_STUN_TRUNCATED', 'STUN header: length 0, expected at least 20'],
    ['RTP (first bits 10)', patched(0, [0x80]), 'ERR_STUN_NOT_STUN', 'STUN header: first two bits 10, expected 00'],
    ['a bad magic cookie (RFC 3489)', patched(4, [0, 0, 0, 0]), 'ERR_STUN_MAGIC_COOKIE', 'STUN header: magic cookie 0x00000000, expected 0x2112a442'],
    ['a length that is not a multiple of 4 (missing padding)', patched(2, [0x00, 0x3b]), 'ERR_STUN_LENGTH', 'STUN header: message length 59 is not a multiple of 4 (attributes must be padded to 4 bytes)'],
    ['a length beyond the datagram', patched(2, [0x00, 0x40]), 'ERR_STUN_LENGTH', 'STUN header: message length 64, but 60 bytes follow the header'],
    ['a truncated datagram', good.subarray(0, 76), 'ERR_STUN_LENGTH', 'STUN header: message length 60, but 56 bytes follow the header'],
    ['an attribute length past the end', patched(22, [0x01, 0x00]), 'ERR_STUN_ATTRIBUTE_TRUNCATED', 'STUN attribute SOFTWARE at offset 20: length 256 runs past the end of the message (56 bytes left)'],
    ['an attribute past the end through its padding', withAttribute(0x8022, Buffer.from('abcd'), 6), 'ERR_STUN_ATTRIBUTE_TRUNCATED', 'STUN attribute SOFTWARE at offset 20: length 6 runs past the end of the message (4 bytes left)'],
    ['a XOR-MAPPED-ADDRESS of length 6', withAttribute(0x0020, hex('0001a147e112')), 'ERR_STUN_ATTRIBUTE', 'STUN attribute XOR-MAPPED-ADDRESS: length 6, expected 8 or 20'],
    ['a XOR-MAPPED-ADDRESS of family IPv4 and length 20', withAttribute(0x0020, Buffer.concat([hex('0001a147'), Buffer.alloc(16)])), 'ERR_STUN_ATTRIBUTE', 'STUN attribute XOR-MAPPED-ADDRESS: length 20 does not match family IPv4 (expected 8)'],
    ['an unknown address family', withAttribute(0x0001, hex('0003a147e112a643')), 'ERR_STUN_ATTRIBUTE', 'STUN attribute MAPPED-ADDRESS: family 0x03, expected 0x01 (IPv4) or 0x02 (IPv6)'],
    ['a MESSAGE-INTEGRITY of 16 bytes', withAttribute(0x0008, Buffer.alloc(16)), 'ERR_STUN_ATTRIBUTE', 'STUN attribute MESSAGE-INTEGRITY: length 16, expected 20'],
    ['a FINGERPRINT of 2 bytes', withAttribute(0x8028, Buffer.alloc(2)), 'ERR_STUN_ATTRIBUTE', 'STUN attribute FINGERPRINT: length 2, expected 4'],
    ['an ERROR-CODE of class 7', withAttribute(0x0009, hex('00000701')), 'ERR_STUN_ATTRIBUTE', 'STUN attribute ERROR-CODE: class 7, expected 3..6'],
    ['an UNKNOWN-ATTRIBUTES of odd length', withAttribute(0x000a, hex('000300')), 'ERR_STUN_ATTRIBUTE', 'STUN attribute UNKNOWN-ATTRIBUTES: length 3, expected a multiple of 2'],
    ['a USERNAME that is not UTF-8', withAttribute(0x0006, hex('c328')), 'ERR_STUN_ATTRIBUTE', 'STUN attribute USERNAME: not valid UTF-8'],
    ['a CHANGE-REQUEST of 2 bytes', withAttribute(0x0003, hex('0006')), 'ERR_STUN_ATTRIBUTE', 'STUN attribute CHANGE-REQUEST: length 2, expected 4'],
    ['an attribute after FINGERPRINT', Buffer.concat([patched(2, [0x00, 0x40]), hex('80220000')]), 'ERR_STUN_AFTER_FINGERPRINT', 'STUN attribute SOFTWARE: follows FINGERPRINT, which must be last'],
  ])('rejects %s with a typed error', (_name, input, code, message) => {
    let caught: unknown;
    try {
      decodeStunMessage(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StunError);
    expect(caught).toMatchObject({ code, message });
  });

  it('reports unknown comprehension-required attributes with the header a 420 needs', () => {
    const request = encodeStunMessage({
      method: StunMethod.BINDING,
      class: 'request',
      transactionId: hex('aaaaaaaaaaaaaaaaaaaaaaaa'),
      attributes: [
        { kind: 'raw', type: 0x7001, value: Buffer.from('x') },
        { kind: 'raw', type: 0x8fff, value: Buffer.from('optional is fine') },
        { kind: 'raw', type: 0x0026, value: Buffer.alloc(8) }, // PADDING: not supported
      ],
    });
    let caught: unknown;
    try {
      decodeStunMessage(request);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StunUnknownAttributesError);
    const error = caught as StunUnknownAttributesError;
    expect(error.code).toBe('ERR_STUN_UNKNOWN_ATTRIBUTES');
    expect(error.unknown).toEqual([0x7001, 0x0026]);
    expect(error.header).toEqual({ method: StunMethod.BINDING, class: 'request', transactionId: hex('aaaaaaaaaaaaaaaaaaaaaaaa') });
    expect(error.message).toBe('STUN message: unknown comprehension-required attribute(s) 0x7001, 0x0026');
  });

  it('ignores attributes after MESSAGE-INTEGRITY except the SHA-256 one and FINGERPRINT', () => {
    const bytes = encodeStunMessage({
      method: 1,
      class: 'request',
      transactionId: hex('aaaaaaaaaaaaaaaaaaaaaaaa'),
      attributes: [
        { kind: 'message-integrity', value: Buffer.alloc(20) },
        { kind: 'software', value: 'ignored' },
        { kind: 'raw', type: 0x7001, value: Buffer.from('ignored too, though unknown') },
      ],
    });
    expect(decodeStunMessage(bytes).attributes.map((a) => a.kind)).toEqual(['message-integrity']);
  });

  it('names attributes in messages, known or not', () => {
    expect(attributeName(AttributeType.XOR_MAPPED_ADDRESS)).toBe('XOR-MAPPED-ADDRESS');
    expect(attributeName(0x7001)).toBe('0x7001');
  });

  it('verifyIntegrity and verifyFingerprint answer false when the attribute is missing', () => {
    const bytes = encodeStunMessage({ method: 1, class: 'request', transactionId: hex('aaaaaaaaaaaaaaaaaaaaaaaa'), attributes: [] });
    expect(verifyIntegrity(bytes, Buffer.from('k'))).toBe(false);
    expect(verifyFingerprint(bytes)).toBe(false);
    expect(() => verifyFingerprint(bytes.subarray(0, 10))).toThrow(expect.objectContaining({ code: 'ERR_STUN_TRUNCATED' }));
  });
});
