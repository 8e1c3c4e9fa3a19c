import { describe, expect, it } from 'vitest';
import { MediaError } from '../../src/media/errors.js';
import {
  CODEC_IMPAIRMENTS,
  DEFAULT_R0,
  LossPattern,
  burstRatio,
  delayImpairment,
  effectiveEquipmentImpairment,
  estimateQuality,
  mosFromR,
  mouthToEarDelayMs,
} from '../../src/media/quality.js';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    if (err instanceof MediaError) return err.code;
    throw err;
  }
  return undefined;
}

describe('E-model: R to MOS (G.107 Annex B)', () => {
  it('R = 93.2, the default connection, is MOS 4.41', () => {
    expect(DEFAULT_R0).toBe(93.2);
    expect(mosFromR(93.2)).toBeCloseTo(4.41, 2);
    expect(estimateQuality({ oneWayDelayMs: 0, lossPercent: 0 })).toEqual({ r: 93.2, mos: mosFromR(93.2), id: 0, ieEff: 0 });
  });

  it.each([
    [90, 4.34],
    [70, 3.6],
    [60, 3.1],
    [50, 2.58],
  ])('R = %i is MOS %f (the G.109 category boundaries)', (r, mos) => {
    expect(mosFromR(r)).toBeCloseTo(mos, 2);
  });

  it('is 1 at and below R = 0, 4.5 at and above R = 100, and never falls in between', () => {
    expect(mosFromR(-20)).toBe(1);
    expect(mosFromR(0)).toBe(1);
    expect(mosFromR(100)).toBe(4.5);
    expect(mosFromR(120)).toBe(4.5);
    // The Annex B polynomial itself dips to 0.994 at R = 1 and 0.99 near R = 3: held at 1.
    expect(mosFromR(1)).toBe(1);
    expect(mosFromR(3)).toBe(1);
    for (let r = 0.5; r <= 100; r += 0.5) expect(mosFromR(r)).toBeGreaterThanOrEqual(mosFromR(r - 0.5));
    for (let r = 7; r <= 100; r++) expect(mosFromR(r)).toBeGreaterThan(mosFromR(r - 1));
  });
});

describe('E-model: delay impairment (Cole & Rosenbluth)', () => {
  it.each([
    [0, 0],
    [100, 2.4],
    [150, 3.6],
    [177.3, 0.024 * 177.3],
    [300, 0.024 * 300 + 0.11 * (300 - 177.3)],
  ])('Id(%f ms) = %f', (d, id) => {
    expect(delayImpairment(d)).toBeCloseTo(id, 9);
  });

  it('150 ms one way, no loss: R 89.6, MOS ≈ 4.33 — still "very satisfied"', () => {
    const q = estimateQuality({ oneWayDelayMs: 150, lossPercent: 0 });
    expect(q.r).toBeCloseTo(89.6, 9);
    expect(q.mos).toBeCloseTo(4.33, 2);
  });

  it('the slope steepens past the 177.3 ms knee', () => {
    const before = delayImpairment(170) - delayImpairment(160);
    const after = delayImpairment(200) - delayImpairment(190);
    expect(after / before).toBeCloseTo((0.024 + 0.11) / 0.024, 6);
  });
});

