/**
 * Probe packets: what `ctl probe` sends over a media path to measure it.
 * Shaped like voice — 100 bytes every 20 ms — and, for the shared UDP
 * port's demultiplexing (RFC 7983), in RTP's first-byte range: an RTP
 * version-2 header with payload type 127, then
 *
 *     [2] kind: 1 ping, 2 pong   [3] 0
 *     [4..7] sequence number     [8..15] sender's clock (float64, ms)
 *     [16..23] the session's tag (from the sealed offer)   [24..99] zero
 *
 * The answerer turns each ping into a pong with the same sequence number
 * and clock, so the sender measures round trip and loss with its own clock.
 */

export const PROBE_PACKET_BYTES = 100;
export const PROBE_INTERVAL_MS = 20;
const PING = 1;
const PONG = 2;

export interface ProbePacket {
  kind: 'ping' | 'pong';
  seq: number;
  sentAt: number;
  tag: string;
}

export function encodeProbe(packet: ProbePacket): Buffer {
  const buf = Buffer.alloc(PROBE_PACKET_BYTES);
  buf[0] = 0x80;
  buf[1] = 0x7f;
  buf[2] = packet.kind === 'ping' ? PING : PONG;
  buf.writeUInt32BE(packet.seq >>> 0, 4);
  buf.writeDoubleBE(packet.sentAt, 8);
  Buffer.from(packet.tag, 'hex').copy(buf, 16, 0, 8);
  return buf;
}

/** The probe packet in `buf`, or undefined when it is not one. */
export function decodeProbe(buf: Buffer): ProbePacket | undefined {
  if (buf.length !== PROBE_PACKET_BYTES || buf[0] !== 0x80 || buf[1] !== 0x7f) return undefined;
  const kind = buf[2] === PING ? 'ping' : buf[2] === PONG ? 'pong' : undefined;
  if (!kind) return undefined;
  const sentAt = buf.readDoubleBE(8);
  if (!Number.isFinite(sentAt)) return undefined;
  return { kind, seq: buf.readUInt32BE(4), sentAt, tag: buf.subarray(16, 24).toString('hex') };
}

/** Turn a ping into its pong (same bytes, kind changed). */
export function pongFor(ping: Buffer): Buffer {
  const pong = Buffer.from(ping);
  pong[2] = PONG;
  return pong;
}

/** Round trips and losses of one probe run. */
export class ProbeStats {
  sent = 0;
  #answered = new Set<number>();
  #rtts: number[] = [];

  ping(): number {
    return this.sent++;
  }

  pong(seq: number, rttMs: number): void {
    if (seq >= this.sent || this.#answered.has(seq)) return;
    this.#answered.add(seq);
    this.#rtts.push(rttMs);
  }

  get received(): number {
    return this.#answered.size;
  }

  lossPct(): number {
    return this.sent === 0 ? 100 : Math.round((1 - this.#answered.size / this.sent) * 10_000) / 100;
  }

  /** Median round trip, ms (null without answers). */
  rttMs(): number | null {
    if (this.#rtts.length === 0) return null;
    const sorted = [...this.#rtts].sort((a, b) => a - b);
    return Math.round(sorted[Math.floor(sorted.length / 2)]! * 100) / 100;
  }
}
