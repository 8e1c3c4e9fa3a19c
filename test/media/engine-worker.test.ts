/**
 * MediaEngine in its worker thread, two engines talking over real loopback
 * UDP sockets, in real time: speech both ways (3 s clips of the fixtures),
 * DTMF, statistics pushed to the main thread, traces giving the software
 * mouth-to-ear delay, and the errors of start and addStream.
 *
 * Needs the compiled worker: `npm run build` first (npm test does it).
 * Thresholds as engine-core-speech.test.ts (clean: 0.85, chance: 0.2). In
 * real time the jitter buffer moves its delay by a frame now and then (it
 * starts at 40 ms and comes down to 20; timer stalls push it up), so the
 * alignment works on 250 ms pieces; over five runs we measured 0.92–0.97
 * both ways, chance 0.11.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeWav } from '../../hal/audio/wav.js';
import { MediaEngine, makeSrtpKeyMaterial } from '../../src/media/engine/engine.js';
import type { DtmfEvent, MediaStreamStats, StreamParams, TraceRecord } from '../../src/media/engine/engine.js';
import { alignedCorrelation, readSamples, slice } from '../helpers/audio.js';
import { until } from '../helpers/until.js';
import { SPEECH_A, SPEECH_B } from './engine-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'partyline-engine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLIP_MS = 3000;
const clipA = slice(readSamples(SPEECH_A), 0, CLIP_MS);
const clipB = slice(readSamples(SPEECH_B), 0, CLIP_MS);

async function udp(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return s;
}

describe('MediaEngine (worker thread) over loopback UDP', () => {
  it('carries speech both ways, DTMF, statistics and traces', async () => {
    const inA = join(dir, 'a-in.wav');
    const inB = join(dir, 'b-in.wav');
    const outA = join(dir, 'a-out.wav');
    const outB = join(dir, 'b-out.wav');
    writeWav(inA, clipA, 16000);
    writeWav(inB, clipB, 16000);
    const [a, b, sockA, sockB] = await Promise.all([
      MediaEngine.start({ audio: { driver: 'sim', sampleRate: 16000, input: inA, output: outA }, trace: true }),
      MediaEngine.start({ audio: { driver: 'sim', sampleRate: 16000, input: inB, output: outB }, trace: true }),
      udp(),
      udp(),
    ]);
    const traces: TraceRecord[] = [];
    const dtmf: DtmfEvent[] = [];
    const pushed: Array<[string, MediaStreamStats]> = [];
    a.on('trace', (r) => traces.push(r));
    b.on('trace', (r) => traces.push(r));
    b.on('dtmf', (e) => dtmf.push(e));
    a.on('stats', (id, s) => pushed.push([id, s]));
    try {
      const profile = 'AES_CM_128_HMAC_SHA1_80';
      const ab = makeSrtpKeyMaterial(profile);
      const ba = makeSrtpKeyMaterial(profile);
      const codec: StreamParams['codec'] = { sampleRate: 16000, bitrate: 24000 };
      sockA.on('message', (m) => a.receive('b', m));
      sockB.on('message', (m) => b.receive('a', m));
      a.addStream('b', { codec, srtp: { profile, send: ab, receive: ba }, ssrc: 0xaaaa }, (p) => sockA.send(p, sockB.address().port, '127.0.0.1'));
      b.addStream('a', { codec, srtp: { profile, send: ba, receive: ab }, ssrc: 0xbbbb }, (p) => sockB.send(p, sockA.address().port, '127.0.0.1'));
      expect(() => a.addStream('b', { codec, srtp: { profile, send: ab, receive: ba }, ssrc: 1 }, () => {})).toThrow(/already added/);
      expect(() => a.addStream('x', { codec, srtp: { profile, send: ab, receive: { key: Buffer.alloc(3), salt: ab.salt } }, ssrc: 1 }, () => {})).toThrow(/srtp.receive.key: 3 bytes/);
      expect(() => a.sendDtmf('b', 'xyz')).toThrow(/DTMF/);
      await new Promise((r) => setTimeout(r, CLIP_MS + 400));
      a.sendDtmf('b', '7#');
      await until('two DTMF digits at B', async () => dtmf.length >= 2, 3000);
      await until('statistics with an RTT', async () => a.stats('b')?.rttMs != null, 3000);
      const s = a.stats('b')!;
      const usage = await a.usage();
      console.log(`worker: ${(usage.busyMs / (usage.ticks / 50)).toFixed(1)} ms busy per second of call, event loop utilisation ${(100 * usage.eventLoopUtilization).toFixed(1)} %`);
      expect(s.packetsReceived).toBeGreaterThanOrEqual(100); // pushed once a second: as of 2 s or later
      expect(s.srtpRejected).toBe(0);
      expect(s.rttMs).toBeLessThan(50);
      expect(s.mos).toBeGreaterThan(4);
      expect(pushed.some(([id]) => id === 'b')).toBe(true);
      expect(dtmf).toEqual([{ streamId: 'a', digit: '7' }, { streamId: 'a', digit: '#' }]);
      a.removeStream('b');
      b.removeStream('a');
      expect(() => a.setHold('b', true)).toThrow(/no such stream/);
    } finally {
      await Promise.all([a.close(), b.close()]);
      sockA.close();
      sockB.close();
    }
    const heardByB = readSamples(outB);
    const heardByA = readSamples(outA);
    const r = {
      ab: alignedCorrelation(clipA, heardByB, { maxLagMs: 500, segmentMs: 250 }),
      ba: alignedCorrelation(clipB, heardByA, { maxLagMs: 500, segmentMs: 250 }),
      chance: alignedCorrelation(clipB, heardByB, { maxLagMs: 500, segmentMs: 250 }),
    };
    // Software mouth to ear: capture of a frame at one end to its playout at the other.
    const captured = new Map(traces.filter((t) => t.kind === 'capture').map((t) => [`${t.ssrc}/${t.timestamp}`, t.atMs]));
    const m2e = traces.filter((t) => t.kind === 'playout').map((t) => t.atMs - captured.get(`${t.ssrc}/${t.timestamp}`)!).filter(Number.isFinite).sort((x, y) => x - y);
    const median = m2e[Math.floor(m2e.length / 2)]!;
    console.log(`worker engines: A→B ${r.ab.corr.toFixed(3)} (one lag ${r.ab.global.corr.toFixed(3)}), B→A ${r.ba.corr.toFixed(3)} (one lag ${r.ba.global.corr.toFixed(3)}), chance ${r.chance.corr.toFixed(3)}; mouth-to-ear median ${median.toFixed(1)} ms, p95 ${m2e[Math.floor(m2e.length * 0.95)]!.toFixed(1)} ms over ${m2e.length} frames`);
    expect(r.ab.corr).toBeGreaterThan(0.85);
    expect(r.ba.corr).toBeGreaterThan(0.85);
    expect(r.chance.corr).toBeLessThan(0.2);
    expect(m2e.length).toBeGreaterThan(200);
    expect(median).toBeGreaterThan(20);
    expect(median).toBeLessThan(200);
  });

  it('start refuses an audio spec it cannot open, with the HAL\'s code', async () => {
    await expect(MediaEngine.start({ audio: { driver: 'alsa', sampleRate: 16000, device: 'partyline-no-such-pcm' } })).rejects.toMatchObject({ code: 'ERR_AUDIO_DEVICE', message: /no ALSA device "partyline-no-such-pcm"/ });
    await expect(MediaEngine.start({ audio: { driver: 'sim', sampleRate: 16000, input: join(dir, 'missing.wav') } })).rejects.toMatchObject({ code: 'ERR_AUDIO_IO' });
  });
});
