import { describe, expect, it } from 'vitest';
import { AttributeType, StunMethod } from '../../src/nat/stun/constants.js';
import type { TransportAddress } from '../../src/nat/stun/address.js';
import type { StunAttribute } from '../../src/nat/stun/attributes.js';
import { decodeStunMessage, encodeStunMessage, getAttribute, verifyFingerprint } from '../../src/nat/stun/message.js';
import type { StunMessage } from '../../src/nat/stun/message.js';
import { StunResponder } from '../../src/nat/stun/responder.js';
import type { DelegatedRequest, StunEndpoint, StunResponderOptions } from '../../src/nat/stun/responder.js';
import { createStunHandler } from '../../src/nat/stun/server.js';

const PA = '192.0.2.1';
const CA = '192.0.2.2';
const FULL = {
  primary: { address: PA, port: 3478 },
  'alternate-port': { address: PA, port: 3479 },
  'alternate-ip': { address: CA, port: 3478 },
  'alternate-both': { address: CA, port: 3479 },
};
const CLIENT = { address: '198.51.100.7', port: 40001 };
const TXID = Buffer.from('00112233445566778899aabb', 'hex');

interface Sent {
  message: StunMessage;
  bytes: Buffer;
  to: TransportAddress;
  via: StunEndpoint;
}

function harness(options: Partial<StunResponderOptions> = {}) {
  let clock = 0;
  const sent: Sent[] = [];
  const responder = new StunResponder({ endpoints: FULL, now: () => clock, ...options });
  const handle = (packet: Buffer, arrivedOn: StunEndpoint = 'primary', from = CLIENT) =>
    responder.handleStunPacket(packet, from, (bytes, to, via) => sent.push({ message: decodeStunMessage(bytes), bytes, to, via }), arrivedOn);
  return { responder, sent, handle, advance: (ms: number) => (clock += ms) };
}

function request(attributes: StunAttribute[] = [], options: { fingerprint?: boolean; cls?: StunMessage['class']; method?: number } = {}): Buffer {
  return encodeStunMessage(
    { method: options.method ?? StunMethod.BINDING, class: options.cls ?? 'request', transactionId: TXID, attributes },
    { fingerprint: options.fingerprint ?? true },
  );
}

const change = (changeIp: boolean, changePort: boolean): StunAttribute => ({ kind: 'change-request', value: { changeIp, changePort } });
const software: StunAttribute = { kind: 'software', value: 'a client that pads its request' };