describe('E-model: loss impairment (G.107 eq. 7-29, G.113 Appendix I codecs)', () => {
  it('5% random loss with PLC (Bpl 25.1): Ie,eff ≈ 15.8, R ≈ 77.4, MOS ≈ 3.92', () => {
    const q = estimateQuality({ oneWayDelayMs: 0, lossPercent: 5 });
    expect(q.ieEff).toBeCloseTo((95 * 5) / (5 + 25.1), 9);
    expect(q.ieEff).toBeCloseTo(15.78, 2);
    expect(q.r).toBeCloseTo(77.42, 2);
    expect(q.mos).toBeCloseTo(3.92, 2);
  });

  it('without PLC (Bpl 4.3) the same loss hurts far more', () => {
    const plc = effectiveEquipmentImpairment(5, CODEC_IMPAIRMENTS.g711Plc);
    const raw = effectiveEquipmentImpairment(5, CODEC_IMPAIRMENTS.g711);
    expect(raw).toBeCloseTo((95 * 5) / (5 + 4.3), 9);
    expect(raw).toBeGreaterThan(2.5 * plc);
  });

  it('a codec’s own impairment is the floor: G.729A (Ie 11) at 0% and at 100% loss', () => {
    expect(effectiveEquipmentImpairment(0, CODEC_IMPAIRMENTS.g729a)).toBe(11);
    expect(effectiveEquipmentImpairment(100, CODEC_IMPAIRMENTS.g729a)).toBeCloseTo(11 + (84 * 100) / (100 + 19), 9);
  });

  it('bursty loss (BurstR > 1) costs more than the same random loss', () => {
    expect(effectiveEquipmentImpairment(5, CODEC_IMPAIRMENTS.opus, 2)).toBeCloseTo((95 * 5) / (2.5 + 25.1), 9);
    expect(estimateQuality({ oneWayDelayMs: 0, lossPercent: 5, burstRatio: 2 }).mos).toBeLessThan(estimateQuality({ oneWayDelayMs: 0, lossPercent: 5 }).mos);
  });

  it('the Opus row says it is a stand-in and where its numbers come from', () => {
    expect(CODEC_IMPAIRMENTS.opus).toMatchObject({ ie: 0, bpl: 25.1 });
    expect(CODEC_IMPAIRMENTS.opus.source).toMatch(/stand-in/);
  });

  it('a bad call: 300 ms and 10% loss is below MOS 3', () => {
    expect(estimateQuality({ oneWayDelayMs: 300, lossPercent: 10 }).mos).toBeLessThan(3);
  });
});

describe('burst ratio and loss patterns', () => {
  it('isolated losses are random: BurstR 1', () => {
    const p = new LossPattern();
    for (let i = 0; i < 1000; i++) p.record(i % 20 === 7);
    expect(p.lossPercent).toBe(5);
    expect(p.meanBurstLength).toBe(1);
    expect(p.burstRatio).toBe(1);
  });

  it('losses in runs of 4 at 5%: BurstR = 4 × 0.95 = 3.8', () => {
    const p = new LossPattern();
    for (let i = 0; i < 960; i++) p.record(i % 80 < 4);
    expect(p.lossPercent).toBe(5);
    expect(p.meanBurstLength).toBe(4);
    expect(p.burstRatio).toBeCloseTo(3.8, 9);
    expect(burstRatio(0.05, 4)).toBeCloseTo(3.8, 9);
  });

  it('no packets or no loss: BurstR 1, loss 0', () => {
    const p = new LossPattern();
    expect(p.burstRatio).toBe(1);
    expect(p.lossPercent).toBe(0);
    p.record(false);
    expect(p.burstRatio).toBe(1);
  });
});

describe('mouth-to-ear delay', () => {
  it('half the RTT, the jitter buffer, and Opus’s 26.5 ms', () => {
    expect(mouthToEarDelayMs({ rttMs: 100, jitterBufferMs: 40 })).toBe(50 + 40 + 26.5);
    expect(mouthToEarDelayMs({ rttMs: 0, jitterBufferMs: 20, codecDelayMs: 0 })).toBe(20);
  });
});

describe('bad input', () => {
  it.each<[string, () => unknown]>([
    ['negative delay', () => delayImpairment(-1)],
    ['loss above 100%', () => effectiveEquipmentImpairment(101)],
    ['BurstR below 1', () => effectiveEquipmentImpairment(5, CODEC_IMPAIRMENTS.opus, 0.5)],
    ['NaN loss', () => estimateQuality({ oneWayDelayMs: 0, lossPercent: Number.NaN })],
    ['NaN R', () => mosFromR(Number.NaN)],
    ['loss ratio 2', () => burstRatio(2, 1)],
    ['negative RTT', () => mouthToEarDelayMs({ rttMs: -5, jitterBufferMs: 0 })],
    ['advantage 50', () => estimateQuality({ oneWayDelayMs: 0, lossPercent: 0, advantage: 50 })],
  ])('%s → ERR_MEDIA_OPTIONS', (_what, run) => {
    expect(codeOf(run)).toBe('ERR_MEDIA_OPTIONS');
  });
});
