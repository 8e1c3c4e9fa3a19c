/**
 * MediaCores back to back in one process on a fake clock: each phone is a
 * core with the real sim audio driver (WAV in, WAV out) ticked by a manual
 * frame clock, and a simulated network between the legs delivers packets
 * after a fixed delay, dropping what `loss` says. Time moves in 1 ms steps;
 * phones tick at their own phase within the 20 ms frame.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualFrameClock } from '../../hal/audio/clock.js';
import { EchoAudioDevice } from '../../hal/audio/echo.js';
import { SimAudioDevice } from '../../hal/audio/sim.js';
import { MediaCore } from '../../src/media/engine/core.js';
import { makeSrtpKeyMaterial } from '../../src/media/engine/types.js';
import type { DtmfEvent, MediaStreamStats, StreamParams, TraceRecord } from '../../src/media/engine/types.js';
import type { SrtpProfile } from '../../src/media/srtp.js';
import { rng } from '../helpers/fuzz.js';

export const FIXTURES = new URL('../fixtures/audio/', import.meta.url);
export const SPEECH_A = new URL('speech-a.wav', FIXTURES).pathname;
export const SPEECH_B = new URL('speech-b.wav', FIXTURES).pathname;

export interface Wire {
  from: string;
  streamId: string;
  packet: Buffer;
  at: number;
}

export interface Phone {
  name: string;
  core: MediaCore;
  clock: ManualFrameClock;
  output: string;
  phaseMs: number;
  dtmf: DtmfEvent[];
  stats: Map<string, MediaStreamStats>;
  errors: unknown[];
  trace: TraceRecord[];
}

export class Testbed {
  readonly dir = mkdtempSync(join(tmpdir(), 'partyline-media-'));
  readonly phones = new Map<string, Phone>();
  /** Packets sent by (phone, stream), in order, with their time. */
  readonly sent: Wire[] = [];
  now = 0;
  delayMs = 30;
  /** Return true to drop a packet. */
  loss: (wire: Wire) => boolean = () => false;
  readonly #links = new Map<string, { phone: string; streamId: string }>();
  readonly #inFlight: Array<Wire & { to: { phone: string; streamId: string } }> = [];

  /** A phone; with `echoDelayMs` its device is the echo (sound-test) driver instead of the sim one. */
  phone(name: string, options: { input?: string; phaseMs?: number; sampleRate?: 16000 | 48000; trace?: boolean; echoDelayMs?: number } = {}): Phone {
    const clock = new ManualFrameClock();
    const output = join(this.dir, `${name}-out.wav`);
    const phone: Phone = {
      name, clock, output, phaseMs: options.phaseMs ?? 0, dtmf: [], stats: new Map(), errors: [], trace: [],
      core: undefined as unknown as MediaCore,
    };
    phone.core = new MediaCore({
      openDevice: () =>
        options.echoDelayMs !== undefined
          ? new EchoAudioDevice({ sampleRate: options.sampleRate ?? 16000, delayMs: options.echoDelayMs, clock })
          : new SimAudioDevice({ sampleRate: options.sampleRate ?? 16000, input: options.input, output, clock }),
      send: (streamId, packet) => {
        const wire = { from: name, streamId, packet, at: this.now };
        this.sent.push(wire);
        const to = this.#links.get(`${name}/${streamId}`);
        if (to && !this.loss(wire)) this.#inFlight.push({ ...wire, at: this.now + this.delayMs, to });
      },
      onDtmf: (e) => phone.dtmf.push(e),
      onStats: (id, s) => phone.stats.set(id, s),
      onError: (err) => phone.errors.push(err),
      onTrace: options.trace ? (r) => phone.trace.push(r) : undefined,
      now: () => this.now,
      wallOffsetMs: 1_700_000_000_000,
      random: rng(name.charCodeAt(0) * 7919),
    });
    this.phones.set(name, phone);
    return phone;
  }

  /** Connect a's stream `aStream` with b's stream `bStream`, with fresh keys both ways. */
  link(a: Phone, aStream: string, b: Phone, bStream: string, codec: StreamParams['codec'] = { sampleRate: 16000, bitrate: 24000 }, profile: SrtpProfile = 'AES_CM_128_HMAC_SHA1_80'): void {
    const ab = makeSrtpKeyMaterial(profile);
    const ba = makeSrtpKeyMaterial(profile);
    a.core.addStream(aStream, { codec, srtp: { profile, send: ab, receive: ba }, ssrc: 0x1000 + a.name.charCodeAt(0) });
    b.core.addStream(bStream, { codec, srtp: { profile, send: ba, receive: ab }, ssrc: 0x2000 + b.name.charCodeAt(0) });
    this.#links.set(`${a.name}/${aStream}`, { phone: b.name, streamId: bStream });
    this.#links.set(`${b.name}/${bStream}`, { phone: a.name, streamId: aStream });
  }

  /** Deliver a packet now, as if from the network (for tampering and replays). */
  inject(phone: string, streamId: string, packet: Buffer): void {
    this.phones.get(phone)!.core.receive(streamId, packet);
  }

  /** Run `ms` of simulated time. `every` runs at each 1 ms step. */
  run(ms: number, every?: (now: number) => void): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now++;
      every?.(this.now);
      let i = 0;
      while (i < this.#inFlight.length) {
        const w = this.#inFlight[i]!;
        if (w.at <= this.now) {
          this.#inFlight.splice(i, 1);
          this.phones.get(w.to.phone)!.core.receive(w.to.streamId, w.packet);
        } else {
          i++;
        }
      }
      for (const p of this.phones.values()) if ((this.now - p.phaseMs) % 20 === 0) p.clock.tick(this.now);
    }
  }

  /** Close every core (the output WAVs are complete afterwards). */
  async stop(): Promise<void> {
    for (const p of this.phones.values()) await p.core.close();
  }

  /** Stop, and remove the output files. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Packets of a phone's stream that are RTP (not RTCP), by payload type. */
export function rtpSent(bed: Testbed, from: string, streamId: string, payloadType?: number): Wire[] {
  return bed.sent.filter((w) => w.from === from && w.streamId === streamId && !(w.packet[1]! >= 192 && w.packet[1]! <= 223) && (payloadType === undefined || (w.packet[1]! & 0x7f) === payloadType));
}
