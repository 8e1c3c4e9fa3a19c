/**
 * RTP reception and sending statistics, the numbers RTCP reports carry
 * (RFC 3550 §6.4): per-source sequence validation with probation (Appendix
 * A.1), expected/lost counts and the fraction lost per interval (A.3),
 * interarrival jitter (A.8), LSR/DLSR for the report block, and the
 * round-trip time a sender works out from a block it gets back (§6.4.1).
 *
 * Pure state: arrival times are passed in (milliseconds on any monotonic
 * clock); nothing here reads a clock.
 */
import { MediaError } from './errors.js';
import type { ReportBlock, SenderInfo } from './rtcp.js';
import { ntpShort } from './rtcp.js';

const RTP_SEQ_MOD = 0x10000;

export interface RtpReceiverStatsOptions {
  /** RTP timestamp clock rate in Hz (48000 for Opus, RFC 7587 §4.1). */
  clockRate: number;
  /** Sequential packets needed before a source is valid (A.1 MIN_SEQUENTIAL, default 2; 1 accepts the first packet). */
  minSequential?: number;
  /** Largest forward jump still taken as in order (A.1 MAX_DROPOUT, default 3000). */
  maxDropout?: number;
  /** Largest backward jump taken as reordering rather than a restart (A.1 MAX_MISORDER, default 100). */
  maxMisorder?: number;
}

/** What A.1's `update_seq` made of a packet. Only `valid` packets are counted and feed the jitter estimate. */
export type SequenceVerdict = 'valid' | 'probation' | 'bad';

/**
 * Receiver statistics for one synchronisation source, as RFC 3550
 * Appendix A.1, A.3 and A.8 give them.
 */
export class RtpReceiverStats {
  readonly ssrc: number;
  readonly #clockRate: number;
  readonly #minSequential: number;
  readonly #maxDropout: number;
  readonly #maxMisorder: number;

  #maxSeq = 0;
  #cycles = 0;
  #baseSeq = 0;
  #badSeq = RTP_SEQ_MOD + 1;
  #probation: number;
  #received = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;
  #started = false;

  /** A.8: previous relative transit time, in timestamp units; undefined until the first valid packet. */
  #transit: number | undefined;
  #jitter = 0;

  #lastSr: { middle: number; arrivalMs: number } | undefined;

  constructor(ssrc: number, options: RtpReceiverStatsOptions) {
    if (!Number.isInteger(ssrc) || ssrc < 0 || ssrc > 0xffffffff) throw new MediaError('ERR_MEDIA_OPTIONS', `RTP statistics: SSRC ${ssrc}, expected 0..2^32-1`);
    if (!(options.clockRate > 0)) throw new MediaError('ERR_MEDIA_OPTIONS', `RTP statistics: clock rate ${options.clockRate}, expected > 0`);
    this.ssrc = ssrc;
    this.#clockRate = options.clockRate;
    this.#minSequential = options.minSequential ?? 2;
    this.#maxDropout = options.maxDropout ?? 3000;
    this.#maxMisorder = options.maxMisorder ?? 100;
    if (!Number.isInteger(this.#minSequential) || this.#minSequential < 1) {
      throw new MediaError('ERR_MEDIA_OPTIONS', `RTP statistics: minSequential ${this.#minSequential}, expected an integer >= 1`);
    }
    this.#probation = this.#minSequential;
  }

  /** A.1 `init_seq`. */
  #initSeq(seq: number): void {
    this.#baseSeq = seq;
    this.#maxSeq = seq;
    this.#badSeq = RTP_SEQ_MOD + 1;
    this.#cycles = 0;
    this.#received = 0;
    this.#receivedPrior = 0;
    this.#expectedPrior = 0;
    this.#transit = undefined;
  }

