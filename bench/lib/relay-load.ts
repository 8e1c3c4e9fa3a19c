/**
 * The load generator of bench/relay.ts: relayed "calls", each two UDP
 * streams of 50 packets/s of 100-byte payloads, one each way — what a
 * voice call puts through a relay (20 ms frames; the seeds' Skype sent
 * ~5 KB/s per direction, these streams are 5 KB/s of payload each way).
 *
 * Every call has its own pair of connected UDP sockets (no per-packet
 * address lookup), side A and side B. The same generator drives every
 * relay; only the 4-byte ChannelData header differs: our relay gets
 * ChannelData on both sides, coturn on side A only (side B is a TURN peer
 * sending plain UDP to the relayed address), the direct baseline none.
 *
 * Payload: [0] phase (1 = counted), [1] step id, [2] direction,
 * [4..7] call index, [8..15] send time (performance.now(), ms). Sender and
 * receiver are this one process, so the one-way delay is read off one clock.
 * Delays go into a histogram of 10 µs buckets.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export const PACKETS_PER_SECOND = 50;
export const PAYLOAD_BYTES = 100;
const BUCKET_MS = 0.01;
const BUCKETS = 100_000; // up to 1 s; the last bucket takes everything longer

export interface CallSockets {
  a: Socket;
  b: Socket;
  /** ChannelData channel A sends on (null: plain payload). */
  aSendChannel: number | null;
  bSendChannel: number | null;
  /** Where the payload starts in what A / B receive (4 after a ChannelData header). */
  aReceiveOffset: number;
  bReceiveOffset: number;
}

export interface StepResult {
  calls: number;
  sent: number;
  received: number;
  lossPct: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Sent in the window / what the schedule asked for (below ~0.98 the generator could not keep up). */
  scheduleRatio: number;
  /** The generator's own event-loop delay, p99, ms. */
  loopP99Ms: number;
  /** The generator's CPU use in the window (100 = one core). */
  generatorCpuPct: number;
}

/** A UDP socket on 127.0.0.1 connected to `port`. */
export async function connectedSocket(port: number, onError: (err: Error) => void): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.on('error', onError);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', () => resolve()));
  return socket;
}

/** A bound, not yet connected UDP socket on 127.0.0.1. */
export async function boundSocket(onError: (err: Error) => void): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.on('error', onError);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return socket;
}

export function connect(socket: Socket, port: number): Promise<void> {
  return new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', () => resolve()));
}

export class RelayLoad {
  readonly calls: CallSockets[] = [];
  sendErrors = 0;
  #hist = new Uint32Array(BUCKETS);
  #received = 0;
  #step = 0;
  #measuring = false;

  readonly onSocketError = (): void => {
    this.sendErrors++;
  };

  /** Start listening on a call's sockets (once, when the call is added). */
  add(call: CallSockets): void {
    this.calls.push(call);
    call.a.on('message', (packet: Buffer) => this.#receive(packet, call.aReceiveOffset));
    call.b.on('message', (packet: Buffer) => this.#receive(packet, call.bReceiveOffset));
  }

  #receive(packet: Buffer, offset: number): void {
    if (packet.length < offset + PAYLOAD_BYTES || packet[offset] !== 1 || packet[offset + 1] !== this.#step || !this.#measuring) return;
    const delay = performance.now() - packet.readDoubleLE(offset + 8);
    this.#received++;
    this.#hist[Math.min(BUCKETS - 1, Math.max(0, Math.floor(delay / BUCKET_MS)))]!++;
  }

  /**
   * Run all calls for `warmupS` (not counted), then `seconds` (counted),
   * then let `drainMs` of late packets arrive.
   */
  async run(seconds: number, warmupS = 1, drainMs = 300): Promise<StepResult> {
    const calls = this.calls;
    const streams = calls.length * 2;
    const rate = streams * PACKETS_PER_SECOND;
    this.#step = (this.#step + 1) & 0xff;
    this.#hist.fill(0);
    this.#received = 0;
    const templates = calls.map((call, i) => [template(call.aSendChannel, i, 0, this.#step), template(call.bSendChannel, i, 1, this.#step)] as const);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    let cursor = 0;
    let sent = 0;
    let sentCounted = 0;
    let phase = 0;
    const start = performance.now();
    const measureFrom = start + warmupS * 1000;
    const measureTo = measureFrom + seconds * 1000;
    let cpuAtMeasure = process.cpuUsage();
    let sentAtMeasure = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        if (phase === 0 && now >= measureFrom) {
          phase = 1;
          this.#measuring = true;
          sentAtMeasure = sent;
          cpuAtMeasure = process.cpuUsage();
          loop.enable();
        }
        if (phase === 1 && now >= measureTo) {
          clearInterval(timer);
          loop.disable();
          resolve();
          return;
        }
        // Send what the schedule asks for by now (round robin: each stream every 20 ms).
        const due = Math.floor(((now - start) * rate) / 1000) - sent;
        for (let k = 0; k < due; k++) {
          const [aTemplate, bTemplate] = templates[cursor >> 1]!;
          const call = calls[cursor >> 1]!;
          const source = cursor & 1 ? bTemplate : aTemplate;
          const packet = Buffer.allocUnsafe(source.length);
          source.copy(packet);
          const at = source.length - PAYLOAD_BYTES;
          packet[at] = phase;
          packet.writeDoubleLE(performance.now(), at + 8);
          (cursor & 1 ? call.b : call.a).send(packet);
          if (phase === 1) sentCounted++;
          sent++;
          cursor = cursor + 1 === streams ? 0 : cursor + 1;
        }
      };
      const timer = setInterval(tick, 1);
    });
    const cpu = process.cpuUsage(cpuAtMeasure);
    const windowMs = performance.now() - measureFrom;
    await new Promise((r) => setTimeout(r, drainMs));
    this.#measuring = false;
    const expected = ((sent - sentAtMeasure) / (windowMs / 1000)) / rate;
    return {
      calls: calls.length,
      sent: sentCounted,
      received: this.#received,
      lossPct: sentCounted === 0 ? 0 : (100 * Math.max(0, sentCounted - this.#received)) / sentCounted,
      p50Ms: this.#quantile(0.5),
      p95Ms: this.#quantile(0.95),
      p99Ms: this.#quantile(0.99),
      scheduleRatio: expected,
      loopP99Ms: loop.percentile(99) / 1e6,
      generatorCpuPct: (100 * (cpu.user + cpu.system)) / 1000 / windowMs,
    };
  }

  #quantile(q: number): number {
    const target = Math.ceil(this.#received * q);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#hist[i]!;
      if (seen >= target && target > 0) return (i + 0.5) * BUCKET_MS;
    }
    return Number.NaN;
  }

  async close(): Promise<void> {
    await Promise.all(this.calls.flatMap((c) => [c.a, c.b]).map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.calls.length = 0;
  }
}

function template(channel: number | null, call: number, direction: number, step: number): Buffer {
  const header = channel === null ? 0 : 4;
  const out = Buffer.alloc(header + PAYLOAD_BYTES);
  if (channel !== null) {
    out.writeUInt16BE(channel, 0);
    out.writeUInt16BE(PAYLOAD_BYTES, 2);
  }
  out[header + 1] = step;
  out[header + 2] = direction;
  out.writeUInt32LE(call, header + 4);
  return out;
}
