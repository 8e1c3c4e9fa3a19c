/**
 * The jitter buffer under simulated networks: packets of 20 ms frames at
 * 48 kHz are "sent" every 20 ms, arrive after a delay the scenario picks,
 * and the playout clock pops every 20 ms, 7 ms off the send grid. Seeded
 * randomness; no real time.
 */
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../src/media/errors.js';
import { JitterBuffer } from '../../src/media/jitter-buffer.js';
import type { JitterBufferOptions, JitterBufferStats, JitterFrame, PushResult } from '../../src/media/jitter-buffer.js';
import { rng } from '../helpers/fuzz.js';

const CLOCK = 48000;
const FRAME_TS = 960;

interface Arrival {
  seq: number;
  ts: number;
  at: number;
  marker?: boolean;
  payload: Buffer;
}

interface StreamSpec {
  count: number;
  startSeq?: number;
  startTs?: number;
  /** Send time of the first packet, ms. */
  startMs?: number;
  /** Network delay of packet i, ms. */
  delay?: (i: number) => number;
  drop?: (i: number) => boolean;
}

const payloadOf = (i: number): Buffer => Buffer.from(`frame-${i}`);

function stream(spec: StreamSpec): Arrival[] {
  const out: Arrival[] = [];
  for (let i = 0; i < spec.count; i++) {
    if (spec.drop?.(i)) continue;
    out.push({
      seq: ((spec.startSeq ?? 0) + i) & 0xffff,
      ts: ((spec.startTs ?? 0) + i * FRAME_TS) >>> 0,
      at: (spec.startMs ?? 0) + i * 20 + (spec.delay?.(i) ?? 30),
      payload: payloadOf(i),
    });
  }
  return out;
}

interface Tick {
  t: number;
  frame: JitterFrame;
  stats: JitterBufferStats;
}

interface Run {
  ticks: Tick[];
  pushes: { arrival: Arrival; result: PushResult }[];
  stats: JitterBufferStats;
}

/** Deliver `arrivals` (in arrival order) and pop every 20 ms from `fromMs` until `toMs`. */
function simulate(arrivals: Arrival[], toMs: number, options: Partial<JitterBufferOptions> = {}, fromMs = 7): Run {
  const jb = new JitterBuffer({ clockRate: CLOCK, ...options });
  const queue = [...arrivals].sort((a, b) => a.at - b.at);
  const ticks: Tick[] = [];
  const pushes: Run['pushes'] = [];
  let next = 0;
  for (let t = fromMs; t < toMs; t += 20) {
    while (next < queue.length && queue[next]!.at <= t) {
      const a = queue[next++]!;
      pushes.push({ arrival: a, result: jb.push({ sequenceNumber: a.seq, timestamp: a.ts, payload: a.payload, marker: a.marker }, a.at) });
    }
    ticks.push({ t, frame: jb.pop(t), stats: jb.stats });
  }
  return { ticks, pushes, stats: jb.stats };
}

const kinds = (run: Run): string[] => run.ticks.map((x) => x.frame.kind);
const played = (run: Run): number[] => run.ticks.flatMap((x) => (x.frame.kind === 'frame' ? [x.frame.sequenceNumber] : []));
const lastFrameIndex = (run: Run): number => run.ticks.map((x) => x.frame.kind).lastIndexOf('frame');

/** `seqs` advance by one modulo 2^16 at every step. */
function consecutive(seqs: number[]): boolean {
  return seqs.every((s, i) => i === 0 || s === ((seqs[i - 1]! + 1) & 0xffff));
}

