/**
 * An adaptive jitter buffer for audio sent as one 20 ms frame per RTP
 * packet. Pure state machine: `push(packet, arrivalMs)` when a packet
 * arrives, `pop(nowMs)` once per frame period from the playout clock; both
 * take the time, nothing reads a clock.
 *
 * Delay model. Each packet's relative delay is D = arrival − timestamp (in
 * ms). Over the last `historySize` packets, the fastest D is the baseline
 * and the `percentile` of (D − baseline) is how long the buffer must hold a
 * frame for that share of packets to be in time. The target delay follows
 * it up at once and comes down at `shrinkMsPerSecond`, within
 * [`minDelayMs`, `maxDelayMs`]. A frame with timestamp T is due at
 * T + baseline + target.
 *
 * Playout. While audio flows, each pop plays the next frame; when the
 * current delay falls short of the target it inserts a concealment frame
 * (`stretch`), when it exceeds the target by a frame it skips one (at most
 * one per pop). At a talkspurt boundary — consecutive sequence numbers with
 * a timestamp gap, as with DTX — it plays silence and starts the next spurt
 * exactly when it is due, so the new target applies without concealment.
 * A missing packet gives `lost` (with the next packet's payload when it is
 * already here, for the decoder's in-band FEC); a packet that comes after its
 * frame was played is `late` and dropped. After `maxConcealMs` with nothing
 * to play the stream counts as paused, and the next packet re-anchors it.
 * Sequence numbers and timestamps are unwrapped, so both may wrap; a jump in
 * relative delay beyond `discontinuityMs`, or of more than 3000 sequence
 * numbers, restarts the buffer.
 */
import { MediaError } from './errors.js';
import { extendSequence, extendTimestamp } from './rtp.js';

export interface JitterBufferOptions {
  /** RTP clock rate in Hz (48000 for Opus whatever the audio bandwidth, RFC 7587 §4.1). */
  clockRate: number;
  /** Frame duration in ms (default 20). */
  frameMs?: number;
  /** Lower bound of the target delay (default 20 ms). */
  minDelayMs?: number;
  /** Upper bound of the target delay (default 200 ms). */
  maxDelayMs?: number;
  /** Target before any delay has been measured (default 40 ms). */
  initialDelayMs?: number;
  /** Share of packets the target should get in time, 0.5–1 (default 0.95). */
  percentile?: number;
  /** Packets whose delay the estimate remembers (default 250, 5 s of 20 ms frames). */
  historySize?: number;
  /** How fast the target may come down (default 10 ms per second). */
  shrinkMsPerSecond?: number;
  /** Concealment before an empty buffer counts as a pause in the stream (default 100 ms). */
  maxConcealMs?: number;
  /** A change in relative delay that means the timeline was reset (default 2000 ms). */
  discontinuityMs?: number;
  /** Packets held at most; the oldest go first (default 2 × maxDelay / frame + 16). */
  capacity?: number;
}

export interface JitterPacket {
  sequenceNumber: number;
  timestamp: number;
  payload: Buffer;
  /** RTP marker: first packet of a talkspurt. */
  marker?: boolean;
}

/** What `push` did with a packet. `reset`: it broke the timeline, the buffer restarted with it. */
export type PushResult = 'queued' | 'duplicate' | 'late' | 'reset';

/** What to play for one frame period. */
export type JitterFrame =
  | { kind: 'frame'; sequenceNumber: number; timestamp: number; payload: Buffer; marker: boolean }
  /** The packet for this frame is missing: conceal, or decode `fec` (the next packet, whose in-band FEC carries this frame). */
  | { kind: 'lost'; sequenceNumber: number; timestamp: number; fec?: Buffer }
  /** The delay is growing: conceal one frame without consuming one. */
  | { kind: 'stretch' }
  /** Nothing to play: buffering, between talkspurts, or the stream paused. */
  | { kind: 'silence' };

export interface JitterBufferStats {
  /** Packets pushed. */
  received: number;
  /** Frames played from packets. */
  played: number;
  /** Sequence numbers whose frame was not played: lost in the network or late. */
  lost: number;
  /** Packets that came after their frame was played, and were dropped. */
  late: number;
  duplicates: number;
  /** Frames made up by the decoder: `lost` and `stretch`. */
  concealed: number;
  /** `stretch` frames (and silence frames inserted for the same reason). */
  stretched: number;
  /** Packets discarded to bring the delay down, for lack of room, or by a restart. */
  dropped: number;
  /** Times the buffer restarted on a broken timeline. */
  resets: number;
  /** Target delay now. */
  targetDelayMs: number;
  /** Delay of the frame played at the last pop, over the fastest packet's (0 when not playing). */
  currentDelayMs: number;
  /** The measured delay percentile, before the bounds. */
  delayVariationMs: number;
  bufferedPackets: number;
}

