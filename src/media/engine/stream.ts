/**
 * One call leg's media: what the core does for a stream on each 20 ms tick
 * and for each packet that arrives. Pure-ish: the time is passed in, packets
 * leave through `send`, events through callbacks.
 *
 * Sending, per tick: a DTMF event packet when a digit is being sent (the
 * audio pauses), otherwise the frame encoded with Opus — silence when held —
 * in an RTP packet (timestamp +960 per frame, 48 kHz clock, RFC 7587),
 * protected with SRTP. Under DTX, frames Opus marks as not worth sending
 * (1–2 bytes) are skipped except while held, and the next packet sent
 * carries the marker (a new talkspurt).
 *
 * Receiving: SRTCP or SRTP is checked first — a packet that fails
 * authentication or is replayed is counted in `srtpRejected` and goes no
 * further; then the RTP or RTCP is decoded (malformed: counted, dropped).
 * Opus packets go to the jitter buffer, telephone events to the DTMF
 * receiver; both count in the RFC 3550 statistics, since they share the
 * SSRC's sequence numbers. A new SSRC from the peer restarts the receiving
 * side. Nothing here throws on what the network sends. (The jitter buffer
 * sees the frames a peer's DTMF tone replaced as lost: it conceals a few
 * frames, then plays silence until the audio resumes; they count in the
 * MOS window's loss.)
 *
 * RTCP: a compound SR + SDES(CNAME) about every second (0.5–1.5 s, the
 * first 100–200 ms after the stream starts), with a report block once the
 * peer's stream is valid. Report blocks about our SSRC give the RTT
 * (LSR/DLSR) and the loss the peer sees, which drives in-band FEC.
 */
import { resample } from '../../../hal/audio/resample.js';
import { DtmfReceiver, DtmfSender } from '../dtmf.js';
import { JitterBuffer } from '../jitter-buffer.js';
import { OPUS_DTX_PACKET_MAX_BYTES, OpusDecoder, OpusEncoder } from '../opus.js';
import { estimateQuality, LossPattern, mouthToEarDelayMs } from '../quality.js';
import { decodeRtcpCompound, encodeRtcpCompound, ntpFromUnixMs, ntpShort, SdesItemType } from '../rtcp.js';
import type { ReportBlock, RtcpPacket } from '../rtcp.js';
import { roundTripTimeMs, RtpReceiverStats, RtpSenderStats } from '../rtp-stats.js';
import { decodeRtpPacket, encodeRtpPacket, isRtcpPacket, isRtpPacket } from '../rtp.js';
import { SrtpContext } from '../srtp.js';
import { SrtpError } from '../errors.js';
import { FRAME_TICKS, OPUS_RTP_CLOCK } from './types.js';
import type { MediaStreamStats, ResolvedStreamParams, TraceRecord } from './types.js';

/** Reports without loss before FEC goes off again (about 10 s). */
const FEC_OFF_AFTER_REPORTS = 10;
/** Loss above which FEC goes on, percent. */
const FEC_ON_LOSS_PCT = 1;
/** Frames of outcomes one MOS window covers (5 s). */
const MOS_WINDOW_FRAMES = 250;

export interface MediaStreamContext {
  id: string;
  /** The device's rate: frames in and out of the stream are at this rate. */
  deviceRate: 16000 | 48000;
  /** ms added to tick times to make wall-clock (epoch) ms. */
  wallOffsetMs: number;
  /** A CNAME for SDES, one per engine. */
  cname: string;
  random: () => number;
  send(packet: Buffer): void;
  onDtmf(digit: string): void;
  onTrace?: (record: TraceRecord) => void;
}

export class MediaStream {
  readonly id: string;
  readonly params: ResolvedStreamParams;
  readonly #ctx: MediaStreamContext;
  readonly #encoder: OpusEncoder;
  readonly #decoder: OpusDecoder;
  readonly #sendSrtp: SrtpContext;
  readonly #recvSrtp: SrtpContext;
  readonly #senderStats = new RtpSenderStats({ clockRate: OPUS_RTP_CLOCK });
  readonly #dtmfSender = new DtmfSender({ frameTicks: FRAME_TICKS });
  readonly #dtmfReceiver = new DtmfReceiver();
  #jitter = new JitterBuffer({ clockRate: OPUS_RTP_CLOCK });
  #receiver: RtpReceiverStats | undefined;
  #held = false;
  #seq: number;
  #timestamp: number;
  #talkspurt = true;
  #nextRtcpAt: number | undefined;
  #fecZeroReports = 0;
  #rttMs: number | null = null;
  #lossPct = 0;
  #window = new LossPattern();
  /** The jitter buffer's played/lost counts already in the MOS window. */
  #counted = { played: 0, lost: 0 };
  #lastWindow: LossPattern | undefined;
  #c = { packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0, datagramsSent: 0, datagramsReceived: 0, srtpRejected: 0, malformed: 0, dtmfSent: 0, dtmfReceived: 0 };
  #lastPacketAt: number | null = null;
  #rate = { atMs: undefined as number | undefined, bytes: 0, bps: 0 };

