/**
 * Ringer: the sim driver's state and history; the audio driver ringing
 * through a sim audio device on a manual clock — the speaker WAV holds the
 * country's cadence (US 2 s warble / 4 s silence), stop closes the device,
 * a failing device is reported and the ringer returns to idle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualFrameClock } from '../../hal/audio/clock.js';
import { AudioError } from '../../hal/audio/errors.js';
import { SimAudioDevice } from '../../hal/audio/sim.js';
import { readWav } from '../../hal/audio/wav.js';
import { AudioRinger, SimRinger } from '../../hal/ringer/index.js';
import { ringCadence, toneSpec } from '../../hal/tones/index.js';

const dir = mkdtempSync(join(tmpdir(), 'partyline-ringer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('SimRinger', () => {
  it('records state, cadence and a timed history; stop is harmless when idle', async () => {
    let now = 1000;
    const ringer = new SimRinger({ now: () => now });
    expect(ringer.state).toBe('idle');
    ringer.stop();
    ringer.start(ringCadence('us'));
    expect(ringer.state).toBe('ringing');
    expect(ringer.cadence?.name).toBe('us/ring');
    now = 5000;
    ringer.stop();
    expect(ringer.state).toBe('idle');
    expect(ringer.cadence).toBeUndefined();
    expect(ringer.history).toEqual([
      { state: 'ringing', cadence: 'us/ring', atMs: 1000 },
      { state: 'idle', atMs: 5000 },
    ]);
    await ringer.close();
    ringer.start(ringCadence('eu'));
    expect(ringer.state).toBe('idle'); // closed
  });
});

describe('AudioRinger', () => {
  it('plays the US ring cadence through the device: 2 s of warble, 4 s of silence, again', async () => {
    const output = join(dir, 'ring.wav');
    const clock = new ManualFrameClock();
    let opened = 0;
    const ringer = new AudioRinger({
      open: () => {
        opened++;
        return new SimAudioDevice({ sampleRate: 16000, output, clock });
      },
    });
    ringer.start(ringCadence('us'));
    expect(ringer.state).toBe('ringing');
    await settle();
    expect(opened).toBe(1);
    expect(clock.running).toBe(true);
    for (let n = 0; n < 400; n++) clock.tick(20 * n); // 8 s
    ringer.stop();
    expect(ringer.state).toBe('idle');
    await ringer.close();
    expect(clock.running).toBe(false);
    const samples = readWav(output).samples;
    expect(samples.length).toBe(400 * 320);
    const frameLoud = (f: number): boolean => samples.subarray(f * 320, (f + 1) * 320).some((v) => Math.abs(v) > 1000);
    const pattern = Array.from({ length: 400 }, (_, f) => frameLoud(f));
    // frames 0–99 ring, 100–299 silent, 300–399 ring
    expect(pattern.slice(0, 100).every(Boolean)).toBe(true);
    expect(pattern.slice(100, 300).some(Boolean)).toBe(false);
    expect(pattern.slice(300, 400).every(Boolean)).toBe(true);
    let peak = 0;
    for (const v of samples) peak = Math.max(peak, Math.abs(v));
    expect(peak).toBeGreaterThan(10000); // −6 dBm0: ≈ 11 500
    expect(peak).toBeLessThan(32767);
  });

  it('switches cadence while ringing, reopens after stop, and reports a device that fails', async () => {
    const clock = new ManualFrameClock();
    const devices: SimAudioDevice[] = [];
    const ringer = new AudioRinger({
      open: () => {
        const d = new SimAudioDevice({ sampleRate: 48000, clock });
        devices.push(d);
        return d;
      },
    });
    ringer.start(ringCadence('eu'));
    await settle();
    ringer.start(toneSpec('eu', 'callWaiting'));
    expect(ringer.cadence?.name).toBe('eu/callWaiting');
    await settle();
    expect(devices.length).toBe(1); // same device, new cadence
    ringer.stop();
    ringer.start(ringCadence('eu'));
    await settle();
    await settle();
    expect(devices.length).toBe(2);
    expect(clock.running).toBe(true);
    await ringer.close();
    expect(clock.running).toBe(false);

    const errors: unknown[] = [];
    const failing = new AudioRinger({
      open: () => {
        throw new AudioError('ERR_AUDIO_DEVICE', 'no such device');
      },
      onError: (err) => errors.push(err),
    });
    failing.start(ringCadence('us'));
    await settle();
    expect(errors).toEqual([expect.objectContaining({ code: 'ERR_AUDIO_DEVICE' })]);
    expect(failing.state).toBe('idle');
    await failing.close();
  });
});