interface Entry {
  seq: number;
  ts: number;
  payload: Buffer;
  marker: boolean;
}

const MAX_SEQUENCE_JUMP = 3000;
const RECENT = 512;

function positive(name: string, value: number, integer = false): number {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new MediaError('ERR_MEDIA_OPTIONS', `jitter buffer ${name}: ${value}, expected a positive ${integer ? 'integer' : 'number'}`);
  }
  return value;
}

export class JitterBuffer {
  readonly #clockRate: number;
  readonly #frameMs: number;
  readonly #frameTs: number;
  readonly #minDelay: number;
  readonly #maxDelay: number;
  readonly #initialDelay: number;
  readonly #percentile: number;
  readonly #shrinkRate: number;
  readonly #maxConcealFrames: number;
  readonly #discontinuity: number;
  readonly #capacity: number;

  readonly #history: Float64Array;
  #historyCount = 0;
  #historyNext = 0;
  #variation = 0;
  #target: number;
  #lastPopMs: number | undefined;

  #buffer: Entry[] = [];
  /** `seq` of packets seen lately, by `seq % RECENT`: duplicates. */
  readonly #recent = new Float64Array(RECENT).fill(Number.NaN);
  #highestSeq: number | undefined;
  #highestTs: number | undefined;
  #lastD: number | undefined;

  #playing = false;
  /** Extended timestamp of the next frame to play; undefined until the first start after a reset. */
  #playTs: number | undefined;
  #lastPlayedSeq: number | undefined;
  #missing = 0;
  #lastKind: JitterFrame['kind'] = 'silence';
  #currentDelay = 0;

  readonly #stats = { received: 0, played: 0, lost: 0, late: 0, duplicates: 0, concealed: 0, stretched: 0, dropped: 0, resets: 0 };