  /** A.1 `update_seq`, with the probation of a new source. */
  #updateSeq(seq: number): SequenceVerdict {
    if (!this.#started) {
      this.#started = true;
      this.#initSeq(seq);
      this.#maxSeq = (seq - 1) & 0xffff;
      this.#probation = this.#minSequential;
    }
    const udelta = (seq - this.#maxSeq) & 0xffff;
    if (this.#probation > 0) {
      if (seq === ((this.#maxSeq + 1) & 0xffff)) {
        this.#probation--;
        this.#maxSeq = seq;
        if (this.#probation === 0) {
          this.#initSeq(seq);
          this.#received++;
          return 'valid';
        }
      } else {
        this.#probation = this.#minSequential - 1;
        this.#maxSeq = seq;
      }
      return 'probation';
    }
    if (udelta < this.#maxDropout) {
      // In order, with a permissible gap.
      if (seq < this.#maxSeq) this.#cycles += RTP_SEQ_MOD;
      this.#maxSeq = seq;
    } else if (udelta <= RTP_SEQ_MOD - this.#maxMisorder) {
      // A very large jump: believe it only when the next packet follows it (the source restarted).
      if (seq === this.#badSeq) {
        this.#initSeq(seq);
      } else {
        this.#badSeq = (seq + 1) & (RTP_SEQ_MOD - 1);
        return 'bad';
      }
    }
    // Otherwise a duplicate or a reordered packet: counted, max unchanged.
    this.#received++;
    return 'valid';
  }

  /**
   * One RTP packet from this source arrived at `arrivalMs`. Returns the A.1
   * verdict; valid packets are counted and update the A.8 jitter estimate.
   */
  onPacket(sequenceNumber: number, rtpTimestamp: number, arrivalMs: number): SequenceVerdict {
    const verdict = this.#updateSeq(sequenceNumber & 0xffff);
    if (verdict !== 'valid') return verdict;
    // A.8: transit = arrival (in timestamp units) - RTP timestamp; only differences matter.
    const arrival = (arrivalMs * this.#clockRate) / 1000;
    const transit = arrival - rtpTimestamp;
    if (this.#transit !== undefined) {
      // Timestamps wrap at 2^32: take the transit difference modulo 2^32, signed.
      let d = transit - this.#transit;
      d = ((((d + 0x80000000) % 0x100000000) + 0x100000000) % 0x100000000) - 0x80000000;
      this.#jitter += (Math.abs(d) - this.#jitter) / 16;
    }
    this.#transit = transit;
    return verdict;
  }

  /** A sender report from this source arrived: remembered for LSR and DLSR. */
  onSenderReport(ntpTimestamp: bigint, arrivalMs: number): void {
    this.#lastSr = { middle: ntpShort(ntpTimestamp), arrivalMs };
  }

  /** True once the source has passed probation. */
  get valid(): boolean {
    return this.#started && this.#probation === 0;
  }

  /** Packets counted (A.1: valid packets, duplicates included). */
  get received(): number {
    return this.#received;
  }

  /** Extended highest sequence number received: cycles in the high 16 bits. */
  get extendedHighestSequence(): number {
    return this.#cycles + this.#maxSeq;
  }

  /** A.3: packets expected since the base sequence number. */
  get expected(): number {
    return this.valid ? this.extendedHighestSequence - this.#baseSeq + 1 : 0;
  }

  /** A.3: cumulative packets lost (expected - received), clamped to the signed 24-bit field. */
  get cumulativeLost(): number {
    return Math.max(-0x800000, Math.min(0x7fffff, this.expected - this.#received));
  }

  /** A.8 interarrival jitter in timestamp units. */
  get jitter(): number {
    return this.#jitter;
  }

  /** Interarrival jitter in milliseconds. */
  get jitterMs(): number {
    return (this.#jitter * 1000) / this.#clockRate;
  }

  /**
   * The reception report block for this source at `nowMs`. Computing it
   * closes the A.3 interval: the fraction lost is over the packets since
   * the previous call.
   */
  reportBlock(nowMs: number): ReportBlock {
    const expected = this.expected;
    const expectedInterval = expected - this.#expectedPrior;
    this.#expectedPrior = expected;
    const receivedInterval = this.#received - this.#receivedPrior;
    this.#receivedPrior = this.#received;
    const lostInterval = expectedInterval - receivedInterval;
    const fractionLost = expectedInterval === 0 || lostInterval <= 0 ? 0 : Math.floor((lostInterval * 256) / expectedInterval);
    let lsr = 0;
    let dlsr = 0;
    if (this.#lastSr) {
      lsr = this.#lastSr.middle;
      dlsr = Math.max(0, Math.min(0xffffffff, Math.round(((nowMs - this.#lastSr.arrivalMs) * 65536) / 1000)));
    }
    return {
      ssrc: this.ssrc,
      fractionLost: Math.min(255, fractionLost),
      cumulativeLost: this.cumulativeLost,
      highestSequence: this.extendedHighestSequence >>> 0,
      jitter: Math.min(0xffffffff, Math.floor(this.#jitter)),
      lastSenderReport: lsr,
      delaySinceLastSenderReport: dlsr,
    };
  }
}

/**
 * Round-trip time from a report block about our own stream (RFC 3550
 * §6.4.1): A − LSR − DLSR, where A is the middle 32 bits of the NTP time the
 * block arrived. All three are 16.16 fixed-point seconds, compared modulo
 * 2^32. Undefined when the peer has had no SR from us (LSR 0) or the result
 * is negative (clocks or a forged block).
 */
export function roundTripTimeMs(arrivalNtpShort: number, lastSenderReport: number, delaySinceLastSenderReport: number): number | undefined {
  if (lastSenderReport === 0) return undefined;
  const rtt = (arrivalNtpShort - lastSenderReport - delaySinceLastSenderReport) | 0;
  if (rtt < 0) return undefined;
  return (rtt * 1000) / 65536;
}

/** What a sender counts for its SR sender info (RFC 3550 §6.4.1). */
export class RtpSenderStats {
  readonly #clockRate: number;
  #packets = 0;
  #octets = 0;
  #last: { rtpTimestamp: number; atMs: number } | undefined;

  constructor(options: { clockRate: number }) {
    if (!(options.clockRate > 0)) throw new MediaError('ERR_MEDIA_OPTIONS', `RTP sender statistics: clock rate ${options.clockRate}, expected > 0`);
    this.#clockRate = options.clockRate;
  }

  /** A packet with `payloadOctets` of payload (no header, no padding) and RTP timestamp `rtpTimestamp` was sent at `nowMs`. */
  onSent(payloadOctets: number, rtpTimestamp: number, nowMs: number): void {
    this.#packets = (this.#packets + 1) % 0x100000000;
    this.#octets = (this.#octets + payloadOctets) % 0x100000000;
    this.#last = { rtpTimestamp, atMs: nowMs };
  }

  get packetCount(): number {
    return this.#packets;
  }

  get octetCount(): number {
    return this.#octets;
  }

  /**
   * Sender info for an SR at `nowMs` (`ntpTimestamp` being the same instant
   * on the wall clock): the RTP timestamp is extrapolated from the last
   * packet sent, as §6.4.1 asks, so it need not match any packet's.
   */
  senderInfo(nowMs: number, ntpTimestamp: bigint): SenderInfo {
    const rtpTimestamp = this.#last ? (this.#last.rtpTimestamp + Math.round(((nowMs - this.#last.atMs) * this.#clockRate) / 1000)) >>> 0 : 0;
    return { ntpTimestamp, rtpTimestamp, packetCount: this.#packets, octetCount: this.#octets };
  }
}
