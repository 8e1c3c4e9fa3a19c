import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../src/media/errors.js';
import { decodeRtcpCompound, encodeRtcpCompound } from '../../src/media/rtcp.js';
import { RtpReceiverStats, RtpSenderStats, roundTripTimeMs } from '../../src/media/rtp-stats.js';

const published = JSON.parse(readFileSync(new URL('../vectors/rtp/published-packets.json', import.meta.url), 'utf8')) as {
  roundTrip: { senderReportNtp: string; arrival: string; lastSenderReport: string; delaySinceLastSenderReport: string; roundTripSeconds: number };
};

const CLOCK = 48000;
const FRAME = 960;

/** Feed `seqs` as 20 ms packets (timestamp and arrival follow the sequence number) and return the verdicts. */
function feed(stats: RtpReceiverStats, seqs: number[], startMs = 0): string[] {
  return seqs.map((seq, i) => stats.onPacket(seq & 0xffff, (seq * FRAME) >>> 0, startMs + i * 20));
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

describe('RTP receiver statistics: A.1 sequence validation', () => {
  it('a new source is on probation until two packets in sequence (MIN_SEQUENTIAL = 2)', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    expect(s.valid).toBe(false);
    expect(feed(s, [100])).toEqual(['probation']);
    expect(s.received).toBe(0);
    expect(s.onPacket(101, 101 * FRAME, 20)).toBe('valid');
    expect(s.valid).toBe(true);
    expect(s.received).toBe(1);
    expect(s.expected).toBe(1);
  });

  it('probation restarts on a gap; minSequential 1 accepts the first packet', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    expect(feed(s, [10, 12, 13])).toEqual(['probation', 'probation', 'valid']);
    const t = new RtpReceiverStats(1, { clockRate: CLOCK, minSequential: 1 });
    expect(feed(t, [0, 1])).toEqual(['valid', 'valid']);
    expect(t.received).toBe(2);
    expect(t.cumulativeLost).toBe(0);
  });

  it('in order: nothing lost, extended highest = last sequence number', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    feed(s, range(1000, 100));
    expect(s.received).toBe(99);
    expect(s.expected).toBe(99);
    expect(s.cumulativeLost).toBe(0);
    expect(s.extendedHighestSequence).toBe(1099);
  });

  it('counts cycles across the 16-bit wrap', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    feed(s, range(65500, 100));
    expect(s.extendedHighestSequence).toBe(65536 + 63);
    expect(s.expected).toBe(99);
    expect(s.cumulativeLost).toBe(0);
  });

  it('duplicates are counted as received, so cumulative loss can go negative (A.3)', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    feed(s, [...range(0, 10), 5, 6, 7]);
    expect(s.received).toBe(12);
    expect(s.expected).toBe(9);
    expect(s.cumulativeLost).toBe(-3);
    expect(s.reportBlock(0).fractionLost).toBe(0);
  });

  it('a reordered packet within MAX_MISORDER is counted and leaves the highest alone', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    feed(s, [0, 1, 2, 4, 5, 3]);
    expect(s.extendedHighestSequence).toBe(5);
    expect(s.cumulativeLost).toBe(0);
  });

  it('a jump beyond MAX_DROPOUT is believed only when the next packet follows it (restart)', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    feed(s, range(0, 10));
    expect(s.onPacket(20000, 0, 300)).toBe('bad');
    expect(s.onPacket(20, 0, 320)).toBe('valid'); // not the bad_seq + 1: the old stream goes on
    expect(s.onPacket(30000, 0, 340)).toBe('bad');
    expect(s.onPacket(30001, 0, 360)).toBe('valid'); // restart at 30001
    expect(s.received).toBe(1);
    expect(s.expected).toBe(1);
    expect(s.extendedHighestSequence).toBe(30001);
  });

  it('clamps cumulative loss to the signed 24-bit field', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK, minSequential: 1 });
    let seq = 0;
    for (let i = 0; i < 3000; i++) {
      s.onPacket(seq & 0xffff, 0, i);
      seq += 2999; // under MAX_DROPOUT: a gap, not a restart
    }
    expect(s.expected - s.received).toBeGreaterThan(0x7fffff);
    expect(s.cumulativeLost).toBe(0x7fffff);
    expect(s.reportBlock(0).cumulativeLost).toBe(0x7fffff);
  });
});

describe('RTP receiver statistics: A.3 fraction lost per interval', () => {
  it('10 of 100 lost, then a clean interval', () => {
    const s = new RtpReceiverStats(7, { clockRate: CLOCK });
    const seqs = range(0, 101).filter((q) => q < 50 || q >= 60); // first packet is probation; 1..100 expected
    feed(s, seqs);
    const first = s.reportBlock(2000);
    expect(s.expected).toBe(100);
    expect(first.cumulativeLost).toBe(10);
    expect(first.fractionLost).toBe(Math.floor((10 * 256) / 100));
    expect(first.highestSequence).toBe(100);
    expect(first.ssrc).toBe(7);
    feed(s, range(101, 50), 3000);
    const second = s.reportBlock(4000);
    expect(second.fractionLost).toBe(0);
    expect(second.cumulativeLost).toBe(10);
  });

  it('the interval covers only packets since the previous block', () => {
    const s = new RtpReceiverStats(7, { clockRate: CLOCK });
    feed(s, range(0, 51));
    s.reportBlock(0);
    feed(s, range(51, 50).filter((q) => q % 2 === 0), 1000); // half of 51..100 lost
    const b = s.reportBlock(2000);
    expect(b.fractionLost).toBe(Math.floor((25 * 256) / 50));
  });
});