  constructor(id: string, params: ResolvedStreamParams, ctx: MediaStreamContext) {
    this.id = id;
    this.params = params;
    this.#ctx = ctx;
    const { codec, srtp } = params;
    this.#encoder = new OpusEncoder({ sampleRate: codec.sampleRate, bitrate: codec.bitrate, dtx: codec.dtx });
    // Any Opus stream decodes at any rate: decode straight to the device's.
    this.#decoder = new OpusDecoder({ sampleRate: ctx.deviceRate });
    this.#sendSrtp = new SrtpContext({ profile: srtp.profile, masterKey: srtp.send.key, masterSalt: srtp.send.salt });
    this.#recvSrtp = new SrtpContext({ profile: srtp.profile, masterKey: srtp.receive.key, masterSalt: srtp.receive.salt });
    this.#seq = Math.floor(ctx.random() * 0x10000);
    this.#timestamp = Math.floor(ctx.random() * 0x100000000);
  }

  get held(): boolean {
    return this.#held;
  }

  setHold(held: boolean): void {
    this.#held = held;
  }

  sendDtmf(digits: string): void {
    this.#dtmfSender.enqueue(digits);
  }

  // ------------------------------------------------------------ per tick

  /**
   * The decoded frame to play for this tick (device rate), or undefined for
   * silence. Call once per tick, before `sendFrame`.
   */
  playFrame(nowMs: number): Int16Array | undefined {
    const frame = this.#jitter.pop(nowMs);
    this.#countPlayout();
    let pcm: Buffer;
    switch (frame.kind) {
      case 'silence':
        return undefined;
      case 'frame':
        try {
          pcm = this.#decoder.decode(frame.payload);
        } catch {
          // Authenticated but undecodable: the peer's encoder is broken. Conceal.
          this.#c.malformed++;
          pcm = this.#decoder.decodeLost();
        }
        if (this.#ctx.onTrace && this.#receiver) {
          this.#ctx.onTrace({ kind: 'playout', streamId: this.id, ssrc: this.#receiver.ssrc, sequenceNumber: frame.sequenceNumber, timestamp: frame.timestamp, atMs: this.#ctx.wallOffsetMs + nowMs });
        }
        break;
      case 'lost':
        pcm = frame.fec ? this.#decodeFec(frame.fec) : this.#decoder.decodeLost();
        break;
      case 'stretch':
        pcm = this.#decoder.decodeLost();
        break;
    }
    return toSamples(pcm);
  }

