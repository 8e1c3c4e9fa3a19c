/**
 * MediaCore beyond plain speech: SRTP rejecting tampered and replayed
 * packets without disturbing the audio, garbage from the network, hold (a
 * held stream keeps sending silence at 50 packets/s, DTX or not), DTX in
 * silence, DTMF end to end, a 3-party conference mixed by A (mix-minus),
 * parameter checks and the device's lifetime, and traces.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaError } from '../../src/media/errors.js';
import { MediaCore } from '../../src/media/engine/core.js';
import { makeSrtpKeyMaterial } from '../../src/media/engine/types.js';
import type { StreamParams } from '../../src/media/engine/types.js';
import { writeWav } from '../../hal/audio/wav.js';
import { ManualFrameClock } from '../../hal/audio/clock.js';
import { SimAudioDevice } from '../../hal/audio/sim.js';
import { alignedCorrelation, readSamples, rms, slice } from '../helpers/audio.js';
import { rng } from '../helpers/fuzz.js';
import { rtpSent, SPEECH_A, SPEECH_B, Testbed } from './engine-harness.js';
import type { Wire } from './engine-harness.js';

const opts = { maxLagMs: 500 };
const speechA = readSamples(SPEECH_A);
const speechB = readSamples(SPEECH_B);

let bed: Testbed | undefined;
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

function isRtcp(w: Wire): boolean {
  return w.packet[1]! >= 192 && w.packet[1]! <= 223;
}

describe('MediaCore: SRTP and hostile input', () => {
  it('drops and counts tampered and replayed packets before they reach the jitter buffer or decoder; the audio is not disturbed', async () => {
    bed = new Testbed();
    const a = bed.phone('a', { input: SPEECH_A });
    const b = bed.phone('b', { input: SPEECH_B, phaseMs: 7 });
    bed.link(a, 'b', b, 'a');
    const junk = rng(5);
    let rtpSeen = 0;
    const attacks = { rtpTampered: 0, rtpReplayed: 0, rtcpTampered: 0, rtcpReplayed: 0, garbage: 0 };
    let firstRtcp: Buffer | undefined;
    bed.loss = (w) => {
      if (w.from !== 'a') return false;
      if (isRtcp(w)) {
        if (!firstRtcp) {
          firstRtcp = w.packet;
        } else if (attacks.rtcpTampered === 0) {
          const bad = Buffer.from(w.packet);
          bad[12]! ^= 0x01;
          bed!.inject('b', 'a', bad);
          attacks.rtcpTampered++;
          bed!.inject('b', 'a', firstRtcp); // delivered 30 ms ago already
          attacks.rtcpReplayed++;
        }
        return false;
      }
      rtpSeen++;
      if (rtpSeen % 25 === 0) {
        // A forged copy arrives first, before the real packet (30 ms later).
        const bad = Buffer.from(w.packet);
        bad[20]! ^= 0x80;
        bed!.inject('b', 'a', bad);
        attacks.rtpTampered++;
      }
      if (rtpSeen % 25 === 10) {
        // A replay of a packet B has had for 100+ ms.
        const old = rtpSent(bed!, 'a', 'b')[rtpSeen - 6]!;
        bed!.inject('b', 'a', old.packet);
        attacks.rtpReplayed++;
      }
      if (rtpSeen % 50 === 3) {
        // Garbage of every shape: random bytes, an RTP-looking header, a bare byte.
        bed!.inject('b', 'a', Buffer.from(Array.from({ length: 1 + Math.floor(junk() * 200) }, () => Math.floor(junk() * 256))));
        bed!.inject('b', 'a', Buffer.concat([Buffer.from([0x80, 111]), Buffer.alloc(30)]));
        bed!.inject('b', 'a', Buffer.from([0x90]));
        bed!.inject('b', 'a', Buffer.concat([Buffer.from([0x81, 200, 0, 1]), Buffer.alloc(4)]));
        attacks.garbage += 4;
      }
      return false;
    };
    bed.run(6000);
    const s = b.core.stats('a')!;
    await bed.stop();
    const rtpDelivered = rtpSent(bed, 'a', 'b').filter((w) => w.at <= 6000 - 30).length;
    expect(attacks.rtpTampered).toBeGreaterThanOrEqual(10);
    expect(attacks.rtpReplayed).toBeGreaterThanOrEqual(10);
    expect(s.srtpRejected).toBeGreaterThanOrEqual(attacks.rtpTampered + attacks.rtpReplayed + attacks.rtcpTampered + attacks.rtcpReplayed);
    // Everything counted as rejected was an attack: the rest is the garbage that SRTP also refused.
    expect(s.srtpRejected + s.malformed).toBe(attacks.rtpTampered + attacks.rtpReplayed + attacks.rtcpTampered + attacks.rtcpReplayed + attacks.garbage);
    expect(s.packetsReceived).toBe(rtpDelivered);
    expect(s.packetsLost).toBe(0);
    expect(b.errors).toEqual([]);
    const heard = alignedCorrelation(speechA, readSamples(b.output), opts);
    expect(heard.corr).toBeGreaterThan(0.85);
  });
});

describe('MediaCore: hold and DTX', () => {
  it('a held stream is sent silence at 50 packets/s and is not played; DTX cuts silence to a packet per 400 ms but never while held', async () => {
    bed = new Testbed();
    const a = bed.phone('a', { input: SPEECH_A });
    const b = bed.phone('b', { input: SPEECH_B, phaseMs: 7 });
    bed.link(a, 'b', b, 'a', { sampleRate: 16000, bitrate: 16000, dtx: true });
    bed.run(1500);
    a.core.setHold('b', true);
    expect(a.stats.get('b')!.held).toBe(true); // pushed on change
    bed.run(2000); // held 1.5–3.5 s
    a.core.setHold('b', false);
    bed.run(5500); // speech ends at 5.5 s; silence with DTX until 9 s
    await bed.stop();
    const count = (from: number, to: number): number => rtpSent(bed!, 'a', 'b').filter((w) => w.at > from && w.at <= to).length;
    expect(count(1500, 3500)).toBe(100); // 50/s while held, DTX on
    expect(count(7000, 9000)).toBeLessThanOrEqual(6); // DTX in silence: ~1 per 400 ms
    expect(count(7000, 9000)).toBeGreaterThanOrEqual(4);
    const heardByB = readSamples(b.output);
    const heardByA = readSamples(a.output);
    // B hears nothing of A while held (after the 30 ms + jitter buffer in flight), and A plays nothing of B.
    expect(rms(slice(heardByB, 1700, 3500))).toBeLessThan(30);
    expect(rms(slice(heardByA, 1700, 3500))).toBeLessThan(30);
    expect(rms(slice(speechB, 1700, 3500))).toBeGreaterThan(1000);
    expect(rms(slice(heardByB, 500, 1500))).toBeGreaterThan(1000);
    // After resuming, B hears A's speech again.
    expect(alignedCorrelation(slice(speechA, 3600, 5500), slice(heardByB, 3600, 6000), { maxLagMs: 300, minLagMs: 0 }).corr).toBeGreaterThan(0.8);
  });
});

describe('MediaCore: mute and volume', () => {
  it('a muted microphone sends silence; the speaker volume scales what is played, 0 silences it', async () => {
    bed = new Testbed();
    const a = bed.phone('a', { input: SPEECH_A });
    const b = bed.phone('b', { input: SPEECH_A, phaseMs: 7 });
    bed.link(a, 'b', b, 'a', { sampleRate: 16000, bitrate: 24000 });
    bed.run(1500);
    a.core.setMute(true);
    b.core.setVolume(0);
    bed.run(1500); // 1.5–3.0 s: a muted, b's speaker at 0
    a.core.setMute(false);
    b.core.setVolume(8); // +9 dB
    bed.run(1500); // 3.0–4.5 s
    await bed.stop();
    const heardByB = readSamples(b.output);
    const heardByA = readSamples(a.output);
    // b's speaker: silent at volume 0 (a was muted too), then loud again.
    expect(rms(slice(heardByB, 1700, 3000))).toBeLessThan(30);
    // a is muted, not deaf: it still hears b.
    expect(rms(slice(heardByA, 1700, 3000))).toBeGreaterThan(1000);
    // +9 dB at volume 8: what b plays is about 2.8 times what a heard of the same sentence at 0 dB over the same stretch.
    const ratio = rms(slice(heardByB, 3200, 4400)) / rms(slice(heardByA, 3200, 4400));
    expect(ratio).toBeGreaterThan(2);
    expect(ratio).toBeLessThan(3.6);
    expect(() => b.core.setVolume(11)).toThrow(MediaError);
  });
});

describe('MediaCore: DTX and the quality estimate', () => {
  it('silence sent as DTX is not counted as loss: MOS stays high through a long pause', async () => {
    bed = new Testbed();
    const a = bed.phone('a', { input: SPEECH_A });
    const b = bed.phone('b', { input: SPEECH_B, phaseMs: 7 });
    bed.link(a, 'b', b, 'a', { sampleRate: 16000, bitrate: 12000, dtx: true });
    // Speech ends at 5.5 s; then 8 s of DTX (a packet per 400 ms, each followed by concealment while the buffer is empty).
    bed.run(13_500);
    await bed.stop();
    const s = b.stats.get('a')!;
    expect(s.packetsLost).toBe(0);
    expect(s.mos).not.toBeNull();
    expect(s.mos!).toBeGreaterThan(4);
  });
});

describe('MediaCore: adaptive FEC', () => {
  it('goes on when the peer reports loss over 1 %, and off after about 10 s of reports without loss', async () => {
    bed = new Testbed();
    const random = rng(3);
    let lossy = true;
    bed.loss = (w) => lossy && w.from === 'a' && random() < 0.1;
    const a = bed.phone('a', { input: SPEECH_A });
    const b = bed.phone('b', { phaseMs: 7 });
    bed.link(a, 'b', b, 'a');
    expect(a.core.stats('b')!.fec).toBe(false);
    bed.run(3000);
    expect(a.core.stats('b')!.fec).toBe(true);
    expect(b.core.stats('a')!.fec).toBe(false); // B's stream to A lost nothing
    lossy = false;
    bed.run(8000);
    expect(a.core.stats('b')!.fec).toBe(true); // not yet: fewer than 10 clean reports
    bed.run(8000);
    expect(a.core.stats('b')!.fec).toBe(false);
  });
});

describe('MediaCore: the sound test (echo driver)', () => {
  it('a caller hears their own speech back a second later, through both engines', async () => {
    bed = new Testbed();
    const a = bed.phone('a', { input: SPEECH_A });
    const echo = bed.phone('echo', { echoDelayMs: 1000, phaseMs: 9 });
    bed.link(a, 'echo', echo, 'a');
    bed.run(7000);
    await bed.stop();
    const heard = alignedCorrelation(speechA, readSamples(a.output), { minLagMs: 1000, maxLagMs: 1400 });
    console.log(`sound test: ${heard.corr.toFixed(3)} at ${heard.lagMs.toFixed(1)} ms`);
    // Two passes through Opus and the jitter buffers: 1 s + 2 × (30 ms + buffer + codec).
    expect(heard.corr).toBeGreaterThan(0.8);
    expect(heard.lagMs).toBeGreaterThan(1060);
    expect(heard.lagMs).toBeLessThan(1300);
    expect(rms(slice(readSamples(a.output), 0, 1000))).toBeLessThan(30); // nothing before the echo
  });
});

describe('MediaCore: DTMF', () => {
  it('digits sent by A are reported once each at B, in order, as telephone-event packets on PT 101', async () => {
    bed = new Testbed();
    const a = bed.phone('a', { input: SPEECH_A });
    const b = bed.phone('b', { phaseMs: 11 });
    bed.link(a, 'b', b, 'a');
    bed.run(500);
    a.core.sendDtmf('b', '1*9#');
    a.core.sendDtmf('b', 'd');
    expect(() => a.core.sendDtmf('b', '12x')).toThrow(expect.objectContaining({ code: 'ERR_MEDIA_DTMF' }));
    bed.run(2000);
    expect(b.dtmf).toEqual(['1', '*', '9', '#', 'D'].map((digit) => ({ streamId: 'a', digit })));
    expect(rtpSent(bed, 'a', 'b', 101)).toHaveLength(5 * 7);
    // One packet per frame all along: while a digit is sent its event packets replace the audio.
    expect(rtpSent(bed, 'a', 'b').length).toBe(125);
    const s = a.core.stats('b')!;
    expect(s.dtmfSent).toBe(5);
    expect(b.core.stats('a')!.dtmfReceived).toBe(5);
    expect(b.core.stats('a')!.packetsLost).toBe(0); // event packets count in the RTP statistics
  });
});

describe('MediaCore: 3-party conference mixed by A', () => {
  it('B and C each hear the other and A, and do not hear themselves; A hears both', async () => {
    bed = new Testbed();
    // A says a 300 Hz tone, B and C the two speech samples.
    const tonePath = join(bed.dir, 'tone.wav');
    const tone = Int16Array.from({ length: 16000 * 6 }, (_, i) => Math.round(1500 * Math.sin((2 * Math.PI * 300 * i) / 16000)));
    writeWav(tonePath, tone, 16000);
    const a = bed.phone('a', { input: tonePath });
    const b = bed.phone('b', { input: SPEECH_A, phaseMs: 7 });
    const c = bed.phone('c', { input: SPEECH_B, phaseMs: 13 });
    bed.link(a, 'b', b, 'a');
    bed.link(a, 'c', c, 'a');
    bed.run(6000);
    await bed.stop();
    const heardByA = readSamples(a.output);
    const heardByB = readSamples(b.output);
    const heardByC = readSamples(c.output);
    const r = {
      bHearsC: alignedCorrelation(speechB, heardByB, opts).corr,
      cHearsB: alignedCorrelation(speechA, heardByC, opts).corr,
      bHearsSelf: alignedCorrelation(speechA, heardByB, { maxLagMs: 500, minLagMs: 0 }).corr,
      cHearsSelf: alignedCorrelation(speechB, heardByC, { maxLagMs: 500, minLagMs: 0 }).corr,
      aHearsB: alignedCorrelation(speechA, heardByA, opts).corr,
      aHearsC: alignedCorrelation(speechB, heardByA, opts).corr,
    };
    console.log('3-party', Object.entries(r).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', '));
    expect(r.bHearsC).toBeGreaterThan(0.6);
    expect(r.cHearsB).toBeGreaterThan(0.6);
    expect(r.aHearsB).toBeGreaterThan(0.5);
    expect(r.aHearsC).toBeGreaterThan(0.5);
    expect(r.bHearsSelf).toBeLessThan(0.2);
    expect(r.cHearsSelf).toBeLessThan(0.2);
    // A's tone reaches B and C: the 300 Hz component of what they heard.
    for (const heard of [heardByB, heardByC]) {
      expect(goertzelAmplitude(slice(heard, 1000, 5000), 300)).toBeGreaterThan(700);
    }
    expect(goertzelAmplitude(slice(heardByA, 1000, 5000), 300)).toBeLessThan(150); // A does not hear its own tone
  });
});

/** Amplitude of the `hz` component of `x` (16 kHz), by the Goertzel recurrence. */
function goertzelAmplitude(x: Int16Array, hz: number, rate = 16000): number {
  const w = (2 * Math.PI * hz) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (const v of x) {
    const s0 = v + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * Math.sqrt(power)) / x.length;
}

