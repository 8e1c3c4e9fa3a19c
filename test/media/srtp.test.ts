import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SrtpError } from '../../src/media/errors.js';
import { encodeRtpPacket } from '../../src/media/rtp.js';
import {
  ReplayWindow,
  SRTP_PROFILES,
  SrtpContext,
  aesCmKeystream,
  deriveSessionKey,
  deriveSessionKeys,
  estimateSrtpIndex,
} from '../../src/media/srtp.js';
import type { SrtpContextOptions, SrtpProfile } from '../../src/media/srtp.js';
import { expectTyped, rng } from '../helpers/fuzz.js';

const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../vectors/srtp/${name}`, import.meta.url), 'utf8')) as T;
const hex = (text: string | string[]): Buffer => Buffer.from((Array.isArray(text) ? text.join('') : text).replace(/\s+/g, ''), 'hex');
const up = (b: Buffer): string => b.toString('hex').toUpperCase();

interface Rfc3711 {
  source: string;
  b2: { sessionKey: string; sessionSalt: string; offset: string; ssrc: string; segmentBlocks: number; blocks: { blockIndex: number; counter: string; keystream: string }[] };
  b3: {
    masterKey: string;
    masterSalt: string;
    cipherKey: { label: number; aesInput: string; value: string };
    cipherSalt: { label: number; aesInput: string; aesOutput: string; value: string };
    authKey: { label: number; length: number; blocks: { aesInput: string; output: string }[] };
  };
}
interface Rfc6188 { masterKey: string; masterSalt: string; cipherKey: { label: number; value: string }; cipherSalt: { label: number; value: string }; authKey: { label: number; value: string } }
interface Rfc7714 {
  sessionKey128: string;
  sessionKey256: string;
  sessionSalt: string;
  srtp: { plaintext: string[]; protected128: string[]; protected256: string[]; payloadText: string };
  srtcp: { index: string; plaintext: string[]; encrypted128: string[]; authenticatedOnly128: string[]; encrypted256: string[]; authenticatedOnly256: string[] };
}
interface LibsrtpCase { masterKey: string; masterSalt: string; rtpPlaintext: string; srtpProtected: string; rtcpPlaintext: string; srtcpIndex: number; srtcpProtected: string }
interface Libsrtp { aesCm128HmacSha1_80: LibsrtpCase; aeadAes128Gcm: LibsrtpCase }

const rfc3711 = load<Rfc3711>('rfc3711.json');
const rfc6188 = load<Rfc6188>('rfc6188.json');
const rfc7714 = load<Rfc7714>('rfc7714.json');
const libsrtp = load<Libsrtp>('libsrtp.json');

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    if (err instanceof SrtpError) return err.code;
    throw err;
  }
  return undefined;
}

const PROFILES = Object.keys(SRTP_PROFILES) as SrtpProfile[];

/** A sender and a receiver context sharing one fresh master key. */
function pair(profile: SrtpProfile, extra: Partial<SrtpContextOptions> = {}): { tx: SrtpContext; rx: SrtpContext } {
  const p = SRTP_PROFILES[profile];
  const masterKey = randomBytes(p.masterKeyLength);
  const masterSalt = randomBytes(p.masterSaltLength);
  const options = { profile, masterKey, masterSalt, ...extra } as SrtpContextOptions;
  return { tx: new SrtpContext(options), rx: new SrtpContext(options) };
}

function rtp(seq: number, ssrc = 0x01020304, payload = Buffer.from(`frame ${seq}`)): Buffer {
  return encodeRtpPacket({ payloadType: 111, marker: false, sequenceNumber: seq & 0xffff, timestamp: (seq * 960) >>> 0, ssrc, csrcs: [], payload, padding: 0 });
}

const rtcp = (ssrc = 0x01020304): Buffer => {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc, 4);
  b.write('sender info goes here', 8);
  return b;
};

describe('RFC 3711 Appendix B.2: AES-CM keystream', () => {
  it('names its source', () => {
    expect(rfc3711.source).toMatch(/^RFC 3711/);
  });

  it('reproduces the six published blocks of the 65282-block segment', () => {
    const b2 = rfc3711.b2;
    // SSRC 0 and index 0: the IV is the salt shifted by 16 bits — the published offset.
    expect(up(Buffer.concat([hex(b2.sessionSalt), Buffer.alloc(2)]))).toBe(b2.offset);
    const keystream = aesCmKeystream(hex(b2.sessionKey), hex(b2.offset), b2.segmentBlocks * 16);
    for (const block of b2.blocks) {
      expect(up(keystream.subarray(block.blockIndex * 16, block.blockIndex * 16 + 16))).toBe(block.keystream);
      // Each block is also the keystream started at its own counter.
      expect(up(aesCmKeystream(hex(b2.sessionKey), hex(block.counter), 16))).toBe(block.keystream);
    }
  });
});

describe('RFC 3711 Appendix B.3 and RFC 6188 §7.2: key derivation', () => {
  const b3 = rfc3711.b3;
  const key = hex(b3.masterKey);
  const salt = hex(b3.masterSalt);

  it('cipher key (label 0)', () => {
    expect(up(deriveSessionKey(key, salt, b3.cipherKey.label, 16))).toBe(b3.cipherKey.value);
    expect(up(aesCmKeystream(key, hex(b3.cipherKey.aesInput), 16))).toBe(b3.cipherKey.value);
  });

  it('cipher salt (label 2): the first 14 bytes of the AES output', () => {
    expect(up(deriveSessionKey(key, salt, b3.cipherSalt.label, 16))).toBe(b3.cipherSalt.aesOutput);
    expect(up(deriveSessionKey(key, salt, b3.cipherSalt.label, 14))).toBe(b3.cipherSalt.value);
  });

  it('94-octet auth key (label 1), block by block', () => {
    const auth = deriveSessionKey(key, salt, b3.authKey.label, b3.authKey.length);
    expect(up(auth)).toBe(b3.authKey.blocks.map((b) => b.output).join(''));
    for (const block of b3.authKey.blocks.slice(0, 5)) expect(up(aesCmKeystream(key, hex(block.aesInput), 16))).toBe(block.output);
  });

  it('deriveSessionKeys gives AES_CM_128_HMAC_SHA1_80 its 16/20/14-byte session keys', () => {
    const keys = deriveSessionKeys('AES_CM_128_HMAC_SHA1_80', key, salt, 'rtp');
    expect(up(keys.encryptionKey)).toBe(b3.cipherKey.value);
    expect(up(keys.salt)).toBe(b3.cipherSalt.value);
    expect(up(keys.authenticationKey)).toBe(b3.authKey.blocks.map((b) => b.output).join('').slice(0, 40));
    // SRTCP uses labels 3–5: different keys.
    const rtcpKeys = deriveSessionKeys('AES_CM_128_HMAC_SHA1_80', key, salt, 'rtcp');
    expect(rtcpKeys.encryptionKey.equals(keys.encryptionKey)).toBe(false);
  });

  it('RFC 6188 §7.2: the AES-256 PRF', () => {
    const k = hex(rfc6188.masterKey);
    const s = hex(rfc6188.masterSalt);
    expect(deriveSessionKey(k, s, rfc6188.cipherKey.label, 32).toString('hex')).toBe(rfc6188.cipherKey.value);
    expect(deriveSessionKey(k, s, rfc6188.cipherSalt.label, 14).toString('hex')).toBe(rfc6188.cipherSalt.value);
    expect(deriveSessionKey(k, s, rfc6188.authKey.label, 20).toString('hex')).toBe(rfc6188.authKey.value);
  });

  it('index DIV kdr lands in the low 48 bits of the PRF input', () => {
    const r = 0x0102_0304_0506;
    const iv = Buffer.concat([salt, Buffer.alloc(2)]);
    iv[7]! ^= 0;
    Buffer.from('010203040506', 'hex').forEach((byte, i) => (iv[8 + i]! ^= byte));
    expect(deriveSessionKey(key, salt, 0, 16, r)).toEqual(aesCmKeystream(key, iv, 16));
  });
});

describe('libSRTP reference packets (through the key derivation)', () => {
  it.each<[string, SrtpProfile, LibsrtpCase]>([
    ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_80', libsrtp.aesCm128HmacSha1_80],
    ['AEAD_AES_128_GCM, 96-bit master salt', 'AEAD_AES_128_GCM', libsrtp.aeadAes128Gcm],
  ])('%s: protect gives the reference bytes, unprotect gives the packet back', (_name, profile, v) => {
    const options = { profile, masterKey: hex(v.masterKey), masterSalt: hex(v.masterSalt), initialSrtcpIndex: v.srtcpIndex };
    const tx = new SrtpContext(options);
    const rx = new SrtpContext(options);
    expect(tx.protectRtp(hex(v.rtpPlaintext)).toString('hex')).toBe(v.srtpProtected);
    expect(rx.unprotectRtp(hex(v.srtpProtected)).toString('hex')).toBe(v.rtpPlaintext);
    expect(tx.protectRtcp(hex(v.rtcpPlaintext)).toString('hex')).toBe(v.srtcpProtected);
    expect(rx.unprotectRtcp(hex(v.srtcpProtected)).toString('hex')).toBe(v.rtcpPlaintext);
  });

  it('AES_CM_128_HMAC_SHA1_32: the same ciphertext with the 80-bit tag cut to 32 bits; SRTCP keeps 80 bits', () => {
    const v = libsrtp.aesCm128HmacSha1_80;
    const options = { profile: 'AES_CM_128_HMAC_SHA1_32' as const, masterKey: hex(v.masterKey), masterSalt: hex(v.masterSalt), initialSrtcpIndex: v.srtcpIndex };
    const tx = new SrtpContext(options);
    const protectedRtp = tx.protectRtp(hex(v.rtpPlaintext));
    expect(protectedRtp.toString('hex')).toBe(v.srtpProtected.slice(0, 2 * (28 + 4)));
    expect(tx.srtpOverhead).toBe(4);
    expect(tx.protectRtcp(hex(v.rtcpPlaintext)).toString('hex')).toBe(v.srtcpProtected);
    expect(new SrtpContext(options).unprotectRtp(protectedRtp).toString('hex')).toBe(v.rtpPlaintext);
  });
});

describe('RFC 7714 §16–17: AEAD_AES_128_GCM and AEAD_AES_256_GCM', () => {
  const cases: [string, SrtpProfile, string, 'protected128' | 'protected256', '128' | '256'][] = [
    ['AEAD_AES_128_GCM', 'AEAD_AES_128_GCM', rfc7714.sessionKey128, 'protected128', '128'],
    ['AEAD_AES_256_GCM', 'AEAD_AES_256_GCM', rfc7714.sessionKey256, 'protected256', '256'],
  ];
  const context = (profile: SrtpProfile, key: string): SrtpContext => {
    const keys = { encryptionKey: hex(key), authenticationKey: Buffer.alloc(0), salt: hex(rfc7714.sessionSalt) };
    return new SrtpContext({ profile, sessionKeys: { rtp: keys, rtcp: keys }, initialSrtcpIndex: parseInt(rfc7714.srtcp.index, 16) });
  };

  it.each(cases)('%s SRTP: encryption and decryption', (_name, profile, key, field) => {
    const plain = hex(rfc7714.srtp.plaintext);
    expect(plain.subarray(12).toString()).toBe(rfc7714.srtp.payloadText);
    expect(context(profile, key).protectRtp(plain)).toEqual(hex(rfc7714.srtp[field]));
    expect(context(profile, key).unprotectRtp(hex(rfc7714.srtp[field]))).toEqual(plain);
  });

  it.each(cases)('%s SRTCP: encrypted (E = 1) and authenticated only (E = 0), both ways', (_name, profile, key, _field, bits) => {
    const plain = hex(rfc7714.srtcp.plaintext);
    const encrypted = hex(rfc7714.srtcp[`encrypted${bits}`]);
    const authOnly = hex(rfc7714.srtcp[`authenticatedOnly${bits}`]);
    expect(context(profile, key).protectRtcp(plain)).toEqual(encrypted);
    expect(context(profile, key).protectRtcp(plain, { encrypt: false })).toEqual(authOnly);
    expect(context(profile, key).unprotectRtcp(encrypted)).toEqual(plain);
    expect(context(profile, key).unprotectRtcp(authOnly)).toEqual(plain);
  });

  it('a tampered RFC 7714 packet does not authenticate', () => {
    const wire = hex(rfc7714.srtp.protected128);
    for (const at of [1, 12, wire.length - 1]) {
      const bad = Buffer.from(wire);
      bad[at]! ^= 0x01;
      expect(codeOf(() => context('AEAD_AES_128_GCM', rfc7714.sessionKey128).unprotectRtp(bad))).toBe('ERR_SRTP_AUTH');
    }
  });
});

describe.each(PROFILES)('%s: protection round trips', (profile) => {
  it('round-trips a stream across the sequence-number wrap; both sides move to ROC 1', () => {
    const { tx, rx } = pair(profile);
    for (let seq = 65500; seq < 65536 + 40; seq++) {
      const packet = rtp(seq);
      const wire = tx.protectRtp(packet);
      expect(wire.length).toBe(packet.length + tx.srtpOverhead);
      expect(wire.subarray(0, 12)).toEqual(packet.subarray(0, 12));
      expect(wire.subarray(12, packet.length).equals(packet.subarray(12))).toBe(false);
      expect(rx.unprotectRtp(wire)).toEqual(packet);
    }
    expect(tx.rolloverCounter(0x01020304, 'send')).toBe(1);
    expect(rx.rolloverCounter(0x01020304, 'receive')).toBe(1);
  });

  it('keeps CSRCs, header extension and padding in the clear and authenticated', () => {
    const { tx, rx } = pair(profile);
    const packet = encodeRtpPacket({
      payloadType: 96,
      marker: true,
      sequenceNumber: 7,
      timestamp: 1,
      ssrc: 9,
      csrcs: [1, 2],
      extension: { profile: 0xbede, data: Buffer.from('10aa0000', 'hex') },
      payload: Buffer.alloc(33, 5),
      padding: 3,
    });
    const wire = tx.protectRtp(packet);
    expect(wire.subarray(0, 24)).toEqual(packet.subarray(0, 24));
    const bad = Buffer.from(wire);
    bad[21]! ^= 0xff; // inside the header extension
    expect(codeOf(() => rx.unprotectRtp(bad))).toBe('ERR_SRTP_AUTH');
    expect(rx.unprotectRtp(wire)).toEqual(packet);
  });

  it('accepts reordering across the wrap: 65535 after 0 is guessed at ROC − 1', () => {
    const { tx, rx } = pair(profile);
    const wires = new Map<number, Buffer>();
    for (const seq of [65533, 65534, 65535, 65536, 65537]) wires.set(seq, tx.protectRtp(rtp(seq)));
    for (const seq of [65533, 65536, 65537, 65535, 65534]) expect(rx.unprotectRtp(wires.get(seq)!)).toEqual(rtp(seq));
    expect(rx.rolloverCounter(0x01020304, 'receive')).toBe(1);
  });

  it('drops tampered packets without disturbing the stream (header, payload, tag)', () => {
    const { tx, rx } = pair(profile);
    const wire = tx.protectRtp(rtp(100));
    for (const at of [2, 8, 13, wire.length - 1]) {
      const bad = Buffer.from(wire);
      bad[at]! ^= 0x80;
      expect(codeOf(() => rx.unprotectRtp(bad))).toBe('ERR_SRTP_AUTH');
    }
    expect(rx.rolloverCounter(0x01020304, 'receive')).toBeUndefined();
    expect(rx.unprotectRtp(wire)).toEqual(rtp(100));
  });

  it('drops a replayed packet, and one behind the window; accepts in-window reordering', () => {
    const { tx, rx } = pair(profile, { replayWindow: 64 });
    const wires = Array.from({ length: 200 }, (_, seq) => tx.protectRtp(rtp(seq)));
    expect(rx.unprotectRtp(wires[5]!)).toEqual(rtp(5));
    expect(rx.unprotectRtp(wires[3]!)).toEqual(rtp(3));
    expect(codeOf(() => rx.unprotectRtp(wires[5]!))).toBe('ERR_SRTP_REPLAY');
    expect(codeOf(() => rx.unprotectRtp(wires[3]!))).toBe('ERR_SRTP_REPLAY');
    for (let seq = 6; seq < 200; seq++) rx.unprotectRtp(wires[seq]!);
    expect(codeOf(() => rx.unprotectRtp(wires[199 - 64]!))).toBe('ERR_SRTP_REPLAY'); // just behind the window
    expect(codeOf(() => rx.unprotectRtp(wires[199]!))).toBe('ERR_SRTP_REPLAY');
  });

  it('a 64-packet window still takes a packet 63 behind the newest', () => {
    const { tx, rx } = pair(profile, { replayWindow: 64 });
    const wires = Array.from({ length: 100 }, (_, seq) => tx.protectRtp(rtp(seq)));
    for (let seq = 0; seq < 100; seq++) if (seq !== 36) rx.unprotectRtp(wires[seq]!);
    expect(rx.unprotectRtp(wires[36]!)).toEqual(rtp(36));
  });

  it('the sender will not reuse a sequence number (it would reuse keystream)', () => {
    const { tx } = pair(profile);
    tx.protectRtp(rtp(10));
    expect(codeOf(() => tx.protectRtp(rtp(10, 0x01020304, Buffer.from('other'))))).toBe('ERR_SRTP_REPLAY');
    expect(tx.protectRtp(rtp(11)).length).toBeGreaterThan(12);
  });

  it('streams of different SSRCs keep separate state', () => {
    const { tx, rx } = pair(profile);
    const a = tx.protectRtp(rtp(1, 0xaaaa));
    const b = tx.protectRtp(rtp(1, 0xbbbb));
    expect(rx.unprotectRtp(b)).toEqual(rtp(1, 0xbbbb));
    expect(rx.unprotectRtp(a)).toEqual(rtp(1, 0xaaaa));
  });

  it('SRTCP: encrypted and authenticated-only round trips, per-SSRC index, replay and tamper', () => {
    const { tx, rx } = pair(profile);
    const packet = rtcp();
    const first = tx.protectRtcp(packet);
    const second = tx.protectRtcp(packet, { encrypt: false });
    expect(first.length).toBe(packet.length + tx.srtcpOverhead);
    // RFC 3711: E‖index before the tag; RFC 7714: after it.
    const eIndexAt = (wire: Buffer): number => (SRTP_PROFILES[profile].aead ? wire.length - 4 : wire.length - 4 - SRTP_PROFILES[profile].srtcpTagLength);
    const eIndex = (wire: Buffer): number => wire.readUInt32BE(eIndexAt(wire));
    expect(eIndex(first)).toBe(0x80000000);
    expect(eIndex(second)).toBe(0x00000001);
    expect(first.subarray(8, packet.length).equals(packet.subarray(8))).toBe(false);
    expect(second.subarray(0, packet.length)).toEqual(packet);
    expect(rx.unprotectRtcp(second)).toEqual(packet);
    expect(rx.unprotectRtcp(first)).toEqual(packet);
    expect(codeOf(() => rx.unprotectRtcp(first))).toBe('ERR_SRTP_REPLAY');
    const third = tx.protectRtcp(packet);
    expect(eIndex(third)).toBe(0x80000002);
    const flippedE = Buffer.from(third);
    flippedE[eIndexAt(third)]! ^= 0x80;
    expect(codeOf(() => rx.unprotectRtcp(flippedE))).toBe('ERR_SRTP_AUTH');
    const flippedBody = Buffer.from(third);
    flippedBody[10]! ^= 1;
    expect(codeOf(() => rx.unprotectRtcp(flippedBody))).toBe('ERR_SRTP_AUTH');
    expect(rx.unprotectRtcp(third)).toEqual(packet);
    // Another SSRC starts its own index at 0.
    expect(eIndex(tx.protectRtcp(rtcp(0x0d0e0f10)))).toBe(0x80000000);
  });

  it('a packet protected under another key does not authenticate', () => {
    const a = pair(profile);
    const b = pair(profile);
    expect(codeOf(() => b.rx.unprotectRtp(a.tx.protectRtp(rtp(1))))).toBe('ERR_SRTP_AUTH');
    expect(codeOf(() => b.rx.unprotectRtcp(a.tx.protectRtcp(rtcp())))).toBe('ERR_SRTP_AUTH');
  });
});

describe('packet index (RFC 3711 §3.3.1, Appendix A)', () => {
  it.each([
    [1, 65535, 65537],
    [65535, 65537, 65535],
    [100, 65536 + 50, 65536 + 100],
    [40000, 5, 40000 - 65536],
    [5, 3 * 65536 + 40000, 4 * 65536 + 5],
    [30000, 3 * 65536 + 40000, 3 * 65536 + 30000],
  ])('SEQ %i after highest index %i → %i', (seq, highest, index) => {
    expect(estimateSrtpIndex(seq, highest)).toBe(index);
  });

  it('a receiver joining late needs the sender’s rollover counter', () => {
    const { tx, rx } = pair('AES_CM_128_HMAC_SHA1_80', { initialRolloverCounter: 5 });
    const wire = tx.protectRtp(rtp(10));
    expect(rx.unprotectRtp(wire)).toEqual(rtp(10));
    expect(rx.rolloverCounter(0x01020304, 'receive')).toBe(5);
    const stranger = new SrtpContext({ profile: 'AES_CM_128_HMAC_SHA1_80', masterKey: Buffer.alloc(16, 1), masterSalt: Buffer.alloc(14, 2) });
    const sender = new SrtpContext({ profile: 'AES_CM_128_HMAC_SHA1_80', masterKey: Buffer.alloc(16, 1), masterSalt: Buffer.alloc(14, 2), initialRolloverCounter: 5 });
    expect(codeOf(() => stranger.unprotectRtp(sender.protectRtp(rtp(10))))).toBe('ERR_SRTP_AUTH');
  });

  it('a packet from before the start of the stream cannot be placed', () => {
    const options = { profile: 'AEAD_AES_128_GCM' as const, masterKey: randomBytes(16), masterSalt: randomBytes(12) };
    const rx = new SrtpContext(options);
    rx.unprotectRtp(new SrtpContext(options).protectRtp(rtp(10)));
    // SEQ 40000 after highest index 10 can only be ROC − 1 = −1.
    expect(codeOf(() => rx.unprotectRtp(new SrtpContext(options).protectRtp(rtp(40000))))).toBe('ERR_SRTP_INDEX');
  });

  it('a key protects 2^48 SRTP packets and 2^31 SRTCP packets, no more', () => {
    const { tx } = pair('AES_CM_128_HMAC_SHA1_80', { initialRolloverCounter: 0xffffffff, initialSrtcpIndex: 0x7fffffff });
    tx.protectRtp(rtp(65535));
    expect(codeOf(() => tx.protectRtp(rtp(0)))).toBe('ERR_SRTP_KEY_EXHAUSTED');
    tx.protectRtcp(rtcp());
    expect(codeOf(() => tx.protectRtcp(rtcp()))).toBe('ERR_SRTP_KEY_EXHAUSTED');
  });

  it('ReplayWindow: new, replayed, too old', () => {
    const w = new ReplayWindow(64);
    expect(w.check(1000)).toBe('new');
    w.accept(1000);
    expect(w.check(1000)).toBe('replayed');
    expect(w.check(937)).toBe('new');
    expect(w.check(936)).toBe('too-old');
    w.accept(1100);
    expect(w.check(1000)).toBe('too-old');
    expect(w.check(1099)).toBe('new');
    w.accept(1099);
    expect(w.check(1099)).toBe('replayed');
    expect(w.highest).toBe(1100);
  });
});

describe('bad input and key material', () => {
  it.each<[string, () => unknown, string]>([
    ['master key of 15 bytes', () => new SrtpContext({ profile: 'AES_CM_128_HMAC_SHA1_80', masterKey: Buffer.alloc(15), masterSalt: Buffer.alloc(14) }), 'ERR_SRTP_KEY'],
    ['GCM with a 14-byte salt', () => new SrtpContext({ profile: 'AEAD_AES_128_GCM', masterKey: Buffer.alloc(16), masterSalt: Buffer.alloc(14) }), 'ERR_SRTP_KEY'],
    ['AES-256-GCM with a 16-byte key', () => new SrtpContext({ profile: 'AEAD_AES_256_GCM', masterKey: Buffer.alloc(16), masterSalt: Buffer.alloc(12) }), 'ERR_SRTP_KEY'],
    ['unknown profile', () => new SrtpContext({ profile: 'NULL_HMAC_SHA1_80' as SrtpProfile, masterKey: Buffer.alloc(16), masterSalt: Buffer.alloc(14) }), 'ERR_SRTP_OPTIONS'],
    ['replay window of 32', () => pair('AES_CM_128_HMAC_SHA1_80', { replayWindow: 32 }), 'ERR_SRTP_OPTIONS'],
    ['negative initial ROC', () => pair('AES_CM_128_HMAC_SHA1_80', { initialRolloverCounter: -1 }), 'ERR_SRTP_OPTIONS'],
    ['keystream beyond 2^16 blocks from one IV', () => aesCmKeystream(Buffer.alloc(16), Buffer.alloc(16), 16 * 0x10000 + 1), 'ERR_SRTP_TOO_LONG'],
    ['AES-CM key of 24 bytes', () => aesCmKeystream(Buffer.alloc(24), Buffer.alloc(16), 16), 'ERR_SRTP_KEY'],
    ['AES-CM IV of 12 bytes', () => aesCmKeystream(Buffer.alloc(16), Buffer.alloc(12), 16), 'ERR_SRTP_KEY'],
    ['session salt of the wrong size', () => new SrtpContext({ profile: 'AEAD_AES_128_GCM', sessionKeys: { rtp: { encryptionKey: Buffer.alloc(16), authenticationKey: Buffer.alloc(0), salt: Buffer.alloc(14) }, rtcp: { encryptionKey: Buffer.alloc(16), authenticationKey: Buffer.alloc(0), salt: Buffer.alloc(12) } } }), 'ERR_SRTP_KEY'],
  ])('%s → %s', (_what, make, code) => {
    expect(codeOf(make)).toBe(code);
  });

  it.each(PROFILES)('%s: truncated, non-RTP and non-RTCP packets', (profile) => {
    const { tx, rx } = pair(profile);
    const wire = tx.protectRtp(rtp(1));
    expect(codeOf(() => rx.unprotectRtp(wire.subarray(0, 11 + tx.srtpOverhead)))).toBe('ERR_SRTP_TRUNCATED');
    const v1 = Buffer.from(wire);
    v1[0] = 0x40;
    expect(codeOf(() => rx.unprotectRtp(v1))).toBe('ERR_SRTP_NOT_RTP');
    expect(codeOf(() => tx.protectRtp(Buffer.from('0001000c2112a442', 'hex')))).toBe('ERR_SRTP_NOT_RTP');
    expect(codeOf(() => rx.unprotectRtcp(Buffer.alloc(8 + 3 + tx.srtcpOverhead, 0x80)))).toBe('ERR_SRTP_NOT_RTCP');
    expect(codeOf(() => rx.unprotectRtcp(Buffer.alloc(10)))).toBe('ERR_SRTP_TRUNCATED');
    expect(codeOf(() => tx.protectRtcp(rtp(2)))).toBe('ERR_SRTP_NOT_RTCP');
  });

  it('never shows key material: inspect, JSON, error messages', () => {
    const masterKey = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const masterSalt = Buffer.from('0102030405060708090a0b0c0d0e', 'hex');
    const ctx = new SrtpContext({ profile: 'AES_CM_128_HMAC_SHA1_80', masterKey, masterSalt });
    const session = deriveSessionKeys('AES_CM_128_HMAC_SHA1_80', masterKey, masterSalt, 'rtp');
    const secrets = [masterKey, masterSalt, session.encryptionKey, session.authenticationKey, session.salt].map((b) => b.toString('hex'));
    const shown = [inspect(ctx, { showHidden: true, depth: 10 }), JSON.stringify(ctx), JSON.stringify({ ctx })];
    const bad = Buffer.from(ctx.protectRtp(rtp(1)));
    bad[13]! ^= 1;
    try {
      new SrtpContext({ profile: 'AES_CM_128_HMAC_SHA1_80', masterKey, masterSalt }).unprotectRtp(bad);
    } catch (err) {
      shown.push(String(err), inspect(err));
    }
    expect(shown.length).toBe(5);
    for (const text of shown) for (const secret of secrets) expect(text.toLowerCase()).not.toContain(secret);
    expect(shown[0]).toContain('AES_CM_128_HMAC_SHA1_80');
  });

  it('survives seeded random mutations and noise: a packet or an SrtpError, never anything else', () => {
    const random = rng(Number(process.env.FUZZ_SEED ?? 0x5a7e));
    for (const profile of PROFILES) {
      const { tx, rx } = pair(profile);
      const wires = [tx.protectRtp(rtp(1)), tx.protectRtcp(rtcp())];
      let passed = 0;
      for (let i = 0; i < 1000; i++) {
        const source = wires[i % 2]!;
        const noise = random() < 0.2;
        const buf = noise ? Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256))) : Buffer.from(source);
        if (!noise) buf[Math.floor(random() * buf.length)]! ^= 1 << Math.floor(random() * 8);
        const cut = random() < 0.2 ? buf.subarray(0, Math.floor(random() * buf.length)) : buf;
        if (expectTyped(() => (i % 2 === 0 ? rx.unprotectRtp(cut) : rx.unprotectRtcp(cut)), SrtpError) === 'ok') passed++;
      }
      // Every input is a mutated packet or noise: none may authenticate.
      expect(passed).toBe(0);
      // …while the originals still do.
      expect(rx.unprotectRtp(wires[0]!)).toEqual(rtp(1));
      expect(rx.unprotectRtcp(wires[1]!)).toEqual(rtcp());
    }
  });
});
