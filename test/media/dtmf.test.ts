/**
 * RFC 4733 telephone events: the §2.3 payload layout byte for byte, digit
 * codes (§3.2), malformed payloads, the sender's packet sequence for a digit
 * string, and the receiver's once-per-event reporting.
 */
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../src/media/errors.js';
import {
  checkDtmfDigits, decodeTelephoneEvent, DtmfReceiver, DtmfSender, dtmfDigit, dtmfEvent, encodeTelephoneEvent,
} from '../../src/media/dtmf.js';

describe('telephone-event payload (RFC 4733 §2.3)', () => {
  it.each([
    // event, E, volume, duration → bytes
    [{ event: 5, end: false, volume: 10, duration: 800 }, '050a0320'],
    [{ event: 11, end: true, volume: 10, duration: 4800 }, '0b8a12c0'], // '#', end, 100 ms at 48 kHz
    [{ event: 0, end: true, volume: 63, duration: 0xffff }, '00bfffff'],
    [{ event: 255, end: false, volume: 0, duration: 0 }, 'ff000000'],
  ])('%o ⇄ %s', (event, hex) => {
    expect(encodeTelephoneEvent(event).toString('hex')).toBe(hex);
    expect(decodeTelephoneEvent(Buffer.from(hex, 'hex'))).toEqual(event);
  });

  it('ignores the reserved R bit on decoding', () => {
    expect(decodeTelephoneEvent(Buffer.from('01ca00a0', 'hex'))).toEqual({ event: 1, end: true, volume: 10, duration: 160 });
  });

  it('refuses payloads that are not 4 bytes and fields out of range', () => {
    for (const bad of ['', '0a0a00', '0a0a00a000']) {
      expect(() => decodeTelephoneEvent(Buffer.from(bad, 'hex'))).toThrow(/expected 4/);
    }
    expect(() => encodeTelephoneEvent({ event: 1, end: false, volume: 64, duration: 0 })).toThrow(MediaError);
    expect(() => encodeTelephoneEvent({ event: 1, end: false, volume: 1, duration: 70000 })).toThrow(/duration: 70000/);
  });

  it('maps the 16 DTMF digits to events 0–15 (§3.2)', () => {
    expect([...'0123456789*#ABCD'].map(dtmfEvent)).toEqual([...Array(16).keys()]);
    expect(dtmfEvent('b')).toBe(13);
    expect(dtmfDigit(10)).toBe('*');
    expect(dtmfDigit(16)).toBeUndefined();
    expect(() => dtmfEvent('E')).toThrow(/expected one of 0-9/);
    expect(checkDtmfDigits('12a#')).toBe('12A#');
    expect(() => checkDtmfDigits('')).toThrow(MediaError);
    expect(() => checkDtmfDigits('1x')).toThrow(/"x"/);
  });
});

describe('DtmfSender', () => {
  it('sends each digit as 5 packets of one timestamp with growing duration, the end packet 3 times, then a frame of audio', () => {
    const sender = new DtmfSender({ frameTicks: 960 });
    expect(sender.busy).toBe(false);
    sender.enqueue('1#');
    expect(sender.busy).toBe(true);
    const steps = [];
    for (let f = 0; f < 20; f++) {
      const s = sender.step(1000 + 960 * f);
      steps.push(s.kind === 'audio' ? 'audio' : `${s.digit} ts=${s.timestamp}${s.marker ? ' M' : ''} ${s.payload.toString('hex')}`);
    }
    expect(steps).toEqual([
      '1 ts=1000 M 010a03c0',
      '1 ts=1000 010a0780',
      '1 ts=1000 010a0b40',
      '1 ts=1000 010a0f00',
      '1 ts=1000 018a12c0',
      '1 ts=1000 018a12c0',
      '1 ts=1000 018a12c0',
      'audio',
      '# ts=8680 M 0b0a03c0',
      '# ts=8680 0b0a0780',
      '# ts=8680 0b0a0b40',
      '# ts=8680 0b0a0f00',
      '# ts=8680 0b8a12c0',
      '# ts=8680 0b8a12c0',
      '# ts=8680 0b8a12c0',
      'audio',
      'audio',
      'audio',
      'audio',
      'audio',
    ]);
    expect(sender.busy).toBe(false);
  });

  it('clear() drops the digit in progress and the queue', () => {
    const sender = new DtmfSender({ frameTicks: 960 });
    sender.enqueue('123');
    sender.step(0);
    sender.clear();
    expect(sender.busy).toBe(false);
    expect(sender.step(960).kind).toBe('audio');
  });
});

describe('DtmfReceiver', () => {
  it('reports each event once, at whichever of its packets comes first', () => {
    const sender = new DtmfSender({ frameTicks: 960 });
    sender.enqueue('5*');
    const receiver = new DtmfReceiver();
    const got: string[] = [];
    for (let f = 0; f < 16; f++) {
      const s = sender.step(960 * f);
      if (s.kind !== 'event' || (s.marker && s.digit === '*')) continue; // the first packet of '*' is lost
      const digit = receiver.onPacket(s.timestamp, s.payload);
      if (digit !== undefined) got.push(digit);
    }
    expect(got).toEqual(['5', '*']);
    expect(receiver.onPacket(0, encodeTelephoneEvent({ event: 5, end: true, volume: 10, duration: 4800 }))).toBeUndefined();
    expect(receiver.onPacket(99, encodeTelephoneEvent({ event: 40, end: false, volume: 10, duration: 0 }))).toBeUndefined(); // not DTMF
    expect(() => receiver.onPacket(5, Buffer.alloc(3))).toThrow(MediaError);
  });
});