describe('STUN responder (RFC 8489 Binding, RFC 5780 extensions)', () => {
  it('answers a Binding request with the mapped address, RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE and FINGERPRINT', () => {
    const { handle, sent } = harness();
    expect(handle(request([software]))).toBe('answered');
    expect(sent).toHaveLength(1);
    const [{ message, bytes, to, via }] = sent as [Sent];
    expect(to).toEqual(CLIENT);
    expect(via).toBe('primary');
    expect(message.class).toBe('success');
    expect(message.transactionId).toEqual(TXID);
    expect(getAttribute(message, 'xor-mapped-address')?.value).toEqual(CLIENT);
    expect(getAttribute(message, 'mapped-address')?.value).toEqual(CLIENT);
    expect(getAttribute(message, 'response-origin')?.value).toEqual(FULL.primary);
    expect(getAttribute(message, 'other-address')?.value).toEqual(FULL['alternate-both']);
    expect(getAttribute(message, 'software')?.value).toBe('partyline');
    expect(verifyFingerprint(bytes)).toBe(true);
  });

  it.each([
    [false, false, 'primary', 'primary'],
    [false, true, 'primary', 'alternate-port'],
    [true, false, 'primary', 'alternate-ip'],
    [true, true, 'primary', 'alternate-both'],
    [true, true, 'alternate-both', 'primary'],
    [false, true, 'alternate-ip', 'alternate-both'],
  ] as const)('CHANGE-REQUEST ip=%s port=%s arriving on %s is answered from %s', (changeIp, changePort, arrivedOn, expected) => {
    const { handle, sent } = harness();
    expect(handle(request([change(changeIp, changePort), software]), arrivedOn)).toBe('answered');
    expect(sent[0]!.via).toBe(expected);
    expect(getAttribute(sent[0]!.message, 'response-origin')?.value).toEqual(FULL[expected]);
    expect(getAttribute(sent[0]!.message, 'xor-mapped-address')?.value).toEqual(CLIENT);
  });

  it('answers 420 listing CHANGE-REQUEST when it has no such alternate (RFC 5780 §6.1)', () => {
    const { handle, sent } = harness({ endpoints: { primary: FULL.primary, 'alternate-port': FULL['alternate-port'] } });
    expect(handle(request([change(true, false)]))).toBe('refused');
    const { message, via } = sent[0]!;
    expect(via).toBe('primary');
    expect(message.class).toBe('error');
    expect(getAttribute(message, 'error-code')?.value).toEqual({ code: 420, reason: 'Unknown Attribute' });
    expect(getAttribute(message, 'unknown-attributes')?.value).toEqual([AttributeType.CHANGE_REQUEST]);
    // A second port alone still serves change-port, and is named in OTHER-ADDRESS.
    expect(handle(request([change(false, true), software]))).toBe('answered');
    expect(sent[1]!.via).toBe('alternate-port');
    expect(getAttribute(sent[1]!.message, 'other-address')?.value).toEqual(FULL['alternate-port']);
  });

  it('answers 420 with UNKNOWN-ATTRIBUTES to unknown comprehension-required attributes', () => {
    const { handle, sent } = harness();
    expect(handle(request([{ kind: 'raw', type: 0x0026, value: Buffer.alloc(4) }, { kind: 'raw', type: 0x4001, value: Buffer.alloc(0) }]))).toBe('refused');
    expect(getAttribute(sent[0]!.message, 'error-code')?.value.code).toBe(420);
    expect(getAttribute(sent[0]!.message, 'unknown-attributes')?.value).toEqual([0x0026, 0x4001]);
  });

  it('has the change-IP request answered by another server when a delegate takes it', () => {
    const delegated: DelegatedRequest[] = [];
    const a = harness({ endpoints: { primary: FULL.primary, 'alternate-port': FULL['alternate-port'] }, delegateChangeIp: (r) => delegated.push(r) > 0 });
    const packet = request([change(true, true), software]);
    expect(a.handle(packet)).toBe('delegated');
    expect(a.sent).toHaveLength(0);
    expect(delegated).toEqual([{ packet, source: CLIENT, changePort: true }]);
    // B answers from its own address, telling the client what A saw.
    const b = harness({ endpoints: { primary: { address: '203.0.113.5', port: 3478 } } });
    const sent: Sent[] = [];
    expect(b.responder.answerOnBehalf(delegated[0]!.packet, delegated[0]!.source, (bytes, to, via) => sent.push({ message: decodeStunMessage(bytes), bytes, to, via }))).toBe('answered');
    expect(sent[0]!.to).toEqual(CLIENT);
    expect(getAttribute(sent[0]!.message, 'xor-mapped-address')?.value).toEqual(CLIENT);
    expect(getAttribute(sent[0]!.message, 'response-origin')?.value).toEqual({ address: '203.0.113.5', port: 3478 });
  });

  it('never answers with more than the request size plus the allowance', () => {
    const { handle, sent } = harness();
    const bare = request([], { fingerprint: false });
    expect(bare.length).toBe(20);
    expect(handle(bare)).toBe('answered');
    const response = sent[0]!;
    expect(response.bytes.length).toBeLessThanOrEqual(20 + 48);
    // What must stay stays; SOFTWARE and MAPPED-ADDRESS went first.
    expect(response.message.attributes.map((a) => a.kind)).toEqual(['xor-mapped-address', 'response-origin', 'other-address', 'fingerprint']);
    // IPv6 client, bare request: still the mapped address.
    const v6 = harness();
    expect(v6.handle(bare, 'primary', { address: '2001:db8::42', port: 5 })).toBe('answered');
    expect(v6.sent[0]!.bytes.length).toBeLessThanOrEqual(68);
    expect(getAttribute(v6.sent[0]!.message, 'xor-mapped-address')?.value).toEqual({ address: '2001:db8::42', port: 5 });
  });

  it('rate-limits per source with a token bucket and refills with time', () => {
    const { handle, advance } = harness({ rateLimit: { burst: 3, perSecond: 2 } });
    const packet = request([software]);
    expect([1, 2, 3, 4].map(() => handle(packet))).toEqual(['answered', 'answered', 'answered', 'rate-limited']);
    expect(handle(packet, 'primary', { address: '198.51.100.8', port: 1 })).toBe('answered'); // another source has its own bucket
    advance(499);
    expect(handle(packet)).toBe('rate-limited');
    advance(1);
    expect(handle(packet)).toBe('answered');
    // IPv6 sources count per /64.
    const v6 = harness({ rateLimit: { burst: 1, perSecond: 1 } });
    expect(v6.handle(packet, 'primary', { address: '2001:db8:1:2::1', port: 1 })).toBe('answered');
    expect(v6.handle(packet, 'primary', { address: '2001:db8:1:2::ffff', port: 1 })).toBe('rate-limited');
    expect(v6.handle(packet, 'primary', { address: '2001:db8:1:3::1', port: 1 })).toBe('answered');
  });

  it('leaves responses, indications and other methods to other handlers, and drops what is malformed', () => {
    const { handle, sent, responder } = harness();
    expect(handle(request([], { cls: 'success' }))).toBe('not-request');
    expect(handle(request([], { cls: 'indication' }))).toBe('not-request');
    expect(handle(request([], { method: 0x003 }))).toBe('unsupported-method');
    // A relay's ChannelBind: another method with an attribute only that method knows (CHANNEL-NUMBER, 0x000C).
    expect(handle(request([{ kind: 'raw', type: 0x000c, value: Buffer.from([0x40, 0x01, 0, 0]) }], { method: 0x009 }))).toBe('unsupported-method');
    expect(handle(Buffer.from([0x00, 0x01, 0x00]))).toBe('malformed');
    expect(handle(Buffer.from([0x80, 0x00, 0x00, 0x00]))).toBe('malformed');
    const badFingerprint = request([software]);
    badFingerprint[badFingerprint.length - 1]! ^= 1;
    expect(handle(badFingerprint)).toBe('malformed');
    expect(sent).toHaveLength(0);
    expect(responder.counts).toMatchObject({ 'not-request': 2, 'unsupported-method': 2, malformed: 3, answered: 0 });
  });

  it('does not advertise unspecified addresses', () => {
    const { handle, sent } = harness({ endpoints: { primary: { address: '0.0.0.0', port: 3478 }, 'alternate-port': { address: '0.0.0.0', port: 3479 } } });
    expect(handle(request([change(false, true), software]))).toBe('answered');
    expect(sent[0]!.via).toBe('alternate-port');
    expect(getAttribute(sent[0]!.message, 'response-origin')).toBeUndefined();
    expect(getAttribute(sent[0]!.message, 'other-address')).toBeUndefined();
  });

  it('createStunHandler gives a socket owner a handler with the (buf, rinfo, send) shape', () => {
    const handler = createStunHandler({ address: '10.0.0.1', port: 5000 });
    const out: Array<{ to: TransportAddress; via: StunEndpoint }> = [];
    expect(handler(request([software]), { address: '::ffff:10.0.0.9', port: 6000 }, (_b, to, via) => out.push({ to, via }))).toBe('answered');
    expect(out).toEqual([{ to: { address: '10.0.0.9', port: 6000 }, via: 'primary' }]);
    expect(handler(request([change(false, true)]), CLIENT, () => undefined)).toBe('refused');
  });
});
