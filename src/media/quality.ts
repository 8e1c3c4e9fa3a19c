/**
 * Estimated call quality with the ITU-T G.107 E-model, in the simplified
 * form VoIP monitoring uses (R. G. Cole and J. H. Rosenbluth, "Voice over
 * IP performance monitoring", ACM SIGCOMM Computer Communication Review
 * 31(2), 2001):
 *
 *     R = R0 − Id(d) − Ie,eff(Ppl, BurstR) + A
 *
 * - R0 = 93.2: G.107's default Ro − Is (every other parameter at its
 *   default), the value for a G.711 connection with no delay and no loss.
 * - Id(d) = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3), d the one-way
 *   mouth-to-ear delay in ms, H the step function — Cole & Rosenbluth's fit
 *   of G.107's delay impairment with echo well cancelled.
 * - Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl): G.107 (2005 and
 *   later) §7.5 eq. 7-29, Ppl the packet loss in percent (the jitter buffer's
 *   late packets included), BurstR 1 for random loss and above 1 for bursty
 *   loss (`burstRatio`).
 * - MOS from R: G.107 Annex B eq. B-4 — 1 for R ≤ 0, 4.5 for R ≥ 100,
 *   otherwise 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶ (held at 1 where
 *   that dips below it, R < 6.5).
 *
 * Codec constants (Ie, Bpl) are ITU-T G.113 Appendix I planning values.
 * G.113 gives none for Opus on this narrowband scale (wideband quality needs
 * G.107.1), so `CODEC_IMPAIRMENTS.opus` uses those of G.711 with packet-loss
 * concealment (Ie 0, Bpl 25.1) as a stated stand-in: Opus at wideband is not
 * worse than G.711 at zero loss, and its concealment is at least as good.
 * The result is an estimate to compare calls and show a trend, not a
 * listening test.
 */
import { MediaError } from './errors.js';

export interface CodecImpairment {
  name: string;
  /** Equipment impairment factor at zero loss. */
  ie: number;
  /** Packet-loss robustness factor. */
  bpl: number;
  /** Where the values come from. */
  source: string;
}

export const CODEC_IMPAIRMENTS = {
  g711Plc: { name: 'G.711 with PLC', ie: 0, bpl: 25.1, source: 'ITU-T G.113 Appendix I (G.711 with G.711 Appendix I PLC, random loss)' },
  g711: { name: 'G.711 without PLC', ie: 0, bpl: 4.3, source: 'ITU-T G.113 Appendix I' },
  g729a: { name: 'G.729A with VAD', ie: 11, bpl: 19, source: 'ITU-T G.113 Appendix I' },
  opus: { name: 'Opus', ie: 0, bpl: 25.1, source: 'stand-in: G.711 with PLC (G.113 Appendix I); G.113 has no narrowband Opus values' },
} as const satisfies Record<string, CodecImpairment>;

/** G.107 default Ro − Is. */
export const DEFAULT_R0 = 93.2;

/**
 * Algorithmic delay of Opus with 20 ms frames: the frame plus 6.5 ms
 * look-ahead (RFC 6716 §1 gives 5–66.5 ms over frame sizes 2.5–60 ms).
 */
export const OPUS_CODEC_DELAY_MS = 26.5;

function check(name: string, value: number, min: number, max = Infinity): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new MediaError('ERR_MEDIA_OPTIONS', `E-model ${name}: ${value}, expected ${min}..${max === Infinity ? '∞' : max}`);
  }
}

/** Delay impairment Id for a one-way mouth-to-ear delay in ms (Cole & Rosenbluth). */
export function delayImpairment(oneWayDelayMs: number): number {
  check('one-way delay', oneWayDelayMs, 0);
  const d = oneWayDelayMs;
  return 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
}

