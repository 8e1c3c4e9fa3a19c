/**
 * Fuzzing the STUN decoder and the two handlers a hostile datagram can reach
 * on a shared UDP port: every input must give a value or a typed
 * `StunError` — never another exception. Seeded, so a failure can be
 * replayed (`FUZZ_SEED=...`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StunError } from '../../src/nat/stun/errors.js';
import { decodeStunMessage, encodeStunMessage, verifyFingerprint, verifyIntegrity } from '../../src/nat/stun/message.js';
import { StunClient } from '../../src/nat/stun/client.js';
import { StunResponder } from '../../src/nat/stun/responder.js';
import { expectTyped, rng } from '../helpers/fuzz.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x57a7);


const vectors = (JSON.parse(readFileSync(new URL('../vectors/stun/rfc5769.json', import.meta.url), 'utf8')) as { vectors: Array<{ hex: string[] }> }).vectors.map((v) =>
  Buffer.from(v.hex.join('').replace(/ /g, ''), 'hex'),
);

function mutator(random: () => number) {
  const int = (n: number): number => Math.floor(random() * n);
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  /** Make the header's length field agree with the datagram, so the attribute parser is reached. */
  const fixLength = (buf: Buffer): Buffer => {
    if (buf.length >= 20 && (buf.length - 20) % 4 === 0 && buf.length - 20 <= 0xffff) buf.writeUInt16BE(buf.length - 20, 2);
    return buf;
  };
  return {
    int,
    mutate(input: Buffer): Buffer {
      const buf = Buffer.from(input);
      switch (int(9)) {
        case 0: // flip bits in the attributes
          for (let i = 0, n = 1 + int(4); i < n && buf.length > 20; i++) buf[20 + int(buf.length - 20)]! ^= 1 << int(8);
          return buf;
        case 1: // truncate
          return buf.subarray(0, int(buf.length + 1));
        case 2: // insert 4k bytes of noise and fix the length
          return fixLength(Buffer.concat([buf.subarray(0, 20 + 4 * int((buf.length - 20) / 4 + 1)), bytes(4 * (1 + int(8))), buf.subarray(20)]));
        case 3: { // rewrite an attribute header's length
          const at = 20 + 4 * int(Math.max(1, (buf.length - 20) / 4));
          if (at + 4 <= buf.length) buf.writeUInt16BE([0, 1, 2, 3, 4, 6, 8, 20, 0xffff, int(0x10000)][int(10)]!, at + 2);
          return buf;
        }
        case 4: { // rewrite an attribute type
          const at = 20 + 4 * int(Math.max(1, (buf.length - 20) / 4));
          if (at + 4 <= buf.length) buf.writeUInt16BE([0x0001, 0x0003, 0x0006, 0x0008, 0x0009, 0x000a, 0x0020, 0x001c, 0x8028, 0x802c, 0x7fff, int(0x10000)][int(12)]!, at);
          return buf;
        }
        case 5: // a random attribute appended
          return fixLength(Buffer.concat([buf, Buffer.from([int(256), int(256), 0, 4 * int(3)]), bytes(4 * int(3))]));
        case 6: // header fields
          buf[int(Math.min(20, buf.length))] = [0, 1, 0x21, 0xff, 0x80, 0x3f][int(6)]!;
          return buf;
        case 7: // a random datagram with a valid header
          return fixLength(Buffer.concat([Buffer.from([0, 1 + int(2), 0, 0, 0x21, 0x12, 0xa4, 0x42]), bytes(12 + 4 * int(20))]));
        default: // pure noise
          return bytes(int(200));
      }
    },
  };
}


describe('fuzz: STUN (30,000 inputs)', () => {
  it('the decoder returns a message or a StunError; what decodes re-encodes to the same message', () => {
    const m = mutator(rng(SEED));
    const outcomes = { ok: 0, error: 0 };
    for (let i = 0; i < 20_000; i++) {
      const input = m.mutate(vectors[i % vectors.length]!);
      const outcome = expectTyped(() => {
        const message = decodeStunMessage(input);
        const again = decodeStunMessage(encodeStunMessage(message));
        expect(again).toEqual(message);
        verifyIntegrity(input, Buffer.from('key'));
        verifyFingerprint(input);
      }, StunError);
      outcomes[outcome]++;
    }
    // Both paths were exercised: a fuzzer that only ever errors tests nothing.
    expect(outcomes.ok).toBeGreaterThan(2_000);
    expect(outcomes.error).toBeGreaterThan(2_000);
  });

  it('the responder and the client never throw on hostile datagrams', async () => {
    const m = mutator(rng(SEED + 1));
    let sent = 0;
    const responder = new StunResponder({
      endpoints: { primary: { address: '192.0.2.1', port: 3478 }, 'alternate-port': { address: '192.0.2.1', port: 3479 } },
      rateLimit: { burst: 1e9, perSecond: 1e9 },
    });
    // The client waits for one transaction at a time; inputs carry its transaction id so they get past the id check.
    let transactionId = Buffer.alloc(12);
    const client = new StunClient({ send: (data) => (transactionId = Buffer.from(data.subarray(8, 20))) });
    const settled = { resolved: 0, rejected: 0 };
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      if (client.pending === 0) {
        client.binding({ address: '192.0.2.1', port: 3478 }, { timeoutMs: 60_000 }).then(
          () => settled.resolved++,
          (err: unknown) => {
            expect(err).toBeInstanceOf(StunError);
            settled.rejected++;
          },
        );
      }
      const input = m.mutate(vectors[i % vectors.length]!);
      if (input.length >= 20 && i % 2 === 0) transactionId.copy(input, 8);
      const outcome = responder.handleStunPacket(input, { address: '198.51.100.2', port: 4000 + (i % 100) }, (data) => {
        sent++;
        expect(data.length).toBeLessThanOrEqual(input.length + 48);
      });
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      expect(typeof client.handleStunPacket(input, { address: '198.51.100.2', port: 3478 })).toBe('boolean');
    }
    client.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toBeGreaterThan(100);
    expect(outcomes.get('malformed')).toBeGreaterThan(100);
    expect(settled.resolved + settled.rejected).toBeGreaterThan(30);
  });
});
