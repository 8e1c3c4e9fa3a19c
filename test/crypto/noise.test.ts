import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { NoiseError } from '../../src/errors.js';
import { dh } from '../../src/crypto/noise/dh.js';
import { hkdf2, hkdf3 } from '../../src/crypto/noise/hash.js';
import {
  CipherState,
  HANDSHAKE_PATTERNS,
  HandshakeState,
  MAX_NOISE_MESSAGE,
  generateKeyPair,
  publicKeyFromPrivate,
  protocolName,
} from '../../src/crypto/noise/index.js';
import type { HandshakeOptions, HandshakePattern, KeyPair } from '../../src/crypto/noise/index.js';

// ---------------------------------------------------------------- helpers

interface NoiseVector {
  name: string;
  pattern?: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral?: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  messages: { payload: string; ciphertext: string }[];
  handshake_hash?: string;
}

const VECTOR_FILES = ['noise-c-basic.json'];

function loadVectors(file: string): NoiseVector[] {
  const url = new URL(`../vectors/noise/${file}`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { vectors: NoiseVector[] }).vectors;
}

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

function keyPair(privateHex: string | undefined): KeyPair | undefined {
  if (privateHex === undefined) return undefined;
  const privateKey = hex(privateHex);
  return { privateKey, publicKey: publicKeyFromPrivate(privateKey) };
}

/** Assert that `fn` throws a NoiseError with `code`, and return it. */
function expectNoiseError(fn: () => unknown, code: string): NoiseError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(NoiseError);
  expect((caught as NoiseError).code).toBe(code);
  return caught as NoiseError;
}

function pair(pattern: HandshakePattern, init: Partial<HandshakeOptions> = {}, resp: Partial<HandshakeOptions> = {}) {
  const initiator = new HandshakeState({ pattern, initiator: true, ...init });
  const responder = new HandshakeState({ pattern, initiator: false, ...resp });
  return { initiator, responder };
}

/** Run a handshake to completion, returning the messages sent. */
function runHandshake(initiator: HandshakeState, responder: HandshakeState): Buffer[] {
  const sent: Buffer[] = [];
  let [writer, reader] = [initiator, responder];
  while (!initiator.isComplete || !responder.isComplete) {
    const message = writer.writeMessage(Buffer.from(`payload ${sent.length}`));
    expect(reader.readMessage(message).toString()).toBe(`payload ${sent.length}`);
    sent.push(message);
    [writer, reader] = [reader, writer];
  }
  return sent;
}

function xxPair() {
  const si = generateKeyPair();
  const sr = generateKeyPair();
  return { si, sr, ...pair('XX', { staticKeyPair: si }, { staticKeyPair: sr }) };
}

function ikPair() {
  const si = generateKeyPair();
  const sr = generateKeyPair();
  return { si, sr, ...pair('IK', { staticKeyPair: si, remoteStaticKey: sr.publicKey }, { staticKeyPair: sr }) };
}

// ---------------------------------------------------------------- vectors