  #decodeFec(next: Buffer): Buffer {
    try {
      return this.#decoder.decodeFec(next);
    } catch {
      return this.#decoder.decodeLost();
    }
  }

  /**
   * Feed the MOS window from the jitter buffer's own accounting by sequence
   * number: frames played, and sequence numbers never played (lost in the
   * network or late). Concealment while the buffer is merely empty (between
   * DTX packets, or before the next packet arrives) is not loss.
   */
  #countPlayout(): void {
    const { played, lost } = this.#jitter.stats;
    for (; this.#counted.played < played; this.#counted.played++) this.#record(false);
    for (; this.#counted.lost < lost; this.#counted.lost++) this.#record(true);
  }

  #record(lost: boolean): void {
    this.#window.record(lost);
    if (this.#window.packets >= MOS_WINDOW_FRAMES) {
      this.#lastWindow = this.#window;
      this.#window = new LossPattern();
    }
  }

  /** Send this tick's frame (device rate; silence when held), and RTCP when due. */
  sendFrame(pcm: Int16Array, captureTimeMs: number): void {
    const timestamp = this.#timestamp;
    this.#timestamp = (this.#timestamp + FRAME_TICKS) >>> 0;
    const step = this.#dtmfSender.step(timestamp);
    if (step.kind === 'event') {
      this.#sendRtp(this.params.codec.dtmfPayloadType, step.marker, step.timestamp, step.payload, captureTimeMs);
      if (step.marker) this.#c.dtmfSent++;
      this.#talkspurt = true;
    } else {
      const input = this.#held ? new Int16Array(pcm.length) : pcm;
      const payload = this.#encoder.encode(this.#toCodecRate(input));
      if (this.params.codec.dtx && !this.#held && payload.length <= OPUS_DTX_PACKET_MAX_BYTES) {
        this.#talkspurt = true;
      } else {
        const seq = this.#sendRtp(this.params.codec.payloadType, this.#talkspurt, timestamp, payload, captureTimeMs);
        this.#talkspurt = false;
        this.#ctx.onTrace?.({ kind: 'capture', streamId: this.id, ssrc: this.params.ssrc, sequenceNumber: seq, timestamp, atMs: this.#ctx.wallOffsetMs + captureTimeMs });
      }
    }
    this.#maybeSendRtcp(captureTimeMs);
  }

  #toCodecRate(pcm: Int16Array): Buffer {
    const samples = this.params.codec.sampleRate === this.#ctx.deviceRate ? pcm : resample(pcm, this.#ctx.deviceRate, this.params.codec.sampleRate);
    return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  }

  #sendRtp(payloadType: number, marker: boolean, timestamp: number, payload: Buffer, nowMs: number): number {
    const sequenceNumber = this.#seq;
    this.#seq = (this.#seq + 1) & 0xffff;
    const rtp = encodeRtpPacket({ payloadType, marker, sequenceNumber, timestamp, ssrc: this.params.ssrc, csrcs: [], payload, padding: 0 });
    const packet = this.#sendSrtp.protectRtp(rtp);
    this.#senderStats.onSent(payload.length, timestamp, nowMs);
    this.#c.packetsSent++;
    this.#out(packet);
    return sequenceNumber;
  }

  #out(packet: Buffer): void {
    this.#c.bytesSent += packet.length;
    this.#c.datagramsSent++;
    this.#rate.bytes += packet.length;
    this.#ctx.send(packet);
  }

  // ------------------------------------------------------------ RTCP

  #maybeSendRtcp(nowMs: number): void {
    if (this.#nextRtcpAt === undefined) this.#nextRtcpAt = nowMs + 100 + 100 * this.#ctx.random();
    if (nowMs < this.#nextRtcpAt) return;
    this.#nextRtcpAt = nowMs + 1000 * (0.5 + this.#ctx.random());
    this.#sendRtcp(nowMs, false);
  }

  #sendRtcp(nowMs: number, bye: boolean): void {
    const reports: ReportBlock[] = [];
    if (this.#receiver?.valid) {
      const block = this.#receiver.reportBlock(nowMs);
      this.#lossPct = (100 * block.fractionLost) / 256;
      reports.push(block);
    }
    const ntp = ntpFromUnixMs(this.#ctx.wallOffsetMs + nowMs);
    const packets: RtcpPacket[] = [
      { kind: 'sr', ssrc: this.params.ssrc, sender: this.#senderStats.senderInfo(nowMs, ntp), reports },
      { kind: 'sdes', chunks: [{ ssrc: this.params.ssrc, items: [{ type: SdesItemType.CNAME, value: this.#ctx.cname }] }] },
    ];
    if (bye) packets.push({ kind: 'bye', ssrcs: [this.params.ssrc] });
    this.#out(this.#sendSrtp.protectRtcp(encodeRtcpCompound(packets)));
  }

  /** A last report with BYE, when the stream goes. */
  sendBye(nowMs: number): void {
    this.#sendRtcp(nowMs, true);
  }

  // ------------------------------------------------------------ receiving

  /** A packet from the network. Never throws: what is wrong is counted and dropped. */
  receive(packet: Buffer, arrivalMs: number): void {
    try {
      if (isRtcpPacket(packet)) this.#receiveRtcp(packet, arrivalMs);
      else if (isRtpPacket(packet)) this.#receiveRtp(packet, arrivalMs);
      else this.#c.malformed++;
    } catch (err) {
      if (err instanceof SrtpError) this.#c.srtpRejected++;
      else this.#c.malformed++;
    }
  }

  #accepted(packet: Buffer, arrivalMs: number): void {
    this.#c.bytesReceived += packet.length;
    this.#c.datagramsReceived++;
    this.#lastPacketAt = Math.round(this.#ctx.wallOffsetMs + arrivalMs);
  }

  #receiveRtp(packet: Buffer, arrivalMs: number): void {
    const rtp = decodeRtpPacket(this.#recvSrtp.unprotectRtp(packet));
    const { codec } = this.params;
    if (rtp.payloadType !== codec.payloadType && rtp.payloadType !== codec.dtmfPayloadType) {
      this.#c.malformed++;
      return;
    }
    if (this.#receiver?.ssrc !== rtp.ssrc) {
      // A new source (or the first): the receiving side starts over. Only an authenticated peer gets here.
      this.#receiver = new RtpReceiverStats(rtp.ssrc, { clockRate: OPUS_RTP_CLOCK, minSequential: 1 });
      this.#jitter = new JitterBuffer({ clockRate: OPUS_RTP_CLOCK });
      this.#counted = { played: 0, lost: 0 };
      this.#decoder.reset();
    }
    this.#accepted(packet, arrivalMs);
    this.#c.packetsReceived++;
    this.#receiver.onPacket(rtp.sequenceNumber, rtp.timestamp, arrivalMs);
    if (rtp.payloadType === codec.dtmfPayloadType) {
      const digit = this.#dtmfReceiver.onPacket(rtp.timestamp, rtp.payload);
      if (digit !== undefined) {
        this.#c.dtmfReceived++;
        this.#ctx.onDtmf(digit);
      }
      return;
    }
    if (rtp.payload.length === 0) {
      this.#c.malformed++;
      return;
    }
    this.#jitter.push({ sequenceNumber: rtp.sequenceNumber, timestamp: rtp.timestamp, payload: rtp.payload, marker: rtp.marker }, arrivalMs);
  }

  #receiveRtcp(packet: Buffer, arrivalMs: number): void {
    const compound = decodeRtcpCompound(this.#recvSrtp.unprotectRtcp(packet));
    this.#accepted(packet, arrivalMs);
    const arrivalNtp = ntpShort(ntpFromUnixMs(this.#ctx.wallOffsetMs + arrivalMs));
    for (const p of compound) {
      if (p.kind !== 'sr' && p.kind !== 'rr') continue;
      if (p.kind === 'sr' && this.#receiver?.ssrc === p.ssrc) this.#receiver.onSenderReport(p.sender.ntpTimestamp, arrivalMs);
      for (const block of p.reports) if (block.ssrc === this.params.ssrc) this.#onReportAboutUs(block, arrivalNtp);
    }
  }

  #onReportAboutUs(block: ReportBlock, arrivalNtp: number): void {
    const rtt = roundTripTimeMs(arrivalNtp, block.lastSenderReport, block.delaySinceLastSenderReport);
    if (rtt !== undefined) this.#rttMs = rtt;
    if (!this.params.codec.fec) return;
    const loss = (100 * block.fractionLost) / 256;
    if (loss > FEC_ON_LOSS_PCT) {
      this.#encoder.setFec(true, Math.min(50, Math.ceil(loss)));
      this.#fecZeroReports = 0;
    } else if (this.#encoder.fec && loss === 0 && ++this.#fecZeroReports >= FEC_OFF_AFTER_REPORTS) {
      this.#encoder.setFec(false, 0);
      this.#fecZeroReports = 0;
    }
  }

  // ------------------------------------------------------------ stats

  stats(nowMs: number): MediaStreamStats {
    if (this.#rate.atMs === undefined) {
      this.#rate.atMs = nowMs;
    } else if (nowMs - this.#rate.atMs >= 900) {
      this.#rate.bps = Math.round((this.#rate.bytes * 8 * 1000) / (nowMs - this.#rate.atMs));
      this.#rate.atMs = nowMs;
      this.#rate.bytes = 0;
    }
    const jb = this.#jitter.stats;
    let mos: number | null = null;
    const window = this.#window.packets >= 50 ? this.#window : this.#lastWindow;
    if (this.#rttMs !== null && window) {
      const oneWayDelayMs = mouthToEarDelayMs({ rttMs: this.#rttMs, jitterBufferMs: jb.targetDelayMs });
      mos = Math.round(100 * estimateQuality({ oneWayDelayMs, lossPercent: window.lossPercent, burstRatio: Math.max(1, window.burstRatio) }).mos) / 100;
    }
    return {
      packetsSent: this.#c.packetsSent,
      packetsReceived: this.#c.packetsReceived,
      packetsLost: Math.max(0, this.#receiver?.cumulativeLost ?? 0),
      jitterMs: Math.round(100 * (this.#receiver?.jitterMs ?? 0)) / 100,
      rttMs: this.#rttMs === null ? null : Math.round(10 * this.#rttMs) / 10,
      mos,
      lossPct: Math.round(10 * this.#lossPct) / 10,
      bytesSent: this.#c.bytesSent,
      bytesReceived: this.#c.bytesReceived,
      datagramsSent: this.#c.datagramsSent,
      datagramsReceived: this.#c.datagramsReceived,
      jitterBufferMs: jb.targetDelayMs,
      fec: this.#encoder.fec,
      bitrate: this.#encoder.bitrate,
      sendBitrate: this.#rate.bps,
      lastPacketAt: this.#lastPacketAt,
      srtpRejected: this.#c.srtpRejected,
      malformed: this.#c.malformed,
      dtmfSent: this.#c.dtmfSent,
      dtmfReceived: this.#c.dtmfReceived,
      held: this.#held,
    };
  }
}

/** S16LE bytes to samples (copied when unaligned). */
export function toSamples(pcm: Buffer): Int16Array {
  if (pcm.byteOffset % 2 === 0) return new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
  const copy = Buffer.from(pcm);
  return new Int16Array(copy.buffer, copy.byteOffset, copy.length / 2);
}