describe('jitter buffer: constant delay', () => {
  it('plays every packet in order, nothing lost or concealed, delay settles at the minimum', () => {
    const run = simulate(stream({ count: 500 }), 10_100);
    const end = lastFrameIndex(run);
    expect(kinds(run).slice(0, end + 1).filter((k) => k === 'lost' || k === 'stretch')).toEqual([]);
    expect(run.stats.lost).toBe(0);
    expect(run.stats.late).toBe(0);
    // The initial 40 ms target shrinks to 20 ms by dropping at most one frame.
    expect(run.stats.dropped).toBeLessThanOrEqual(1);
    expect(run.stats.played + run.stats.dropped).toBe(500);
    expect(run.ticks[end]!.frame).toMatchObject({ kind: 'frame', sequenceNumber: 499, payload: payloadOf(499) });
    const atEnd = run.ticks[end]!.stats;
    expect(atEnd.targetDelayMs).toBe(20);
    expect(atEnd.currentDelayMs).toBeGreaterThanOrEqual(20);
    expect(atEnd.currentDelayMs).toBeLessThan(40);
  });

  it('starts playing when the first frame is due, not before', () => {
    const run = simulate(stream({ count: 10, delay: () => 50 }), 400, { initialDelayMs: 60 });
    const first = run.ticks.findIndex((x) => x.frame.kind === 'frame');
    // Sent at 0, arrived at 50, due at 50 + 60 = 110: the first pop at or after 110 is 127.
    expect(run.ticks[first]!.t).toBe(127);
    expect(kinds(run).slice(0, first).every((k) => k === 'silence')).toBe(true);
  });

  it('is deterministic: the same arrivals give the same frames', () => {
    const random = rng(42);
    const arrivals = stream({ count: 300, delay: () => 30 + random() * 70 });
    expect(simulate(arrivals, 6500)).toEqual(simulate(arrivals, 6500));
  });
});

describe('jitter buffer: jitter', () => {
  const jittery = (seed: number, spread: number, count: number): Arrival[] => {
    const random = rng(seed);
    return stream({ count, delay: () => 30 + random() * spread });
  };

  it('holds the target near the 95th percentile of the delay variation and loses under 5% late', () => {
    const run = simulate(jittery(7, 60, 1500), 30_200);
    const warm = run.pushes.filter((p) => p.arrival.at >= 5000);
    const late = warm.filter((p) => p.result === 'late').length;
    expect(late / warm.length).toBeLessThan(0.05);
    const target = run.ticks[run.ticks.length - 100]!.stats.targetDelayMs;
    expect(target).toBeGreaterThan(48);
    expect(target).toBeLessThanOrEqual(60);
    // With no loss in the network, every lost frame is a late packet.
    expect(run.stats.lost).toBe(run.stats.late);
    expect(run.stats.played + run.stats.dropped + run.stats.late).toBe(1500);
  });

  it('does far better than a fixed 20 ms buffer on the same network', () => {
    const arrivals = jittery(8, 60, 1000);
    const adaptive = simulate(arrivals, 20_200);
    const fixed = simulate(arrivals, 20_200, { minDelayMs: 20, maxDelayMs: 20, initialDelayMs: 20 });
    expect(fixed.stats.late / 1000).toBeGreaterThan(0.3);
    expect(adaptive.stats.late / 1000).toBeLessThan(0.05);
  });

  it('never goes beyond maxDelayMs, however bad the jitter', () => {
    const run = simulate(jittery(9, 400, 500), 11_000);
    expect(Math.max(...run.ticks.map((x) => x.stats.targetDelayMs))).toBe(200);
    expect(run.stats.late).toBeGreaterThan(0);
  });

  it('grows quickly when jitter starts and shrinks slowly when it stops', () => {
    const random = rng(11);
    // 10 s calm, 10 s of 0–80 ms jitter, 30 s calm.
    const arrivals = stream({ count: 2500, delay: (i) => (i >= 500 && i < 1000 ? 30 + random() * 80 : 30) });
    const run = simulate(arrivals, 50_000);
    const targetAt = (ms: number): number => run.ticks.find((x) => x.t >= ms)!.stats.targetDelayMs;
    expect(targetAt(9_900)).toBe(20);
    // Up: past 50 ms within 0.8 s of the jitter starting, ~75 ms (its 95th percentile) after 2 s.
    expect(targetAt(10_800)).toBeGreaterThanOrEqual(50);
    expect(targetAt(12_000)).toBeGreaterThanOrEqual(70);
    // Down: held while the 5 s history remembers the jitter, then at most 10 ms/s to the floor.
    expect(targetAt(21_000)).toBeGreaterThanOrEqual(70);
    expect(targetAt(26_000)).toBeGreaterThan(30);
    expect(targetAt(26_000)).toBeLessThan(60);
    expect(targetAt(35_000)).toBe(20);
    // Down by at most 10 ms per second: 0.2 ms per 20 ms tick.
    for (let i = 1; i < run.ticks.length; i++) {
      expect(run.ticks[i]!.stats.targetDelayMs).toBeGreaterThanOrEqual(run.ticks[i - 1]!.stats.targetDelayMs - 0.2 - 1e-9);
    }
    const jitterLate = run.pushes.filter((p) => p.arrival.at >= 11_000 && p.arrival.at < 20_000 && p.result === 'late').length;
    expect(jitterLate / 450).toBeLessThan(0.05);
    // Coming down, frames were dropped (not concealed) to shed delay.
    expect(run.stats.dropped).toBeGreaterThan(0);
  });

  it('a burst after a 200 ms network freeze: late packets, then the target covers it', () => {
    // Packets 100–109 are held until the freeze ends at 2230 ms and arrive together.
    const arrivals = stream({ count: 400, delay: (i) => (i >= 100 && i < 110 ? 2230 - i * 20 : 30) });
    const run = simulate(arrivals, 8200, { initialDelayMs: 20 });
    expect(run.stats.late).toBeGreaterThan(0);
    expect(run.stats.late).toBeLessThan(10);
    expect(run.ticks.find((x) => x.t >= 2300)!.stats.targetDelayMs).toBeGreaterThan(20);
    const after = run.pushes.filter((p) => p.arrival.seq >= 110);
    expect(after.every((p) => p.result === 'queued')).toBe(true);
  });
});

