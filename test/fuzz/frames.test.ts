/**
 * Fuzzing the decoders a hostile peer can reach before and after the
 * handshake: frames, envelopes, Noise handshake messages and handshake
 * payloads. Every input must give a value or a typed error — never another
 * exception, a hang or a crash. Seeded, so a failure can be replayed.
 */
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { makeHandshakePayload, verifyHandshakePayload } from '../../src/crypto/handshake-payload.js';
import { HandshakeState } from '../../src/crypto/noise/index.js';
import { NoiseError, WireError } from '../../src/errors.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/wire/envelope.js';
import { FrameDecoder, encodeFrame } from '../../src/wire/frame.js';
import { expectTyped, rng } from '../helpers/fuzz.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);


function mutator(random: () => number) {
  const int = (n: number): number => Math.floor(random() * n);
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  return {
    int,
    bytes,
    mutate(input: Buffer): Buffer {
      const buf = Buffer.from(input);
      switch (int(6)) {
        case 0: // flip bits
          for (let i = 0, n = 1 + int(4); i < n && buf.length; i++) buf[int(buf.length)]! ^= 1 << int(8);
          return buf;
        case 1: // truncate
          return buf.subarray(0, int(buf.length + 1));
        case 2: // insert random bytes
          return Buffer.concat([buf.subarray(0, int(buf.length + 1)), bytes(1 + int(16)), buf.subarray(int(buf.length + 1))]);
        case 3: // overwrite with interesting values
          for (let i = 0, n = 1 + int(3); i < n && buf.length; i++) buf[int(buf.length)] = [0, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x5b][int(8)]!;
          return buf;
        case 4: // duplicate a slice
          return Buffer.concat([buf, buf.subarray(int(buf.length + 1))]);
        default: // pure noise
          return bytes(int(200));
      }
    },
  };
}


describe('fuzz: frames and envelopes (100,000 inputs)', () => {
  it('the envelope decoder returns a valid envelope or a WireError', () => {
    const m = mutator(rng(SEED));
    const seeds = [
      encodeEnvelope({ v: 1, type: 'login', id: 1, body: { user: 'alice', password: 'x' } }),
      encodeEnvelope({ v: 1, type: 'attach', re: 9, body: { ok: true, supernodes: ['10.0.0.1:4000'] } }),
      encodeEnvelope({ v: 1, type: 'error', re: 3, body: { code: 'ERR_X', message: 'no' } }),
    ];
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 70_000; i++) {
      const input = m.mutate(seeds[i % seeds.length]!);
      const outcome = expectTyped(() => {
        const envelope = decodeEnvelope(input);
        // Whatever decodes must re-encode and decode to the same value.
        expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual(envelope);
      }, WireError);
      outcomes[outcome]++;
    }
    // Both paths were exercised: mutations that stay valid, and rejections.
    expect(outcomes.ok).toBeGreaterThan(100);
    expect(outcomes.error).toBeGreaterThan(10_000);
  });

  it('the frame decoder yields frames or a WireError, and never holds more than one frame', () => {
    const m = mutator(rng(SEED + 1));
    let frames = 0;
    let errors = 0;
    for (let i = 0; i < 30_000; i++) {
      const decoder = new FrameDecoder(16, 4096);
      const stream = Buffer.concat([encodeFrame(m.bytes(16 + m.int(100))), m.mutate(encodeFrame(m.bytes(20 + m.int(50))))]);
      let offset = 0;
      const outcome = expectTyped(() => {
        while (offset < stream.length) {
          const n = 1 + m.int(40);
          frames += decoder.push(stream.subarray(offset, offset + n)).length;
          offset += n;
          expect(decoder.buffered).toBeLessThanOrEqual(4096 + 2 + 40);
        }
      }, WireError);
      if (outcome === 'error') errors++;
    }
    expect(frames).toBeGreaterThan(30_000);
    expect(errors).toBeGreaterThan(100);
  });
});

describe('fuzz: Noise handshake messages and payloads', () => {
  const responder = generateIdentity();
  const initiator = generateIdentity();
  const fixedEphemeral = generateIdentity().noise;

  it('an IK responder fed mutated first messages raises only NoiseError (10,000 inputs)', () => {
    const m = mutator(rng(SEED + 2));
    const valid = new HandshakeState({ pattern: 'IK', initiator: true, staticKeyPair: initiator.noise, remoteStaticKey: responder.noise.publicKey, ephemeralKeyPair: fixedEphemeral })
      .writeMessage(makeHandshakePayload(initiator));
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 10_000; i++) {
      const state = new HandshakeState({ pattern: 'IK', initiator: false, staticKeyPair: responder.noise, ephemeralKeyPair: fixedEphemeral });
      const input = i === 0 ? valid : m.mutate(valid);
      outcomes[expectTyped(() => state.readMessage(input), NoiseError)]++;
    }
    expect(outcomes.ok).toBeGreaterThanOrEqual(1);
    expect(outcomes.error).toBeGreaterThan(9_000);
  });

  it('an XX initiator fed mutated second messages raises only NoiseError (10,000 inputs)', () => {
    const m = mutator(rng(SEED + 3));
    const makeInitiator = (): HandshakeState => new HandshakeState({ pattern: 'XX', initiator: true, staticKeyPair: initiator.noise, ephemeralKeyPair: fixedEphemeral });
    const i0 = makeInitiator();
    const r0 = new HandshakeState({ pattern: 'XX', initiator: false, staticKeyPair: responder.noise, ephemeralKeyPair: fixedEphemeral });
    const msg1 = i0.writeMessage();
    r0.readMessage(msg1);
    const valid = r0.writeMessage(makeHandshakePayload(responder));
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 10_000; i++) {
      const state = makeInitiator();
      state.writeMessage();
      const input = i === 0 ? valid : m.mutate(valid);
      outcomes[expectTyped(() => state.readMessage(input), NoiseError)]++;
    }
    expect(outcomes.ok).toBeGreaterThanOrEqual(1);
    expect(outcomes.error).toBeGreaterThan(9_000);
  });

  it('the handshake payload check raises only NoiseError (20,000 inputs)', () => {
    const m = mutator(rng(SEED + 4));
    const valid = makeHandshakePayload(initiator, { role: 'node' });
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const input = i === 0 ? valid : m.mutate(valid);
      expectTyped(() => {
        const peer = verifyHandshakePayload(input, initiator.noise.publicKey);
        // A mutation may only survive where it touches nothing signed: the identity is always the signer's.
        expect(peer.deviceId).toBe(initiator.deviceId);
        accepted++;
      }, NoiseError);
    }
    expect(accepted).toBeGreaterThanOrEqual(1);
  });
});
