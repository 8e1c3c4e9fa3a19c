/**
 * The audio drivers: sim (WAV in, WAV out, paced by a frame clock), echo
 * (speaker back as microphone after a delay), the real-time frame clock's
 * pacing, and the driver factory (the alsa driver itself: alsa*.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { AlsaAudioDevice } from '../../hal/audio/alsa.js';
import { ManualFrameClock, RealtimeFrameClock } from '../../hal/audio/clock.js';
import { EchoAudioDevice } from '../../hal/audio/echo.js';
import { AudioError } from '../../hal/audio/errors.js';
import { openAudioDevice } from '../../hal/audio/index.js';
import { SimAudioDevice } from '../../hal/audio/sim.js';
import { readWav, writeWav } from '../../hal/audio/wav.js';

const dir = mkdtempSync(join(tmpdir(), 'partyline-audio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frameValue(pcm: Buffer): number {
  return pcm.readInt16LE(0);
}

function constantFrame(value: number, samples = 320): Buffer {
  const b = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) b.writeInt16LE(value, 2 * i);
  return b;
}

describe('sim audio driver', () => {
  it('plays the input WAV as the microphone, then silence; writes the speaker to the output WAV', async () => {
    const input = join(dir, 'in.wav');
    const output = join(dir, 'out.wav');
    // 2.5 frames: sample i of frame f is 100 f + 1.
    writeWav(input, Int16Array.from({ length: 800 }, (_, i) => 100 * Math.floor(i / 320) + 1), 16000);
    const clock = new ManualFrameClock();
    const device = new SimAudioDevice({ sampleRate: 16000, input, output, clock });
    expect(device.frameSamples).toBe(320);
    const mic: Array<{ first: number; last: number; time: number }> = [];
    device.start((pcm, time) => {
      mic.push({ first: frameValue(pcm), last: pcm.readInt16LE(pcm.length - 2), time });
      if (mic.length !== 2) device.play(constantFrame(mic.length)); // frame 2 not fed: silence
    });
    expect(() => device.start(() => {})).toThrow(AudioError);
    for (let n = 0; n < 5; n++) clock.tick(1000 + 20 * n);
    expect(mic).toEqual([
      { first: 1, last: 1, time: 1000 },
      { first: 101, last: 101, time: 1020 },
      { first: 201, last: 0, time: 1040 }, // the last half frame, padded
      { first: 0, last: 0, time: 1060 },
      { first: 0, last: 0, time: 1080 },
    ]);
    await device.close();
    await device.close();
    expect(clock.running).toBe(false);
    const out = readWav(output).samples;
    expect(out.length).toBe(5 * 320);
    expect([0, 1, 2, 3, 4].map((f) => out[f * 320])).toEqual([1, 0, 3, 4, 5]);
    device.play(constantFrame(9)); // after close: ignored
  });

  it('converts a 16 kHz input to a 48 kHz device and refuses frames of the wrong size', async () => {
    const input = join(dir, 'in16.wav');
    writeWav(input, Int16Array.from({ length: 320 }, () => 1000), 16000);
    const clock = new ManualFrameClock();
    const device = new SimAudioDevice({ sampleRate: 48000, input, clock });
    let got: Buffer | undefined;
    device.start((pcm) => (got = pcm));
    clock.tick(0);
    expect(got?.length).toBe(960 * 2);
    expect(got?.readInt16LE(900)).toBe(1000);
    expect(() => device.play(Buffer.alloc(640))).toThrow(/expected 1920 bytes/);
    await device.close();
  });

  it('rewrites the output file each time a device opens on it', async () => {
    const output = join(dir, 'again.wav');
    for (const frames of [4, 2]) {
      const clock = new ManualFrameClock();
      const device = new SimAudioDevice({ sampleRate: 16000, output, clock });
      device.start(() => device.play(constantFrame(7)));
      for (let n = 0; n < frames; n++) clock.tick(n * 20);
      await device.close();
      expect(readWav(output).samples.length).toBe(frames * 320);
    }
  });

  it('refuses a malformed input file when opened, with the WAV error', () => {
    const bad = join(dir, 'stereo.wav');
    const bytes = Buffer.alloc(48);
    bytes.write('RIFF', 0, 'latin1');
    bytes.write('WAVEfmt ', 8, 'latin1');
    bytes.writeUInt32LE(16, 16);
    bytes.writeUInt16LE(1, 20);
    bytes.writeUInt16LE(2, 22);
    bytes.writeUInt32LE(16000, 24);
    bytes.writeUInt16LE(16, 34);
    bytes.write('data', 36, 'latin1');
    bytes.writeUInt32LE(4, 40);
    writeFileSync(bad, Buffer.concat([bytes.subarray(0, 44), Buffer.alloc(4)]));
    expect(() => new SimAudioDevice({ sampleRate: 16000, input: bad, clock: new ManualFrameClock() })).toThrow(/2 channels, expected 1/);
  });
});

describe('echo audio driver', () => {
  it('returns what the speaker played delayMs later, silence before', async () => {
    const clock = new ManualFrameClock();
    const device = new EchoAudioDevice({ sampleRate: 16000, delayMs: 60, clock });
    expect(device.delayFrames).toBe(3);
    const mic: number[] = [];
    let n = 0;
    device.start((pcm) => {
      mic.push(frameValue(pcm));
      device.play(constantFrame(100 + n++));
    });
    for (let t = 0; t < 7; t++) clock.tick(t * 20);
    expect(mic).toEqual([0, 0, 0, 100, 101, 102, 103]);
    await device.close();
  });

  it('defaults to a 1 s delay and refuses delays out of range', () => {
    expect(new EchoAudioDevice({ sampleRate: 16000, clock: new ManualFrameClock() }).delayFrames).toBe(50);
    expect(() => new EchoAudioDevice({ sampleRate: 16000, delayMs: 0 })).toThrow(/delayMs 0/);
    expect(() => new EchoAudioDevice({ sampleRate: 16000, delayMs: 60_000 })).toThrow(AudioError);
  });
});

describe('openAudioDevice', () => {
  it('opens sim, echo and alsa by name; unknown drivers are refused', async () => {
    const sim = openAudioDevice({ driver: 'sim', sampleRate: 16000 }, { clock: new ManualFrameClock() });
    expect(sim).toBeInstanceOf(SimAudioDevice);
    await sim.close();
    expect(openAudioDevice({ driver: 'echo', sampleRate: 48000, delayMs: 200 })).toBeInstanceOf(EchoAudioDevice);
    const portAudio = {
      getDevices: () => [{ id: 3, name: 'default', maxInputChannels: 2, maxOutputChannels: 2, defaultSampleRate: 48000, hostAPIName: 'ALSA' }],
      AudioIO: () => {
        throw new Error('not opened in this test');
      },
    };
    expect(openAudioDevice({ driver: 'alsa', sampleRate: 16000, device: 'default' }, { portAudio })).toBeInstanceOf(AlsaAudioDevice);
    expect(() => openAudioDevice({ driver: 'alsa', sampleRate: 16000, device: 'hw:1,0' }, { portAudio })).toThrow(/no ALSA device "hw:1,0"; PortAudio offers "default"/);
    expect(() => openAudioDevice({ driver: 'pulse' } as never)).toThrow(/unknown, expected "sim", "echo" or "alsa"/);
    expect(() => openAudioDevice({ driver: 'sim', sampleRate: 44100 } as never)).toThrow(/sampleRate 44100/);
    try {
      openAudioDevice({ driver: 'pulse' } as never);
      expect.unreachable();
    } catch (err) {
      expect((err as AudioError).code).toBe('ERR_AUDIO_DRIVER');
    }
  });
});

describe('RealtimeFrameClock', () => {
  it('ticks every period against performance.now() without accumulating lateness', async () => {
    const clock = new RealtimeFrameClock();
    const start = performance.now();
    const ticks: Array<{ due: number; at: number }> = [];
    await new Promise<void>((resolve) => {
      clock.start(20, (due) => {
        ticks.push({ due, at: performance.now() });
        if (ticks.length === 15) resolve();
      });
    });
    clock.stop();
    clock.stop();
    // Due times are exactly one period apart: no drift, whatever the timer lateness.
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.due - ticks[i - 1]!.due).toBeCloseTo(20, 6);
    expect(ticks[0]!.due - start).toBeGreaterThanOrEqual(19);
    // Each tick runs after it is due, never before.
    for (const t of ticks) expect(t.at).toBeGreaterThanOrEqual(t.due - 0.5);
  });

  it('runs the ticks a stall swallowed on waking, up to maxCatchUp, then skips ahead', async () => {
    const clock = new RealtimeFrameClock({ maxCatchUp: 3 });
    const dues: number[] = [];
    let stalled = false;
    await new Promise<void>((resolve) => {
      clock.start(10, (due) => {
        dues.push(due);
        if (!stalled) {
          stalled = true;
          const until = performance.now() + 100; // block the loop for 10 periods
          while (performance.now() < until);
        }
        if (dues.length === 8) resolve();
      });
    });
    clock.stop();
    // Tick 0, the stall, then 3 catch-up ticks 10 ms apart, then a jump of several periods.
    expect(dues[1]! - dues[0]!).toBeCloseTo(10, 6);
    expect(dues[3]! - dues[2]!).toBeCloseTo(10, 6);
    expect(dues[4]! - dues[3]!).toBeGreaterThanOrEqual(50);
  });
});