describe('MediaCore: streams and the device', () => {
  const params = (): StreamParams => ({ codec: { sampleRate: 16000, bitrate: 24000 }, srtp: { profile: 'AES_CM_128_HMAC_SHA1_32', send: makeSrtpKeyMaterial('AES_CM_128_HMAC_SHA1_32'), receive: makeSrtpKeyMaterial('AES_CM_128_HMAC_SHA1_32') }, ssrc: 1 });

  it('checks parameters, opens the device with the first stream and closes it with the last (the WAV is complete), says BYE', async () => {
    bed = new Testbed();
    const clock = new ManualFrameClock();
    const output = join(bed.dir, 'lifetime.wav');
    let opened = 0;
    const sent: Buffer[] = [];
    const core = new MediaCore({
      openDevice: () => {
        opened++;
        return new SimAudioDevice({ sampleRate: 16000, output, clock });
      },
      send: (_id, p) => sent.push(p),
      now: () => 0,
    });
    const bad = params();
    bad.srtp.send.key = Buffer.alloc(5);
    expect(() => core.addStream('x', bad)).toThrow(/srtp.send.key: 5 bytes, expected 16/);
    expect(() => core.addStream('x', { ...params(), codec: { sampleRate: 8000 as never, bitrate: 24000 } })).toThrow(MediaError);
    expect(() => core.addStream('x', { ...params(), codec: { sampleRate: 16000, bitrate: 24000, payloadType: 101, dtmfPayloadType: 101 } })).toThrow(/other than Opus/);
    expect(() => core.addStream('x', { ...params(), srtp: { ...params().srtp, profile: 'NULL' as never } })).toThrow(/srtp.profile/);
    expect(opened).toBe(0);
    core.addStream('x', params());
    expect(core.deviceOpen).toBe(true);
    expect(() => core.addStream('x', params())).toThrow(expect.objectContaining({ code: 'ERR_MEDIA_ENGINE_STREAM_EXISTS' }));
    for (const id of ['y', 'z', 'v', 'w']) core.addStream(id, params());
    expect(() => core.addStream('u', params())).toThrow(expect.objectContaining({ code: 'ERR_MEDIA_ENGINE_FULL' }));
    expect(opened).toBe(1);
    for (let t = 20; t <= 200; t += 20) clock.tick(t);
    expect(sent.filter((p) => (p[1]! & 0x7f) === 111)).toHaveLength(50); // 5 streams × 10 frames
    expect(() => core.setHold('nope', true)).toThrow(expect.objectContaining({ code: 'ERR_MEDIA_ENGINE_NO_STREAM' }));
    core.receive('nope', Buffer.alloc(20)); // unknown stream: dropped, no throw
    for (const id of ['x', 'y', 'z', 'v']) await core.removeStream(id);
    expect(core.deviceOpen).toBe(true);
    const before = sent.length;
    await core.removeStream('w');
    expect(sent.length).toBe(before + 1); // the last SRTCP: SR + SDES + BYE
    expect(core.deviceOpen).toBe(false);
    expect(clock.running).toBe(false);
    expect(readSamples(output).length).toBe(10 * 320);
    core.addStream('again', params()); // a new call: the device opens again, the file is rewritten
    expect(opened).toBe(2);
    await core.close();
    await core.close();
    expect(readSamples(output).length).toBe(0);
    expect(() => core.addStream('late', params())).toThrow(expect.objectContaining({ code: 'ERR_MEDIA_ENGINE_CLOSED' }));
    expect(existsSync(output)).toBe(true);
  });

  it('traces capture at the sender and playout at the receiver with matching timestamps (software mouth-to-ear)', async () => {
    bed = new Testbed();
    const a = bed.phone('a', { input: SPEECH_A, trace: true });
    const b = bed.phone('b', { phaseMs: 7, trace: true });
    bed.link(a, 'b', b, 'a');
    bed.run(2000);
    const captured = new Map(a.trace.filter((r) => r.kind === 'capture').map((r) => [r.timestamp, r]));
    const delays = b.trace.filter((r) => r.kind === 'playout').map((r) => r.atMs - captured.get(r.timestamp)!.atMs);
    expect(captured.size).toBeGreaterThanOrEqual(99);
    expect(delays.length).toBeGreaterThan(90);
    // 30 ms network, the 7 ms phase, and the jitter buffer's 20–40 ms target.
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(37);
      expect(d).toBeLessThan(120);
    }
  });
});