describe('Noise test vectors', () => {
  const vectors = VECTOR_FILES.flatMap((file) => loadVectors(file).map((vector) => ({ file, vector })));

  it('include XX and IK from every source', () => {
    for (const file of VECTOR_FILES) {
      const names = vectors.filter((v) => v.file === file).map((v) => v.vector.name);
      expect(names).toContain('Noise_XX_25519_ChaChaPoly_SHA256');
      expect(names).toContain('Noise_IK_25519_ChaChaPoly_SHA256');
    }
  });

  for (const { file, vector } of vectors) {
    it(`${file}: ${vector.name}`, () => {
      const pattern = /^Noise_([A-Z]+)_25519_ChaChaPoly_SHA256$/.exec(vector.name)?.[1] as HandshakePattern;
      expect(HANDSHAKE_PATTERNS).toContain(pattern);
      expect(protocolName(pattern)).toBe(vector.name);

      const initiator = new HandshakeState({
        pattern,
        initiator: true,
        prologue: hex(vector.init_prologue),
        staticKeyPair: keyPair(vector.init_static),
        ephemeralKeyPair: keyPair(vector.init_ephemeral),
        remoteStaticKey: vector.init_remote_static === undefined ? undefined : hex(vector.init_remote_static),
      });
      const responder = new HandshakeState({
        pattern,
        initiator: false,
        prologue: hex(vector.resp_prologue),
        staticKeyPair: keyPair(vector.resp_static),
        ephemeralKeyPair: keyPair(vector.resp_ephemeral),
        remoteStaticKey: vector.resp_remote_static === undefined ? undefined : hex(vector.resp_remote_static),
      });

      let i = 0;
      for (; !initiator.isComplete; i++) {
        const message = vector.messages[i];
        if (message === undefined) throw new Error('vector ends before the handshake does');
        const [writer, reader] = i % 2 === 0 ? [initiator, responder] : [responder, initiator];
        expect(writer.isMyTurn).toBe(true);
        expect(reader.isMyTurn).toBe(false);
        const ciphertext = writer.writeMessage(hex(message.payload));
        expect(ciphertext.toString('hex')).toBe(message.ciphertext);
        expect(reader.readMessage(ciphertext).toString('hex')).toBe(message.payload);
      }
      expect(responder.isComplete).toBe(true);
      expect(initiator.isMyTurn).toBe(false);
      expect(responder.isMyTurn).toBe(false);
      expect(i).toBeGreaterThan(0);

      expect(initiator.handshakeHash.toString('hex')).toBe(responder.handshakeHash.toString('hex'));
      if (vector.handshake_hash !== undefined) expect(initiator.handshakeHash.toString('hex')).toBe(vector.handshake_hash);
      if (vector.resp_static !== undefined) {
        expect(initiator.remoteStaticKey?.equals(publicKeyFromPrivate(hex(vector.resp_static)))).toBe(true);
      }
      if (vector.init_static !== undefined) {
        expect(responder.remoteStaticKey?.equals(publicKeyFromPrivate(hex(vector.init_static)))).toBe(true);
      }

      // Transport messages: one-way patterns only send from the initiator, others keep alternating.
      const oneWay = pattern.length === 1;
      const transport = { initiator: initiator.split(), responder: responder.split() };
      expect(vector.messages.length).toBeGreaterThan(i);
      for (; i < vector.messages.length; i++) {
        const message = vector.messages[i]!;
        const fromInitiator = oneWay || i % 2 === 0;
        const [sender, receiver] = fromInitiator
          ? [transport.initiator.send, transport.responder.receive]
          : [transport.responder.send, transport.initiator.receive];
        const ciphertext = sender.encryptWithAd(Buffer.alloc(0), hex(message.payload));
        expect(ciphertext.toString('hex')).toBe(message.ciphertext);
        expect(receiver.decryptWithAd(Buffer.alloc(0), ciphertext).toString('hex')).toBe(message.payload);
      }
    });
  }
});

// ---------------------------------------------------------------- CipherState