  constructor(options: JitterBufferOptions) {
    this.#clockRate = positive('clockRate', options.clockRate, true);
    this.#frameMs = positive('frameMs', options.frameMs ?? 20);
    this.#frameTs = (this.#frameMs * this.#clockRate) / 1000;
    if (!Number.isInteger(this.#frameTs)) throw new MediaError('ERR_MEDIA_OPTIONS', `jitter buffer: ${this.#frameMs} ms at ${this.#clockRate} Hz is not a whole number of timestamp units`);
    this.#minDelay = positive('minDelayMs', options.minDelayMs ?? 20);
    this.#maxDelay = positive('maxDelayMs', options.maxDelayMs ?? 200);
    if (this.#maxDelay < this.#minDelay) throw new MediaError('ERR_MEDIA_OPTIONS', `jitter buffer: maxDelayMs ${this.#maxDelay} is below minDelayMs ${this.#minDelay}`);
    this.#initialDelay = Math.min(this.#maxDelay, Math.max(this.#minDelay, options.initialDelayMs ?? 40));
    this.#percentile = options.percentile ?? 0.95;
    if (!(this.#percentile >= 0.5 && this.#percentile <= 1)) throw new MediaError('ERR_MEDIA_OPTIONS', `jitter buffer percentile: ${this.#percentile}, expected 0.5..1`);
    this.#history = new Float64Array(positive('historySize', options.historySize ?? 250, true));
    this.#shrinkRate = positive('shrinkMsPerSecond', options.shrinkMsPerSecond ?? 10) / 1000;
    this.#maxConcealFrames = Math.max(1, Math.round(positive('maxConcealMs', options.maxConcealMs ?? 100) / this.#frameMs));
    this.#discontinuity = positive('discontinuityMs', options.discontinuityMs ?? 2000);
    this.#capacity = positive('capacity', options.capacity ?? Math.ceil((2 * this.#maxDelay) / this.#frameMs) + 16, true);
    this.#target = this.#initialDelay;
  }

  get stats(): JitterBufferStats {
    return {
      ...this.#stats,
      targetDelayMs: this.#target,
      currentDelayMs: this.#playing ? this.#currentDelay : 0,
      delayVariationMs: this.#variation,
      bufferedPackets: this.#buffer.length,
    };
  }

  /** Forget the stream (a new SSRC, a call on hold …); statistics are kept. */
  reset(): void {
    this.#buffer = [];
    this.#recent.fill(Number.NaN);
    this.#historyCount = 0;
    this.#historyNext = 0;
    this.#variation = 0;
    this.#target = this.#initialDelay;
    this.#highestSeq = undefined;
    this.#highestTs = undefined;
    this.#lastD = undefined;
    this.#playing = false;
    this.#playTs = undefined;
    this.#lastPlayedSeq = undefined;
    this.#missing = 0;
    this.#lastKind = 'silence';
  }

  #ms(ts: number): number {
    return (ts * 1000) / this.#clockRate;
  }

  #baseline(): number {
    let min = Infinity;
    for (let i = 0; i < this.#historyCount; i++) min = Math.min(min, this.#history[i]!);
    return min;
  }

  #due(ts: number): number {
    return this.#ms(ts) + this.#baseline() + this.#target;
  }

  /** Record a delay sample and let the target follow the percentile upwards at once. */
  #sample(d: number): void {
    this.#history[this.#historyNext] = d;
    this.#historyNext = (this.#historyNext + 1) % this.#history.length;
    this.#historyCount = Math.min(this.#historyCount + 1, this.#history.length);
    const sorted = Array.from(this.#history.subarray(0, this.#historyCount)).sort((a, b) => a - b);
    const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(this.#percentile * sorted.length) - 1));
    this.#variation = sorted[at]! - sorted[0]!;
    const wanted = this.#bounded(this.#variation);
    if (wanted > this.#target) this.#target = wanted;
  }

  #bounded(ms: number): number {
    return Math.min(this.#maxDelay, Math.max(this.#minDelay, ms));
  }

  /** Take in a packet that arrived at `arrivalMs`. */
  push(packet: JitterPacket, arrivalMs: number): PushResult {
    this.#stats.received++;
    const seq16 = packet.sequenceNumber & 0xffff;
    const ts32 = packet.timestamp >>> 0;
    let seq = this.#highestSeq === undefined ? seq16 : extendSequence(seq16, this.#highestSeq);
    let ts = this.#highestTs === undefined ? ts32 : extendTimestamp(ts32, this.#highestTs);
    let d = arrivalMs - this.#ms(ts);
    let result: PushResult = 'queued';
    if (this.#lastD !== undefined && (Math.abs(d - this.#lastD) > this.#discontinuity || Math.abs(seq - this.#highestSeq!) > MAX_SEQUENCE_JUMP)) {
      this.#stats.dropped += this.#buffer.length;
      this.reset();
      this.#stats.resets++;
      seq = seq16;
      ts = ts32;
      d = arrivalMs - this.#ms(ts);
      result = 'reset';
    }
    const slot = ((seq % RECENT) + RECENT) % RECENT;
    if (this.#recent[slot] === seq) {
      this.#stats.duplicates++;
      return 'duplicate';
    }
    this.#recent[slot] = seq;
    this.#highestSeq = Math.max(this.#highestSeq ?? seq, seq);
    this.#highestTs = Math.max(this.#highestTs ?? ts, ts);
    this.#lastD = d;
    // Late packets still count: their delay is what the target must grow to cover.
    this.#sample(d);
    if (this.#playTs !== undefined && ts < this.#playTs) {
      this.#stats.late++;
      return 'late';
    }
    const entry: Entry = { seq, ts, payload: packet.payload, marker: packet.marker ?? false };
    let at = this.#buffer.length;
    while (at > 0 && (this.#buffer[at - 1]!.ts > ts || (this.#buffer[at - 1]!.ts === ts && this.#buffer[at - 1]!.seq > seq))) at--;
    this.#buffer.splice(at, 0, entry);
    if (this.#buffer.length > this.#capacity) {
      this.#buffer.shift();
      this.#stats.dropped++;
    }
    return result;
  }

  /** The frame to play now; call once per frame period. */
  pop(nowMs: number): JitterFrame {
    this.#decay(nowMs);
    if (!this.#playing) {
      const head = this.#buffer[0];
      if (head === undefined || nowMs < this.#due(head.ts)) return this.#emit({ kind: 'silence' });
      this.#playing = true;
      this.#playTs = head.ts;
      this.#missing = 0;
      return this.#play(nowMs);
    }
    const playTs = this.#playTs!;
    this.#dropStale(playTs);
    const head = this.#buffer[0];
    // A timestamp gap with no sequence gap: between talkspurts. Start the next one when it is due.
    if (head !== undefined && head.ts > playTs && head.seq === (this.#lastPlayedSeq ?? head.seq - 1) + 1) {
      if (nowMs < this.#due(head.ts)) return this.#emit({ kind: 'silence' });
      this.#playTs = head.ts;
      return this.#play(nowMs);
    }
    this.#currentDelay = nowMs - this.#ms(playTs) - this.#baseline();
    if (this.#currentDelay < this.#target) {
      this.#stats.stretched++;
      if (this.#lastKind === 'silence' || head?.marker) return this.#emit({ kind: 'silence' });
      this.#stats.concealed++;
      return this.#emit({ kind: 'stretch' });
    }
    if (this.#currentDelay >= this.#target + this.#frameMs) {
      // One frame too many: skip the frame due now (it is not lost, it is dropped).
      if (head !== undefined && head.ts - playTs < this.#frameTs / 2) {
        this.#buffer.shift();
        this.#countLost(head.seq);
        this.#lastPlayedSeq = head.seq;
        this.#stats.dropped++;
      }
      this.#playTs = playTs + this.#frameTs;
      this.#dropStale(this.#playTs);
    }
    return this.#play(nowMs);
  }

  /** Bring the target down towards the measured need, slowly. */
  #decay(nowMs: number): void {
    if (this.#lastPopMs !== undefined && nowMs > this.#lastPopMs) {
      const wanted = this.#bounded(this.#variation);
      if (wanted < this.#target) this.#target = Math.max(wanted, this.#target - this.#shrinkRate * (nowMs - this.#lastPopMs));
    }
    this.#lastPopMs = nowMs;
  }

  #dropStale(playTs: number): void {
    while (this.#buffer.length > 0 && this.#buffer[0]!.ts < playTs) {
      this.#buffer.shift();
      this.#stats.dropped++;
    }
  }

  /** Play the frame at `#playTs`: the packet, or a lost frame, or nothing when the stream pauses. */
  #play(nowMs: number): JitterFrame {
    const playTs = this.#playTs!;
    this.#currentDelay = nowMs - this.#ms(playTs) - this.#baseline();
    const head = this.#buffer[0];
    if (head !== undefined && head.ts - playTs < this.#frameTs / 2) {
      this.#buffer.shift();
      this.#countLost(head.seq);
      this.#lastPlayedSeq = head.seq;
      this.#playTs = head.ts + this.#frameTs;
      this.#missing = 0;
      this.#stats.played++;
      return this.#emit({ kind: 'frame', sequenceNumber: head.seq & 0xffff, timestamp: head.ts % 0x100000000, payload: head.payload, marker: head.marker });
    }
    this.#playTs = playTs + this.#frameTs;
    if (head !== undefined) {
      // A hole before the next packet: this frame is lost (counted when the next packet plays).
      const framesAhead = Math.round((head.ts - playTs) / this.#frameTs);
      const lost: JitterFrame = { kind: 'lost', sequenceNumber: (head.seq - framesAhead) & 0xffff, timestamp: playTs % 0x100000000 };
      if (framesAhead === 1) lost.fec = head.payload;
      this.#stats.concealed++;
      return this.#emit(lost);
    }
    // Nothing buffered: conceal for a while, then call it a pause.
    this.#missing++;
    if (this.#missing > this.#maxConcealFrames) {
      this.#playing = false;
      return this.#emit({ kind: 'silence' });
    }
    this.#stats.concealed++;
    return this.#emit({ kind: 'lost', sequenceNumber: ((this.#lastPlayedSeq ?? -1) + this.#missing) & 0xffff, timestamp: playTs % 0x100000000 });
  }

  /** Sequence numbers skipped between the last frame played and `seq` were lost (or came late). */
  #countLost(seq: number): void {
    if (this.#lastPlayedSeq !== undefined && seq > this.#lastPlayedSeq + 1) this.#stats.lost += seq - this.#lastPlayedSeq - 1;
  }

  #emit(frame: JitterFrame): JitterFrame {
    this.#lastKind = frame.kind;
    return frame;
  }
}
