import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  bitLength, bucketIndex, compareDistance, idFromBytes, idFromHex, idToBytes, idToHex, MAX_ID, randomIdInBucket, supernodeId, userKey,
} from '../../../src/overlay/index/node-id.js';

describe('node ids', () => {
  it('derives a supernode id as SHA-256 of its Noise key, raw or base64', () => {
    const key = Buffer.alloc(32, 7);
    const expected = BigInt(`0x${createHash('sha256').update(key).digest('hex')}`);
    expect(supernodeId(key)).toBe(expected);
    expect(supernodeId(key.toString('base64'))).toBe(expected);
    expect(() => supernodeId(Buffer.alloc(31))).toThrow(expect.objectContaining({ code: 'ERR_INDEX_ID' }));
  });

  it('derives a user key from the normalised name with a domain prefix', () => {
    const expected = BigInt(`0x${createHash('sha256').update('partyline/user/v1\nalice').digest('hex')}`);
    expect(userKey('alice')).toBe(expected);
    expect(userKey(' ALICE ')).toBe(expected);
    expect(userKey('ＡＬＩＣＥ')).toBe(expected);
    expect(userKey('bob')).not.toBe(expected);
  });

  it('round-trips ids through hex and bytes, and refuses bad hex', () => {
    for (const id of [0n, 1n, MAX_ID, userKey('carol')]) {
      expect(idToHex(id)).toMatch(/^[0-9a-f]{64}$/);
      expect(idFromHex(idToHex(id))).toBe(id);
      expect(idFromBytes(idToBytes(id))).toBe(id);
    }
    for (const bad of ['', 'ab', 'G'.repeat(64), 'A'.repeat(64), '0'.repeat(65)]) {
      expect(() => idFromHex(bad)).toThrow(expect.objectContaining({ code: 'ERR_INDEX_ID' }));
    }
    expect(() => idToHex(MAX_ID + 1n)).toThrow(expect.objectContaining({ code: 'ERR_INDEX_ID' }));
  });

  it.each([
    [0n, 0],
    [1n, 1],
    [2n, 2],
    [3n, 2],
    [(1n << 53n) - 1n, 53],
    [1n << 53n, 54],
    [(1n << 200n) - 1n, 200],
    [1n << 200n, 201],
    [MAX_ID, 256],
  ])('bitLength(%s) = %i', (x, bits) => {
    expect(bitLength(x)).toBe(bits);
    expect(bitLength(x)).toBe(x === 0n ? 0 : x.toString(2).length);
  });

  it.each([
    [0n, 0n, -1],
    [0n, 1n, 0],
    [0n, 3n, 1],
    [0n, 1n << 255n, 255],
    [MAX_ID, 0n, 255],
    [1n << 100n, (1n << 100n) | 1n, 0],
  ])('bucketIndex(%s, %s) = %i', (a, b, index) => {
    expect(bucketIndex(a, b)).toBe(index);
    expect(bucketIndex(b, a)).toBe(index);
  });

  it('orders by XOR distance', () => {
    expect(compareDistance(0b1000n, 0b1001n, 0b0000n)).toBeLessThan(0);
    expect(compareDistance(0b1000n, 0b0000n, 0b1001n)).toBeGreaterThan(0);
    expect(compareDistance(5n, 7n, 7n)).toBe(0);
  });

  it('makes random ids inside the asked bucket', () => {
    const self = userKey('self');
    for (const index of [0, 1, 7, 128, 254, 255]) {
      for (let i = 0; i < 20; i++) expect(bucketIndex(self, randomIdInBucket(self, index))).toBe(index);
    }
    expect(() => randomIdInBucket(self, 256)).toThrow(expect.objectContaining({ code: 'ERR_INDEX_ID' }));
  });
});