describe('CipherState', () => {
  const key = Buffer.alloc(32, 0x42);
  const ad = Buffer.from('ad');
  const plaintext = Buffer.from('hello, partyline');

  it('passes data through while it has no key', () => {
    const cs = new CipherState();
    expect(cs.hasKey()).toBe(false);
    expect(cs.encryptWithAd(ad, plaintext).equals(plaintext)).toBe(true);
    expect(cs.decryptWithAd(ad, plaintext).equals(plaintext)).toBe(true);
    expect(cs.nonce).toBe(0n);
  });

  it('encrypts with a 16-byte tag and advances the nonce', () => {
    const a = new CipherState(key);
    const b = new CipherState(key);
    const c1 = a.encryptWithAd(ad, plaintext);
    const c2 = a.encryptWithAd(ad, plaintext);
    expect(c1.length).toBe(plaintext.length + 16);
    expect(c1.equals(c2)).toBe(false);
    expect(a.nonce).toBe(2n);
    expect(b.decryptWithAd(ad, c1).equals(plaintext)).toBe(true);
    expect(b.decryptWithAd(ad, c2).equals(plaintext)).toBe(true);
    expect(b.nonce).toBe(2n);
  });

  it('uses 4 zero bytes and a little-endian 64-bit counter as the ChaCha20-Poly1305 nonce', () => {
    const cs = new CipherState(key);
    cs.setNonce(0x0102030405060708n);
    const nonce = Buffer.from('000000000807060504030201', 'hex');
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    cipher.setAAD(ad, { plaintextLength: plaintext.length });
    const expected = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    expect(cs.encryptWithAd(ad, plaintext).equals(expected)).toBe(true);
  });

  it('rejects a tampered ciphertext or wrong ad with ERR_NOISE_DECRYPT and keeps the nonce', () => {
    const a = new CipherState(key);
    const b = new CipherState(key);
    const ciphertext = a.encryptWithAd(ad, plaintext);
    const tampered = Buffer.from(ciphertext);
    tampered[3]! ^= 0x01;
    expectNoiseError(() => b.decryptWithAd(ad, tampered), 'ERR_NOISE_DECRYPT');
    expectNoiseError(() => b.decryptWithAd(Buffer.from('other'), ciphertext), 'ERR_NOISE_DECRYPT');
    expectNoiseError(() => b.decryptWithAd(ad, ciphertext.subarray(0, 15)), 'ERR_NOISE_DECRYPT');
    expect(b.nonce).toBe(0n);
    expect(b.decryptWithAd(ad, ciphertext).equals(plaintext)).toBe(true);
    expect(b.nonce).toBe(1n);
  });

  it('throws ERR_NOISE_NONCE_EXHAUSTED once the nonce reaches 2^64-1', () => {
    const max = 2n ** 64n - 1n;
    const a = new CipherState(key);
    const b = new CipherState(key);
    a.setNonce(max - 1n);
    b.setNonce(max - 1n);
    const last = a.encryptWithAd(ad, plaintext);
    expect(a.nonce).toBe(max);
    expect(b.decryptWithAd(ad, last).equals(plaintext)).toBe(true);
    expect(b.nonce).toBe(max);
    expectNoiseError(() => a.encryptWithAd(ad, plaintext), 'ERR_NOISE_NONCE_EXHAUSTED');
    expectNoiseError(() => b.decryptWithAd(ad, last), 'ERR_NOISE_NONCE_EXHAUSTED');
    expect(a.nonce).toBe(max);
  });

  it('validates setNonce', () => {
    const cs = new CipherState(key);
    expectNoiseError(() => cs.setNonce(-1n), 'ERR_NOISE_BAD_NONCE');
    expectNoiseError(() => cs.setNonce(2n ** 64n), 'ERR_NOISE_BAD_NONCE');
    cs.setNonce(2n ** 64n - 1n);
    expect(cs.nonce).toBe(2n ** 64n - 1n);
  });

  it('rekeys per section 11.3, keeping both sides in sync and the nonce unchanged', () => {
    const a = new CipherState(key);
    const b = new CipherState(key);
    expect(b.decryptWithAd(ad, a.encryptWithAd(ad, plaintext)).equals(plaintext)).toBe(true);

    const withoutRekey = new CipherState(key);
    withoutRekey.setNonce(1n);
    const oldKeyCiphertext = withoutRekey.encryptWithAd(ad, plaintext);

    a.rekey();
    b.rekey();
    expect(a.nonce).toBe(1n);
    const ciphertext = a.encryptWithAd(ad, plaintext);
    expect(ciphertext.equals(oldKeyCiphertext)).toBe(false);
    expect(b.decryptWithAd(ad, ciphertext).equals(plaintext)).toBe(true);

    // REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes).
    const cipher = createCipheriv('chacha20-poly1305', key, Buffer.from('00000000ffffffffffffffff', 'hex'), { authTagLength: 16 });
    cipher.setAAD(Buffer.alloc(0), { plaintextLength: 32 });
    const newKey = Buffer.concat([cipher.update(Buffer.alloc(32)), cipher.final()]);
    const reference = new CipherState(newKey);
    reference.setNonce(1n);
    expect(reference.encryptWithAd(ad, plaintext).equals(ciphertext)).toBe(true);

    // Only one side rekeyed: out of sync.
    a.rekey();
    expectNoiseError(() => b.decryptWithAd(ad, a.encryptWithAd(ad, plaintext)), 'ERR_NOISE_DECRYPT');
  });

  it('refuses rekey without a key, bad keys and messages over 65535 bytes', () => {
    expectNoiseError(() => new CipherState().rekey(), 'ERR_NOISE_STATE');
    expectNoiseError(() => new CipherState(Buffer.alloc(31)), 'ERR_NOISE_BAD_KEY');
    const cs = new CipherState(key);
    expectNoiseError(() => cs.encryptWithAd(ad, Buffer.alloc(MAX_NOISE_MESSAGE - 15)), 'ERR_NOISE_TOO_LONG');
    expect(cs.nonce).toBe(0n);
    expect(cs.encryptWithAd(ad, Buffer.alloc(MAX_NOISE_MESSAGE - 16)).length).toBe(MAX_NOISE_MESSAGE);
    expectNoiseError(() => cs.decryptWithAd(ad, Buffer.alloc(MAX_NOISE_MESSAGE + 1)), 'ERR_NOISE_TOO_LONG');
  });
});

