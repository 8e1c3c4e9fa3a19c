/**
 * The alsa driver against ALSA's `type file` PCM (LAB.md: no sound card, not
 * paced): what the infile holds arrives as capture frames, what the driver
 * plays ends up in the file sink, bit for bit, with silence where nothing was
 * played; device names and errors. Paced (jack) behaviour and recovery:
 * alsa-jack.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AlsaAudioDevice } from '../../hal/audio/alsa.js';
import { checkAudioSpec, openAudioDevice } from '../../hal/audio/index.js';
import { loadPortAudio } from '../../hal/audio/portaudio.js';
import { fileLabAvailability, writeAlsaConfig } from './alsa-lab.js';

const availability = fileLabAvailability();
const dir = mkdtempSync(join(tmpdir(), 'partyline-alsa-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sample i of the microphone file: a ramp that tells every sample apart. */
const micSample = (i: number): number => ((i * 7) % 60000) - 30000;

function rawFile(path: string, samples: number, value: (i: number) => number): void {
  const b = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) b.writeInt16LE(value(i), 2 * i);
  writeFileSync(path, b);
}

/** Frame n played by the test: every sample n + 1 + (i % 3). */
function playedFrame(n: number, samples: number): Buffer {
  const b = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) b.writeInt16LE(n + 1 + (i % 3), 2 * i);
  return b;
}

describe('ALSA file lab', () => {
  it('is available (required when CI is set)', (ctx) => {
    if (!availability.ok && !process.env['CI']) ctx.skip(`ALSA lab unavailable: ${availability.reason ?? ''}`);
    expect(availability).toEqual({ ok: true });
  });
});

describe.skipIf(!availability.ok && !process.env['CI'])('alsa driver on the ALSA file PCM', () => {
  for (const rate of [16000, 48000] as const) {
    it(`${rate} Hz: infile → capture frames in order; played frames → the file sink, unfed periods as silence`, async () => {
      const frameSamples = rate / 50;
      const infile = join(dir, `in-${rate}.raw`);
      const outfile = join(dir, `out-${rate}.raw`);
      rawFile(infile, 200 * frameSamples, micSample);
      process.env['ALSA_CONFIG_PATH'] = writeAlsaConfig(dir, { infile, outfile, rate });
      expect(openAudioDevice({ driver: 'alsa', sampleRate: rate, device: 'partyline_file' })).toBeInstanceOf(AlsaAudioDevice);
      // Unpaced, capture runs ahead in bursts: let the playout queue hold them all (no drops) for a bit-exact comparison.
      const alsa = new AlsaAudioDevice({ sampleRate: rate, device: 'partyline_file', playoutFrames: 1000 });
      const device = alsa;
      const captured: Buffer[] = [];
      const frames = 60;
      await new Promise<void>((resolve) => {
        device.start((pcm) => {
          expect(pcm.length).toBe(frameSamples * 2);
          const n = captured.length;
          captured.push(Buffer.from(pcm));
          if (n % 10 !== 5) device.play(playedFrame(n, frameSamples)); // every tenth period unfed
          if (captured.length === frames) resolve();
        });
      });
      // Let the writes catch up (unpaced: quickly), then close: quit drains what PortAudio holds.
      // Two frames of margin: capture (and play) runs on until close, so the last frame checked below is never the one close cuts.
      while (alsa.stats().writtenFrames < 2 + frames + 2) await new Promise((r) => setTimeout(r, 5));
      await device.close();
      await device.close();
      // Capture: exactly the infile, frame after frame.
      for (let n = 0; n < frames; n++) {
        const want = Buffer.alloc(frameSamples * 2);
        for (let i = 0; i < frameSamples; i++) want.writeInt16LE(micSample(n * frameSamples + i), 2 * i);
        expect(captured[n]!.equals(want), `capture frame ${n}`).toBe(true);
      }
      // Playback: silence first (our 2 frames of priming and PortAudio's own
      // pre-fill of the ALSA buffer), then one frame per capture period.
      const out = readFileSync(outfile);
      const start = out.findIndex((b) => b !== 0) & ~1;
      expect(start).toBeGreaterThanOrEqual(2 * frameSamples * 2);
      expect(out.readInt16LE(start)).toBe(1); // the first sample of played frame 0
      expect(out.length - start).toBeGreaterThanOrEqual(frames * frameSamples * 2); // nothing lost at close
      const frame = (k: number): Buffer => out.subarray(start + k * frameSamples * 2, start + (k + 1) * frameSamples * 2);
      for (let n = 0; n < frames; n++) {
        const got = frame(n);
        if (n % 10 === 5) expect(got.every((b) => b === 0), `silence for unfed period ${n}`).toBe(true);
        else expect(got.equals(playedFrame(n, frameSamples)), `played frame ${n}`).toBe(true);
      }
      const stats = alsa.stats();
      expect(stats.capturedFrames).toBeGreaterThanOrEqual(frames); // capture runs on until close
      expect(stats.xruns).toBe(0);
      expect(stats.droppedFrames).toBe(0);
      expect(stats.silenceFrames).toBeGreaterThanOrEqual(2 + frames / 10);
    });
  }

  it('names: a missing device is ERR_AUDIO_DEVICE listing what exists; checkAudioSpec opens nothing', () => {
    const infile = join(dir, 'in-names.raw');
    const outfile = join(dir, 'out-names.raw');
    rawFile(infile, 320, micSample);
    process.env['ALSA_CONFIG_PATH'] = writeAlsaConfig(dir, { infile, outfile, rate: 16000 });
    expect(() => openAudioDevice({ driver: 'alsa', sampleRate: 16000, device: 'partyline_nope' })).toThrow(
      expect.objectContaining({ code: 'ERR_AUDIO_DEVICE', message: expect.stringMatching(/no ALSA device "partyline_nope"; PortAudio offers .*"partyline_file"/) }),
    );
    expect(() => openAudioDevice({ driver: 'alsa', sampleRate: 16000, device: 'plughw:7,0' })).toThrow(expect.objectContaining({ code: 'ERR_AUDIO_DEVICE' }));
    expect(() => openAudioDevice({ driver: 'alsa', sampleRate: 22050 as never, device: 'partyline_file' })).toThrow(expect.objectContaining({ code: 'ERR_AUDIO_OPTIONS' }));
    rmSync(outfile, { force: true });
    checkAudioSpec({ driver: 'alsa', sampleRate: 16000, device: 'partyline_file' });
    expect(() => readFileSync(outfile)).toThrow(/ENOENT/); // nothing opened, nothing written
    expect(loadPortAudio().getDevices().some((d) => d.name === 'partyline_file')).toBe(true);
  });
});