describe('RTP receiver statistics: A.8 interarrival jitter', () => {
  it('is 0 for constant transit time', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    feed(s, range(0, 200), 12345);
    expect(s.jitter).toBe(0);
    expect(s.reportBlock(0).jitter).toBe(0);
  });

  it('follows J += (|D| − J)/16: alternating 10 ms transit gives J = 480·(1 − (15/16)^n)', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK, minSequential: 1 });
    const n = 40;
    for (let i = 0; i <= n; i++) s.onPacket(i, i * FRAME, i * 20 + (i % 2) * 10);
    const expected = 480 * (1 - (15 / 16) ** n);
    expect(s.jitter).toBeCloseTo(expected, 6);
    expect(s.jitterMs).toBeCloseTo((expected * 1000) / CLOCK, 6);
    expect(s.reportBlock(0).jitter).toBe(Math.floor(expected));
  });

  it('is not disturbed by the RTP timestamp wrapping', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK, minSequential: 1 });
    const start = 0xffffffff - 50 * FRAME;
    for (let i = 0; i < 100; i++) s.onPacket(i, (start + i * FRAME) >>> 0, i * 20);
    expect(s.jitter).toBe(0);
  });
});

describe('LSR, DLSR and round-trip time (RFC 3550 §6.4.1)', () => {
  const rt = published.roundTrip;

  it('the Figure 2 example: A − LSR − DLSR = 6.125 s', () => {
    expect(roundTripTimeMs(parseInt(rt.arrival, 16), parseInt(rt.lastSenderReport, 16), parseInt(rt.delaySinceLastSenderReport, 16))).toBe(rt.roundTripSeconds * 1000);
  });

  it('the report block carries LSR from the SR and DLSR in 1/65536 s', () => {
    const s = new RtpReceiverStats(1, { clockRate: CLOCK });
    expect(s.reportBlock(0).lastSenderReport).toBe(0);
    expect(s.reportBlock(0).delaySinceLastSenderReport).toBe(0);
    s.onSenderReport(BigInt(`0x${rt.senderReportNtp}`), 10_000);
    const b = s.reportBlock(10_000 + 5250);
    expect(b.lastSenderReport).toBe(parseInt(rt.lastSenderReport, 16));
    expect(b.delaySinceLastSenderReport).toBe(parseInt(rt.delaySinceLastSenderReport, 16));
  });

  it('no RTT without an SR (LSR 0), nor when the result would be negative; wraps modulo 2^32', () => {
    expect(roundTripTimeMs(0x12345678, 0, 0)).toBeUndefined();
    expect(roundTripTimeMs(0x00010000, 0x00020000, 0)).toBeUndefined();
    expect(roundTripTimeMs(0x00008000, 0xffff8000, 0)).toBe(1000);
  });

  it('a block built from statistics goes through the RTCP codec unchanged', () => {
    const s = new RtpReceiverStats(0xabcdef01, { clockRate: CLOCK });
    feed(s, range(0, 80).filter((q) => q !== 40));
    s.onSenderReport(0xb44db70520000000n, 0);
    const block = s.reportBlock(1000);
    const rr = encodeRtcpCompound([{ kind: 'rr', ssrc: 5, reports: [block] }]);
    expect(decodeRtcpCompound(rr)).toEqual([{ kind: 'rr', ssrc: 5, reports: [block] }]);
  });
});

describe('RTP sender statistics', () => {
  it('counts packets and payload octets and extrapolates the RTP timestamp to the report time', () => {
    const s = new RtpSenderStats({ clockRate: CLOCK });
    for (let i = 0; i < 50; i++) s.onSent(60, 1000 + i * FRAME, i * 20);
    const info = s.senderInfo(49 * 20 + 5, 0x1234n);
    expect(info).toEqual({ ntpTimestamp: 0x1234n, rtpTimestamp: 1000 + 49 * FRAME + 240, packetCount: 50, octetCount: 3000 });
  });
});

describe('options', () => {
  it.each<[string, () => unknown]>([
    ['clock rate 0', () => new RtpReceiverStats(1, { clockRate: 0 })],
    ['SSRC 2^32', () => new RtpReceiverStats(2 ** 32, { clockRate: CLOCK })],
    ['minSequential 0', () => new RtpReceiverStats(1, { clockRate: CLOCK, minSequential: 0 })],
    ['sender clock rate -1', () => new RtpSenderStats({ clockRate: -1 })],
  ])('%s → ERR_MEDIA_OPTIONS', (_what, make) => {
    expect(make).toThrow(MediaError);
    try {
      make();
    } catch (err) {
      expect((err as MediaError).code).toBe('ERR_MEDIA_OPTIONS');
    }
  });
});