// ---------------------------------------------------------------- HKDF

describe('HKDF (Noise section 4.3)', () => {
  it('equals RFC 5869 HKDF-SHA256 with salt = chaining key and empty info', () => {
    for (const ikmLength of [0, 32]) {
      const ck = randomBytes(32);
      const ikm = randomBytes(ikmLength);
      const reference = Buffer.from(hkdfSync('sha256', ikm, ck, Buffer.alloc(0), 96));
      expect(Buffer.concat(hkdf2(ck, ikm)).equals(reference.subarray(0, 64))).toBe(true);
      expect(Buffer.concat(hkdf3(ck, ikm)).equals(reference)).toBe(true);
    }
  });
});

// ---------------------------------------------------------------- X25519

describe('X25519 keys', () => {
  it('derives the RFC 7748 section 6.1 public keys', () => {
    const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bob = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    expect(publicKeyFromPrivate(alice).toString('hex')).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(publicKeyFromPrivate(bob).toString('hex')).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const pairA = { privateKey: alice, publicKey: publicKeyFromPrivate(alice) };
    const pairB = { privateKey: bob, publicKey: publicKeyFromPrivate(bob) };
    // RFC 7748 section 6.1 shared secret K
    expect(dh(pairA, pairB.publicKey).toString('hex')).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    expect(dh(pairB, pairA.publicKey).toString('hex')).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  });

  it('generates raw 32-byte key pairs that agree', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    expect(a.privateKey.length).toBe(32);
    expect(a.publicKey.length).toBe(32);
    expect(publicKeyFromPrivate(a.privateKey).equals(a.publicKey)).toBe(true);
    expect(dh(a, b.publicKey).equals(dh(b, a.publicKey))).toBe(true);
  });

  it('rejects low-order public keys and wrong lengths with ERR_NOISE_BAD_KEY', () => {
    const a = generateKeyPair();
    expectNoiseError(() => dh(a, Buffer.alloc(32)), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(() => dh(a, hex('0100000000000000000000000000000000000000000000000000000000000000')), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(() => dh(a, Buffer.alloc(31, 9)), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(() => publicKeyFromPrivate(Buffer.alloc(33)), 'ERR_NOISE_BAD_KEY');
  });
});

// ---------------------------------------------------------------- HandshakeState

describe('HandshakeState', () => {
  it('completes a fresh XX handshake; each side learns the other static key', () => {
    const { si, sr, initiator, responder } = xxPair();
    expect(initiator.protocolName).toBe('Noise_XX_25519_ChaChaPoly_SHA256');
    expect(initiator.remoteStaticKey).toBeUndefined();
    const messages = runHandshake(initiator, responder);
    expect(messages.map((m) => m.length)).toEqual([32 + 9, 32 + 48 + 9 + 16, 48 + 9 + 16]);
    expect(initiator.remoteStaticKey?.equals(sr.publicKey)).toBe(true);
    expect(responder.remoteStaticKey?.equals(si.publicKey)).toBe(true);
    expect(initiator.handshakeHash.equals(responder.handshakeHash)).toBe(true);

    const a = initiator.split();
    const b = responder.split();
    const ad = Buffer.alloc(0);
    expect(b.receive.decryptWithAd(ad, a.send.encryptWithAd(ad, Buffer.from('ping'))).toString()).toBe('ping');
    expect(a.receive.decryptWithAd(ad, b.send.encryptWithAd(ad, Buffer.from('pong'))).toString()).toBe('pong');
    // The two directions use different keys.
    expectNoiseError(() => a.receive.decryptWithAd(ad, a.send.encryptWithAd(ad, Buffer.from('echo'))), 'ERR_NOISE_DECRYPT');
  });

  it('completes a fresh IK handshake; each side learns the other static key', () => {
    const { si, sr, initiator, responder } = ikPair();
    expect(initiator.remoteStaticKey?.equals(sr.publicKey)).toBe(true);
    const messages = runHandshake(initiator, responder);
    expect(messages).toHaveLength(2);
    expect(responder.remoteStaticKey?.equals(si.publicKey)).toBe(true);
    expect(initiator.handshakeHash.equals(responder.handshakeHash)).toBe(true);
    const a = initiator.split();
    const b = responder.split();
    const ad = Buffer.from('frame');
    expect(b.receive.decryptWithAd(ad, a.send.encryptWithAd(ad, Buffer.from('hi'))).toString()).toBe('hi');
    expect(a.receive.decryptWithAd(ad, b.send.encryptWithAd(ad, Buffer.from('ho'))).toString()).toBe('ho');
  });

  it('completes every supported pattern with random keys', () => {
    for (const pattern of HANDSHAKE_PATTERNS) {
      const si = generateKeyPair();
      const sr = generateKeyPair();
      const responderKnown = ['N', 'K', 'X', 'NK', 'KK', 'XK', 'IK'].includes(pattern);
      const initiatorKnown = pattern.startsWith('K');
      const { initiator, responder } = pair(
        pattern,
        { staticKeyPair: si, remoteStaticKey: responderKnown ? sr.publicKey : undefined },
        { staticKeyPair: sr, remoteStaticKey: initiatorKnown ? si.publicKey : undefined },
      );
      runHandshake(initiator, responder);
      expect(initiator.handshakeHash.equals(responder.handshakeHash), pattern).toBe(true);
    }
  });

  it('fails IK with a wrong responder key: the responder cannot decrypt message 0', () => {
    const sr = generateKeyPair();
    const { initiator, responder } = pair(
      'IK',
      { staticKeyPair: generateKeyPair(), remoteStaticKey: generateKeyPair().publicKey },
      { staticKeyPair: sr },
    );
    const message = initiator.writeMessage(Buffer.from('hello'));
    expectNoiseError(() => responder.readMessage(message), 'ERR_NOISE_DECRYPT');
    expect(responder.isMyTurn).toBe(false);
    expectNoiseError(() => responder.writeMessage(), 'ERR_NOISE_STATE');
    expect(responder.remoteStaticKey).toBeUndefined();
  });

  it('detects a tampered handshake message with ERR_NOISE_DECRYPT and stays failed', () => {
    const { initiator, responder } = xxPair();
    responder.readMessage(initiator.writeMessage());
    const message = responder.writeMessage(Buffer.from('payload'));
    const tampered = Buffer.from(message);
    tampered[40]! ^= 0x80; // inside the encrypted static key
    const err = expectNoiseError(() => initiator.readMessage(tampered), 'ERR_NOISE_DECRYPT');
    expect(err.message).toContain('message 1');
    expectNoiseError(() => initiator.readMessage(message), 'ERR_NOISE_STATE');
    expectNoiseError(() => initiator.writeMessage(), 'ERR_NOISE_STATE');
    expectNoiseError(() => initiator.split(), 'ERR_NOISE_STATE');
  });

  it('detects a tampered ephemeral key in XX message 0 when message 1 arrives', () => {
    const { initiator, responder } = xxPair();
    const first = initiator.writeMessage();
    first[0]! ^= 0x01;
    responder.readMessage(first); // e is not authenticated yet
    expectNoiseError(() => initiator.readMessage(responder.writeMessage()), 'ERR_NOISE_DECRYPT');
  });

  it('detects a tampered payload in IK message 0 and message 1', () => {
    const a = ikPair();
    const m0 = a.initiator.writeMessage(Buffer.from('payload'));
    m0[m0.length - 1]! ^= 0x01;
    expectNoiseError(() => a.responder.readMessage(m0), 'ERR_NOISE_DECRYPT');

    const b = ikPair();
    b.responder.readMessage(b.initiator.writeMessage());
    const m1 = b.responder.writeMessage(Buffer.from('payload'));
    m1[50]! ^= 0x01;
    expectNoiseError(() => b.initiator.readMessage(m1), 'ERR_NOISE_DECRYPT');
  });

  it('rejects truncated messages with ERR_NOISE_SHORT without spoiling the handshake', () => {
    const { initiator, responder } = xxPair();
    const m0 = initiator.writeMessage();
    expectNoiseError(() => responder.readMessage(m0.subarray(0, 31)), 'ERR_NOISE_SHORT');
    expectNoiseError(() => responder.readMessage(Buffer.alloc(0)), 'ERR_NOISE_SHORT');
    responder.readMessage(m0);
    const m1 = responder.writeMessage();
    expect(m1.length).toBe(32 + 48 + 16);
    const err = expectNoiseError(() => initiator.readMessage(m1.subarray(0, 32 + 40)), 'ERR_NOISE_SHORT');
    expect(err.message).toContain('expected at least 96');
    expectNoiseError(() => initiator.readMessage(m1.subarray(0, 95)), 'ERR_NOISE_SHORT');
    initiator.readMessage(m1);
    const m2 = initiator.writeMessage();
    expectNoiseError(() => responder.readMessage(m2.subarray(0, 63)), 'ERR_NOISE_SHORT');
    responder.readMessage(m2);
    expect(responder.isComplete).toBe(true);

    const ik = ikPair();
    const first = ik.initiator.writeMessage();
    expect(first.length).toBe(32 + 48 + 16);
    expectNoiseError(() => ik.responder.readMessage(first.subarray(0, 32 + 47)), 'ERR_NOISE_SHORT');
  });

  it('rejects calls out of turn and after completion with ERR_NOISE_STATE', () => {
    const { initiator, responder } = xxPair();
    expect(initiator.isMyTurn).toBe(true);
    expect(responder.isMyTurn).toBe(false);
    expectNoiseError(() => responder.writeMessage(), 'ERR_NOISE_STATE');
    expectNoiseError(() => initiator.readMessage(Buffer.alloc(100)), 'ERR_NOISE_STATE');
    expectNoiseError(() => initiator.split(), 'ERR_NOISE_STATE');
    const m0 = initiator.writeMessage();
    expectNoiseError(() => initiator.writeMessage(), 'ERR_NOISE_STATE');
    responder.readMessage(m0);
    expectNoiseError(() => responder.readMessage(m0), 'ERR_NOISE_STATE');
    initiator.readMessage(responder.writeMessage());
    responder.readMessage(initiator.writeMessage());
    for (const side of [initiator, responder]) {
      expect(side.isComplete).toBe(true);
      expect(side.isMyTurn).toBe(false);
      expectNoiseError(() => side.writeMessage(), 'ERR_NOISE_STATE');
      expectNoiseError(() => side.readMessage(m0), 'ERR_NOISE_STATE');
      side.split();
      expectNoiseError(() => side.split(), 'ERR_NOISE_STATE');
    }
  });

  it('limits handshake messages to 65535 bytes', () => {
    const { initiator, responder } = xxPair();
    expectNoiseError(() => initiator.writeMessage(Buffer.alloc(MAX_NOISE_MESSAGE - 32 + 1)), 'ERR_NOISE_TOO_LONG');
    expect(initiator.isMyTurn).toBe(true);
    expectNoiseError(() => responder.readMessage(Buffer.alloc(MAX_NOISE_MESSAGE + 1)), 'ERR_NOISE_TOO_LONG');
    const m0 = initiator.writeMessage(Buffer.alloc(MAX_NOISE_MESSAGE - 32, 7));
    expect(m0.length).toBe(MAX_NOISE_MESSAGE);
    expect(responder.readMessage(m0).length).toBe(MAX_NOISE_MESSAGE - 32);
    // Message 1 carries e (32), encrypted s (48) and the payload tag (16).
    expectNoiseError(() => responder.writeMessage(Buffer.alloc(MAX_NOISE_MESSAGE - 96 + 1)), 'ERR_NOISE_TOO_LONG');
    expect(responder.writeMessage(Buffer.alloc(MAX_NOISE_MESSAGE - 96)).length).toBe(MAX_NOISE_MESSAGE);
  });

  it('requires the keys the pattern needs', () => {
    const s = generateKeyPair();
    expectNoiseError(() => new HandshakeState({ pattern: 'XX', initiator: true }), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(() => new HandshakeState({ pattern: 'IK', initiator: true, staticKeyPair: s }), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(() => new HandshakeState({ pattern: 'IK', initiator: true, staticKeyPair: s, remoteStaticKey: Buffer.alloc(16) }), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(() => new HandshakeState({ pattern: 'IK', initiator: false }), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(
      () => new HandshakeState({ pattern: 'XX', initiator: true, staticKeyPair: { privateKey: s.privateKey, publicKey: generateKeyPair().publicKey } }),
      'ERR_NOISE_BAD_KEY',
    );
    expectNoiseError(() => new HandshakeState({ pattern: 'NN', initiator: true, remoteStaticKey: s.publicKey }), 'ERR_NOISE_BAD_KEY');
    expectNoiseError(() => new HandshakeState({ pattern: 'XY' as HandshakePattern, initiator: true, staticKeyPair: s }), 'ERR_NOISE_PATTERN');
    expectNoiseError(() => new HandshakeState({ pattern: 'XX', initiator: true, staticKeyPair: s, prologue: 'x' as unknown as Buffer }), 'ERR_NOISE_BAD_INPUT');
    // NN needs no static key at all.
    const { initiator, responder } = pair('NN');
    runHandshake(initiator, responder);
    expect(initiator.remoteStaticKey).toBeUndefined();
  });

  it('never puts key material in error messages', () => {
    const { si, sr, initiator, responder } = xxPair();
    const m0 = initiator.writeMessage();
    responder.readMessage(m0);
    const m1 = responder.writeMessage();
    m1[m1.length - 1]! ^= 1;
    const err = expectNoiseError(() => initiator.readMessage(m1), 'ERR_NOISE_DECRYPT');
    for (const key of [si.privateKey, si.publicKey, sr.privateKey, sr.publicKey, m0.subarray(0, 32)]) {
      expect(err.message).not.toContain(key.toString('hex'));
      expect(err.message).not.toContain(key.toString('base64'));
    }
  });

  it('pins an expected remote static key in XX', () => {
    const si = generateKeyPair();
    const sr = generateKeyPair();
    const good = pair('XX', { staticKeyPair: si, remoteStaticKey: sr.publicKey }, { staticKeyPair: sr, remoteStaticKey: si.publicKey });
    runHandshake(good.initiator, good.responder);

    const bad = pair('XX', { staticKeyPair: si, remoteStaticKey: generateKeyPair().publicKey }, { staticKeyPair: sr });
    bad.responder.readMessage(bad.initiator.writeMessage());
    expectNoiseError(() => bad.initiator.readMessage(bad.responder.writeMessage()), 'ERR_NOISE_BAD_KEY');
  });

  it('rejects a low-order ephemeral key from the peer', () => {
    const { initiator, responder } = ikPair();
    const m0 = initiator.writeMessage();
    Buffer.alloc(32).copy(m0); // replace e with the all-zero point
    expectNoiseError(() => responder.readMessage(m0), 'ERR_NOISE_BAD_KEY');

    const xx = xxPair();
    xx.responder.readMessage(Buffer.alloc(32)); // XX message 0 is just e: accepted, no DH yet
    expectNoiseError(() => xx.responder.writeMessage(), 'ERR_NOISE_BAD_KEY');
  });

  it('copies keys so that later changes to the caller buffers do not matter', () => {
    const si = generateKeyPair();
    const sr = generateKeyPair();
    const srPublic = Buffer.from(sr.publicKey);
    const { initiator, responder } = pair('IK', { staticKeyPair: si, remoteStaticKey: srPublic }, { staticKeyPair: sr });
    srPublic.fill(0);
    runHandshake(initiator, responder);
    const leaked = initiator.remoteStaticKey!;
    leaked.fill(0);
    expect(initiator.remoteStaticKey?.equals(sr.publicKey)).toBe(true);
  });
});
