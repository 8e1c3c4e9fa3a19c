import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AbortedError, TimeoutError } from '../../src/errors.js';
import { StunMethod } from '../../src/nat/stun/constants.js';
import type { TransportAddress } from '../../src/nat/stun/address.js';
import type { StunAttribute } from '../../src/nat/stun/attributes.js';
import { StunClient, transmissionSchedule } from '../../src/nat/stun/client.js';
import type { BindingResult } from '../../src/nat/stun/client.js';
import { StunError, StunErrorResponseError } from '../../src/nat/stun/errors.js';
import { decodeStunMessage, encodeStunMessage, getAttribute } from '../../src/nat/stun/message.js';

const SERVER = { address: '192.0.2.1', port: 3478 };
const MAPPED = { address: '203.0.113.7', port: 62000 };

describe('retransmission schedule', () => {
  it.each([
    [100, 3, 1000, [0, 100, 300, 700]],
    [100, 3, 500, [0, 100, 300]],
    [100, 8, 500, [0, 100, 300]],
    [100, 0, 1000, [0]],
    [50, 4, 1000, [0, 50, 150, 350, 750]],
    [500, 6, 39_500, [0, 500, 1500, 3500, 7500, 15_500, 31_500]], // RFC 8489 defaults: Rc = 7 transmissions
  ])('rto %d ms, %d retransmits, deadline %d ms → %j', (rto, retransmits, timeout, expected) => {
    expect(transmissionSchedule(rto, retransmits, timeout)).toEqual(expected);
  });
});