describe('jitter buffer: loss, reordering, duplicates', () => {
  it('bursty loss: a lost frame for each missing packet, in place, with the next packet for FEC', () => {
    const missing = new Set([100, 101, 102, 103, 104, 300, 301, 400]);
    const run = simulate(stream({ count: 500, drop: (i) => missing.has(i) }), 10_100, { initialDelayMs: 20 });
    const sequence = run.ticks.flatMap((x) => (x.frame.kind === 'frame' || x.frame.kind === 'lost' ? [x.frame] : [])).slice(0, 500);
    expect(consecutive(sequence.map((f) => (f as { sequenceNumber: number }).sequenceNumber))).toBe(true);
    const lost = sequence.filter((f) => f.kind === 'lost') as Extract<JitterFrame, { kind: 'lost' }>[];
    expect(lost.map((f) => f.sequenceNumber)).toEqual([...missing]);
    expect(lost.map((f) => f.timestamp)).toEqual([...missing].map((i) => i * FRAME_TS));
    // The frame just before a present packet can be rebuilt from that packet's in-band FEC.
    expect(lost.filter((f) => f.fec !== undefined).map((f) => [f.sequenceNumber, f.fec!.toString()])).toEqual([
      [104, 'frame-105'],
      [301, 'frame-302'],
      [400, 'frame-401'],
    ]);
    expect(run.stats.lost).toBe(8);
    expect(run.stats.late).toBe(0);
    expect(run.stats.concealed).toBeGreaterThanOrEqual(8);
  });

  it('reordering: swapped neighbours play in order once the target covers the swap', () => {
    // Every 10th packet arrives 21 ms late, just after its successor.
    const run = simulate(stream({ count: 600, delay: (i) => (i % 10 === 5 ? 51 : 30) }), 12_200);
    const swapped = run.pushes.filter((p) => p.arrival.seq % 10 === 5);
    expect(swapped.every((p, k) => k === 0 || run.pushes[run.pushes.indexOf(p) - 1]!.arrival.seq === p.arrival.seq + 1)).toBe(true);
    expect(run.stats.late).toBe(0);
    expect(run.stats.lost).toBe(0);
    const seqs = played(run);
    expect(seqs.length + run.stats.dropped).toBe(600);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('duplicates are dropped, whether still buffered or already played', () => {
    const base = stream({ count: 200 });
    const copies = [
      ...base.filter((a) => a.seq % 20 === 3).map((a) => ({ ...a, at: a.at + 5 })),
      { ...base[50]!, at: base[50]!.at + 600 },
    ];
    const run = simulate([...base, ...copies], 4200, { initialDelayMs: 20 });
    expect(run.pushes.filter((p) => p.result === 'duplicate').length).toBe(copies.length);
    expect(run.stats.duplicates).toBe(copies.length);
    expect(run.stats.late).toBe(0);
    const seqs = played(run);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(run.stats.played + run.stats.dropped).toBe(200);
  });

  it('a packet later than its playout is dropped as late and its frame is lost', () => {
    const run = simulate(stream({ count: 200, delay: (i) => (i === 60 ? 330 : 30) }), 4200, { initialDelayMs: 20 });
    expect(run.pushes.find((p) => p.arrival.seq === 60)!.result).toBe('late');
    const lost = run.ticks.filter((x) => x.frame.kind === 'lost').map((x) => x.frame) as Extract<JitterFrame, { kind: 'lost' }>[];
    expect(lost[0]).toMatchObject({ sequenceNumber: 60, timestamp: 60 * FRAME_TS });
    expect(run.stats.late).toBe(1);
    expect(run.stats.lost).toBe(1);
  });
});

describe('jitter buffer: wraparound, talkspurts, discontinuities', () => {
  it('plays through the sequence-number and timestamp wrap', () => {
    const startTs = 2 ** 32 - 100 * FRAME_TS;
    const run = simulate(stream({ count: 300, startSeq: 65500, startTs }), 6200, { initialDelayMs: 20 });
    const frames = run.ticks.flatMap((x) => (x.frame.kind === 'frame' ? [x.frame] : []));
    expect(frames).toHaveLength(300);
    expect(consecutive(frames.map((f) => f.sequenceNumber))).toBe(true);
    expect(frames.map((f) => f.sequenceNumber)).toContain(0);
    expect(frames.every((f, i) => i === 0 || f.timestamp === (frames[i - 1]!.timestamp + FRAME_TS) % 2 ** 32)).toBe(true);
    expect(frames[100]!.timestamp).toBe(0);
    expect(run.stats.lost).toBe(0);
  });

  it('DTX: a 2 s silence between talkspurts is silence, not loss; the next spurt starts when due', () => {
    const first = stream({ count: 100 });
    // Sequence numbers go on at 100, timestamps and send times jump 2 s (100 frames) ahead.
    const second = stream({ count: 100, startSeq: 100, startTs: 200 * FRAME_TS, startMs: 4000 }).map((a, i) => ({ ...a, marker: i === 0 }));
    const run = simulate([...first, ...second], 6200, { initialDelayMs: 20 });
    expect(run.stats.lost).toBe(0);
    expect(run.stats.late).toBe(0);
    expect(run.stats.played).toBe(200);
    const gap = run.ticks.filter((x) => x.t > 2100 && x.t < 4000).map((x) => x.frame.kind);
    // A short tail of concealment (the buffer cannot know it is silence), then silence.
    expect(gap.filter((k) => k === 'lost').length).toBeLessThanOrEqual(5);
    expect(gap.filter((k) => k === 'silence').length).toBeGreaterThan(80);
    const resumed = run.ticks.find((x) => x.frame.kind === 'frame' && x.frame.sequenceNumber === 100)!;
    expect(resumed.frame).toMatchObject({ marker: true, timestamp: 200 * FRAME_TS });
    // Arrived at 4030, due at 4030 + 20: played at the first pop after.
    expect(resumed.t).toBe(4067);
  });

  it('a short DTX gap with a timestamp jump waits with silence for the next spurt', () => {
    // 5 frames of silence: sequence numbers continuous, timestamps and times 100 ms ahead.
    const first = stream({ count: 50 });
    const second = stream({ count: 50, startSeq: 50, startTs: 55 * FRAME_TS, startMs: 1100 });
    const run = simulate([...first, ...second], 2400, { initialDelayMs: 40, minDelayMs: 40 });
    expect(run.stats.lost).toBe(0);
    expect(run.stats.played).toBe(100);
    const between = run.ticks.filter((x) => x.t > 1070 && x.t < 1170).map((x) => x.frame.kind);
    expect(between).toContain('silence');
  });

  it('a timestamp discontinuity restarts the buffer instead of waiting for hours', () => {
    const first = stream({ count: 100 });
    // The sender reset its timestamp base: sequence numbers go on, timestamps jump by ~6 hours.
    const second = stream({ count: 100, startSeq: 100, startTs: 0x40000000, startMs: 2000 });
    const run = simulate([...first, ...second], 4300, { initialDelayMs: 20 });
    expect(run.pushes.find((p) => p.arrival.seq === 100)!.result).toBe('reset');
    expect(run.stats.resets).toBe(1);
    // Whatever of the old timeline was still buffered is dropped; the new one plays in full.
    expect(run.stats.dropped).toBeLessThanOrEqual(2);
    expect(run.stats.played + run.stats.dropped).toBe(200);
    const seqs = played(run);
    expect(seqs.slice(seqs.indexOf(100))).toEqual(Array.from({ length: 100 }, (_, i) => 100 + i));
  });

  it('reset() forgets the stream and keeps the counters', () => {
    const jb = new JitterBuffer({ clockRate: CLOCK });
    jb.push({ sequenceNumber: 1, timestamp: 960, payload: Buffer.from('a') }, 0);
    jb.push({ sequenceNumber: 1, timestamp: 960, payload: Buffer.from('a') }, 1);
    jb.reset();
    expect(jb.stats).toMatchObject({ received: 2, duplicates: 1, bufferedPackets: 0, targetDelayMs: 40 });
    expect(jb.pop(100)).toEqual({ kind: 'silence' });
    expect(jb.push({ sequenceNumber: 1, timestamp: 960, payload: Buffer.from('a') }, 200)).toBe('queued');
  });
});

describe('jitter buffer: options', () => {
  it.each<[string, Partial<JitterBufferOptions>]>([
    ['clock rate 0', { clockRate: 0 }],
    ['fractional clock rate', { clockRate: 44100.5 }],
    ['a frame that is not whole timestamp units', { clockRate: 8000, frameMs: 0.1 }],
    ['max below min', { minDelayMs: 100, maxDelayMs: 50 }],
    ['percentile 0.3', { percentile: 0.3 }],
    ['history of 0', { historySize: 0 }],
    ['negative shrink rate', { shrinkMsPerSecond: -1 }],
  ])('%s → ERR_MEDIA_OPTIONS', (_what, options) => {
    let code: string | undefined;
    try {
      new JitterBuffer({ clockRate: CLOCK, ...options });
    } catch (err) {
      if (err instanceof MediaError) code = err.code;
      else throw err;
    }
    expect(code).toBe('ERR_MEDIA_OPTIONS');
  });

  it('the initial delay is kept within the bounds', () => {
    expect(new JitterBuffer({ clockRate: CLOCK, initialDelayMs: 1000 }).stats.targetDelayMs).toBe(200);
    expect(new JitterBuffer({ clockRate: CLOCK, initialDelayMs: 0 }).stats.targetDelayMs).toBe(20);
  });
});