/** Ie,eff for a packet loss in percent, G.107 eq. 7-29. */
export function effectiveEquipmentImpairment(lossPercent: number, codec: CodecImpairment = CODEC_IMPAIRMENTS.opus, burstR = 1): number {
  check('packet loss', lossPercent, 0, 100);
  check('BurstR', burstR, 1);
  return codec.ie + ((95 - codec.ie) * lossPercent) / (lossPercent / burstR + codec.bpl);
}

/**
 * G.107's burst ratio: the mean length of observed loss bursts over the
 * mean length expected for random loss at the same rate (1 / (1 − p)).
 * 1 for random loss (never less).
 */
export function burstRatio(lossRatio: number, meanBurstLength: number): number {
  check('loss ratio', lossRatio, 0, 1);
  check('mean burst length', meanBurstLength, 0);
  if (lossRatio === 0 || meanBurstLength === 0) return 1;
  return Math.max(1, meanBurstLength * (1 - lossRatio));
}

/**
 * MOS (conversational quality, CQE) from R, G.107 Annex B. The polynomial
 * dips just under 1 for 0 < R < 6.5 (to 0.99 near R = 3); MOS has no value
 * under 1, so it is held there.
 */
export function mosFromR(r: number): number {
  if (Number.isNaN(r)) throw new MediaError('ERR_MEDIA_OPTIONS', 'E-model R: NaN');
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  return Math.max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6);
}

export interface QualityInput {
  /** Mouth-to-ear delay, ms (see `mouthToEarDelayMs`). */
  oneWayDelayMs: number;
  /** Packet loss including late packets, percent 0–100. */
  lossPercent: number;
  /** 1 (random loss, default) or more (bursty). */
  burstRatio?: number;
  codec?: CodecImpairment;
  /** Advantage factor A (default 0). */
  advantage?: number;
}

export interface QualityEstimate {
  r: number;
  mos: number;
  /** Delay impairment. */
  id: number;
  /** Effective equipment impairment. */
  ieEff: number;
}

/** R and MOS for a call. */
export function estimateQuality(input: QualityInput): QualityEstimate {
  const id = delayImpairment(input.oneWayDelayMs);
  const ieEff = effectiveEquipmentImpairment(input.lossPercent, input.codec ?? CODEC_IMPAIRMENTS.opus, input.burstRatio ?? 1);
  const advantage = input.advantage ?? 0;
  check('advantage factor', advantage, 0, 20);
  const r = DEFAULT_R0 - id - ieEff + advantage;
  return { r, mos: mosFromR(r), id, ieEff };
}

/**
 * One-way mouth-to-ear delay as the E-model wants it: half the network
 * round trip, the jitter buffer's delay, and the codec's own delay.
 */
export function mouthToEarDelayMs(parts: { rttMs: number; jitterBufferMs: number; codecDelayMs?: number }): number {
  check('RTT', parts.rttMs, 0);
  check('jitter buffer delay', parts.jitterBufferMs, 0);
  const codec = parts.codecDelayMs ?? OPUS_CODEC_DELAY_MS;
  check('codec delay', codec, 0);
  return parts.rttMs / 2 + parts.jitterBufferMs + codec;
}

/**
 * Loss and burstiness from a stream of per-packet outcomes (received or
 * lost, in sequence order), for `burstRatio`.
 */
export class LossPattern {
  #packets = 0;
  #lost = 0;
  #bursts = 0;
  #inBurst = false;

  record(lost: boolean): void {
    this.#packets++;
    if (lost) {
      this.#lost++;
      if (!this.#inBurst) this.#bursts++;
    }
    this.#inBurst = lost;
  }

  get packets(): number {
    return this.#packets;
  }

  get lossPercent(): number {
    return this.#packets === 0 ? 0 : (100 * this.#lost) / this.#packets;
  }

  get meanBurstLength(): number {
    return this.#bursts === 0 ? 0 : this.#lost / this.#bursts;
  }

  get burstRatio(): number {
    return burstRatio(this.#packets === 0 ? 0 : this.#lost / this.#packets, this.meanBurstLength);
  }
}