describe('STUN client', () => {
  let clock = 0;
  let sent: Array<{ data: Buffer; to: TransportAddress }> = [];
  let client: StunClient;

  beforeEach(() => {
    vi.useFakeTimers();
    clock = 0;
    sent = [];
    client = new StunClient({ send: (data, to) => sent.push({ data, to }), now: () => clock });
  });
  afterEach(() => {
    client.close();
    vi.useRealTimers();
  });

  const advance = async (ms: number): Promise<void> => {
    clock += ms;
    await vi.advanceTimersByTimeAsync(ms);
  };
  const response = (transactionId: Buffer, attributes: StunAttribute[], cls: 'success' | 'error' = 'success'): Buffer =>
    encodeStunMessage({ method: StunMethod.BINDING, class: cls, transactionId, attributes }, { fingerprint: true });
  const txid = (i = 0): Buffer => Buffer.from(sent[i]!.data.subarray(8, 20));

  it('sends a Binding request with CHANGE-REQUEST, SOFTWARE and FINGERPRINT, and retransmits the same bytes on schedule until the deadline', async () => {
    const result = client.binding(SERVER, { changeIp: true, changePort: true, timeoutMs: 1000, rtoMs: 100, retransmits: 5 });
    const failure = expect(result).rejects.toThrow(TimeoutError);
    expect(sent).toHaveLength(1);
    const request = decodeStunMessage(sent[0]!.data);
    expect(request.class).toBe('request');
    expect(getAttribute(request, 'change-request')?.value).toEqual({ changeIp: true, changePort: true });
    expect(getAttribute(request, 'software')?.value).toBe('partyline');
    expect(request.attributes.at(-1)?.kind).toBe('fingerprint');
    expect(sent[0]!.to).toEqual(SERVER);
    await advance(99);
    expect(sent).toHaveLength(1);
    await advance(1);
    expect(sent).toHaveLength(2);
    await advance(200);
    expect(sent).toHaveLength(3);
    await advance(400);
    expect(sent).toHaveLength(4);
    await advance(299);
    expect(client.pending).toBe(1);
    await advance(1);
    await failure;
    await expect(result).rejects.toThrow('STUN binding to 192.0.2.1:3478: no answer within 1000 ms (4 transmissions)');
    expect(sent).toHaveLength(4);
    expect(new Set(sent.map((s) => s.data.toString('hex'))).size).toBe(1);
    expect(client.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('matches the response by transaction id, from any address, and reports what RFC 5780 adds', async () => {
    const result = client.binding(SERVER, { changePort: true });
    await advance(150); // one retransmission
    const stranger = Buffer.from(txid());
    stranger[0]! ^= 0xff;
    expect(client.handleStunPacket(response(stranger, [{ kind: 'xor-mapped-address', value: MAPPED }]), SERVER)).toBe(false);
    const packet = response(txid(), [
      { kind: 'xor-mapped-address', value: MAPPED },
      { kind: 'response-origin', value: { address: '192.0.2.1', port: 3479 } },
      { kind: 'other-address', value: { address: '192.0.2.2', port: 3479 } },
      { kind: 'software', value: 'srv' },
    ]);
    expect(client.handleStunPacket(packet, { address: '::ffff:192.0.2.1', port: 3479 })).toBe(true);
    await expect(result).resolves.toEqual({
      mapped: MAPPED,
      responseOrigin: { address: '192.0.2.1', port: 3479 },
      otherAddress: { address: '192.0.2.2', port: 3479 },
      source: { address: '192.0.2.1', port: 3479 },
      rttMs: 150,
      transmissions: 2,
      software: 'srv',
    } satisfies BindingResult);
    // A late duplicate is not ours any more.
    expect(client.handleStunPacket(packet, SERVER)).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('falls back to MAPPED-ADDRESS from old servers', async () => {
    const result = client.binding(SERVER);
    client.handleStunPacket(response(txid(), [{ kind: 'mapped-address', value: MAPPED }]), SERVER);
    await expect(result).resolves.toMatchObject({ mapped: MAPPED });
  });

  it('ignores a response with a bad FINGERPRINT and keeps waiting', async () => {
    const result = client.binding(SERVER);
    const bad = response(txid(), [{ kind: 'xor-mapped-address', value: MAPPED }]);
    bad[bad.length - 1]! ^= 1;
    expect(client.handleStunPacket(bad, SERVER)).toBe(true);
    expect(client.pending).toBe(1);
    client.handleStunPacket(response(txid(), [{ kind: 'xor-mapped-address', value: MAPPED }]), SERVER);
    await expect(result).resolves.toMatchObject({ mapped: MAPPED });
  });

  it('turns an error response into StunErrorResponseError with the code and unknown attributes', async () => {
    const result = client.binding(SERVER, { changeIp: true });
    client.handleStunPacket(
      response(txid(), [{ kind: 'error-code', value: { code: 420, reason: 'Unknown Attribute' } }, { kind: 'unknown-attributes', value: [0x0003] }], 'error'),
      SERVER,
    );
    const err = await result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StunErrorResponseError);
    expect(err).toMatchObject({ code: 'ERR_STUN_ERROR_RESPONSE', errorCode: 420, reason: 'Unknown Attribute', unknownAttributes: [3] });
  });

  it('fails a success response without a mapped address', async () => {
    const result = client.binding(SERVER);
    client.handleStunPacket(response(txid(), [{ kind: 'software', value: 'x' }]), SERVER);
    await expect(result).rejects.toMatchObject({ code: 'ERR_STUN_NO_MAPPED_ADDRESS' });
  });

  it('aborts, closes and refuses bad servers with typed errors, leaving no timer', async () => {
    const controller = new AbortController();
    const aborted = client.binding(SERVER, { signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toThrow(AbortedError);
    await expect(client.binding(SERVER, { signal: controller.signal })).rejects.toThrow(AbortedError);
    await expect(client.binding({ address: 'stun.example.org', port: 3478 })).rejects.toMatchObject({ code: 'ERR_STUN_ADDRESS' });
    const open = client.binding(SERVER);
    client.close();
    client.close();
    await expect(open).rejects.toMatchObject({ code: 'ERR_STUN_CLOSED' });
    await expect(client.binding(SERVER)).rejects.toBeInstanceOf(StunError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fails the transaction when the socket cannot send', async () => {
    const broken = new StunClient({
      send: () => {
        throw new Error('Not running');
      },
    });
    await expect(broken.binding(SERVER)).rejects.toMatchObject({ code: 'ERR_STUN_SEND', message: 'STUN binding to 192.0.2.1:3478: cannot send (Not running)' });
    expect(vi.getTimerCount()).toBe(0);
  });
});
