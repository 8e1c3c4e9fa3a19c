/**
 * MediaCore end to end with real Opus, SRTP and jitter buffers: two cores
 * back to back on a fake clock (engine-harness.ts), each speaking one of the
 * espeak-ng fixtures into the sim driver, each writing what it heard to a
 * WAV. What B heard must correlate with what A said, and the other way
 * round; the chance baseline is what B heard against B's own sample (which
 * B never hears: B's output is only A).
 *
 * Thresholds (alignedCorrelation, test/helpers/audio.ts, 500 ms pieces):
 * - Opus alone at 24 kbit/s reaches 0.967–0.970 on these samples (encode →
 *   decode, best lag); through the engine with 30 ms of network delay we
 *   measured 0.949 (A→B) and 0.954 (B→A); threshold 0.85.
 * - 10 % random loss (seeded, each packet in each direction): 0.76–0.87 over
 *   the seeds tried — each lost 20 ms is concealment, which follows the
 *   pitch but not the waveform; threshold 0.6.
 * - Chance baseline: 0.06–0.09 aligned (0.03–0.04 with one lag); required
 *   below 0.2, so the thresholds sit far above it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { alignedCorrelation, readSamples } from '../helpers/audio.js';
import { rng } from '../helpers/fuzz.js';
import type { MediaStreamStats } from '../../src/media/engine/types.js';
import { SPEECH_A, SPEECH_B, Testbed } from './engine-harness.js';

const CLEAN = 0.85;
const LOSSY = 0.6;
const CHANCE = 0.2;
const opts = { maxLagMs: 500 };

let bed: Testbed | undefined;
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

interface Call {
  bed: Testbed;
  heardByB: Int16Array;
  heardByA: Int16Array;
  /** Each side's statistics at the end of the call. */
  statsA: MediaStreamStats;
  statsB: MediaStreamStats;
}

async function call(lossPct: number, seed = 42, sampleRate: 16000 | 48000 = 16000): Promise<Call> {
  bed = new Testbed();
  const random = rng(seed);
  bed.loss = () => random() < lossPct / 100;
  const a = bed.phone('a', { input: SPEECH_A, sampleRate });
  const b = bed.phone('b', { input: SPEECH_B, phaseMs: 7, sampleRate });
  bed.link(a, 'b', b, 'a');
  bed.run(6000);
  const statsA = a.core.stats('b')!;
  const statsB = b.core.stats('a')!;
  await bed.stop();
  return { bed, heardByB: readSamples(b.output, 16000), heardByA: readSamples(a.output, 16000), statsA, statsB };
}

describe('MediaCore: speech through two engines', () => {
  const speechA = readSamples(SPEECH_A);
  const speechB = readSamples(SPEECH_B);

  it('clean network: each side hears the other, far above chance; statistics add up', async () => {
    const { bed, heardByB, heardByA, statsA: s } = await call(0);
    const ab = alignedCorrelation(speechA, heardByB, opts);
    const ba = alignedCorrelation(speechB, heardByA, opts);
    const chanceB = alignedCorrelation(speechB, heardByB, opts);
    const chanceA = alignedCorrelation(speechA, heardByA, opts);
    console.log(`clean: A→B ${ab.corr.toFixed(3)} (one lag ${ab.global.corr.toFixed(3)}), B→A ${ba.corr.toFixed(3)} (one lag ${ba.global.corr.toFixed(3)}), chance ${chanceB.corr.toFixed(3)} / ${chanceA.corr.toFixed(3)}`);
    expect(ab.corr).toBeGreaterThan(CLEAN);
    expect(ba.corr).toBeGreaterThan(CLEAN);
    expect(chanceB.corr).toBeLessThan(CHANCE);
    expect(chanceA.corr).toBeLessThan(CHANCE);
    // Mouth to ear on the fake clock: 30 ms network + jitter buffer + codec, under 150 ms.
    expect(ab.lagMs).toBeGreaterThan(30);
    expect(ab.lagMs).toBeLessThan(150);

    const a = bed.phones.get('a')!;
    expect(s.packetsSent).toBeGreaterThanOrEqual(295); // 6 s at 50/s
    expect(s.packetsReceived).toBeGreaterThanOrEqual(290);
    expect(s.packetsLost).toBe(0);
    expect(s.srtpRejected).toBe(0);
    expect(s.malformed).toBe(0);
    expect(s.rttMs).toBeCloseTo(60, 0); // 30 ms each way
    expect(s.mos).toBeGreaterThan(4);
    expect(s.fec).toBe(false);
    expect(s.bitrate).toBe(24000);
    expect(a.errors).toEqual([]);
  });

  it('10 % random loss each way: still understood (lower threshold), loss reported, FEC switched on', async () => {
    const { heardByB, heardByA, statsA, statsB: s } = await call(10, 42);
    const ab = alignedCorrelation(speechA, heardByB, opts);
    const ba = alignedCorrelation(speechB, heardByA, opts);
    const chance = alignedCorrelation(speechB, heardByB, opts);
    console.log(`10 % loss: A→B ${ab.corr.toFixed(3)}, B→A ${ba.corr.toFixed(3)}, chance ${chance.corr.toFixed(3)}`);
    expect(ab.corr).toBeGreaterThan(LOSSY);
    expect(ba.corr).toBeGreaterThan(LOSSY);
    expect(chance.corr).toBeLessThan(CHANCE);
    expect(s.packetsLost / (s.packetsLost + s.packetsReceived)).toBeGreaterThan(0.05);
    expect(s.packetsLost / (s.packetsLost + s.packetsReceived)).toBeLessThan(0.15);
    expect(s.lossPct).toBeGreaterThan(1);
    // The peer's reports of ~10 % loss turned in-band FEC on at both senders.
    expect(s.fec).toBe(true);
    expect(statsA.fec).toBe(true);
    expect(s.mos).toBeLessThan(4);
  });

  it('a 48 kHz device with 16 kHz Opus: frames converted for the encoder, decoded straight to 48 kHz', async () => {
    const { heardByB, heardByA } = await call(0, 1, 48000);
    const ab = alignedCorrelation(speechA, heardByB, opts);
    const ba = alignedCorrelation(speechB, heardByA, opts);
    console.log(`48 kHz device: A→B ${ab.corr.toFixed(3)}, B→A ${ba.corr.toFixed(3)}`);
    expect(ab.corr).toBeGreaterThan(CLEAN);
    expect(ba.corr).toBeGreaterThan(CLEAN);
  });
});
