/**
 * Speech through calls: the committed samples (test/fixtures/audio/) and
 * how well a phone's recorded speaker matches one of them, for the call
 * tests with real processes.
 *
 * `match` is the waveform correlation after alignment (test/helpers/audio.ts
 * alignedCorrelation: one overall lag, then 500 ms pieces within ±60 ms of
 * it, since the jitter buffer shifts the delay by whole frames); `chance` is
 * the same measure against the samples that were not sent — what a
 * recording of someone else's speech scores. Thresholds: see the constants.
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { alignedCorrelation, readSamples } from '../helpers/audio.js';
import { until } from '../helpers/until.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/audio/${name}`, import.meta.url));

export const SPEECH = { a: fixture('speech-a.wav'), b: fixture('speech-b.wav'), c: fixture('speech-c.wav') } as const;

/**
 * A clean call (loopback, Opus 16 kbit/s over SRTP, real processes):
 * measured 0.90–0.95 both ways; the other samples score 0.09–0.11. 0.6
 * leaves room for a loaded CI machine (late frames concealed) and stays far
 * above chance.
 */
export const SPEECH_THRESHOLD = 0.6;
/**
 * 10 % random loss each way (netlab, nft numgen; 11–12 % seen by RTCP),
 * concealment and in-band FEC: measured 0.79–0.85 (in-process with seeded
 * loss 0.76–0.87). A concealed frame matches the waveform poorly, so the
 * figure falls with the loss and with bursts; 0.4 allows an unlucky burst
 * pattern and is still four times the chance figure (≤ 0.13).
 */
export const LOSS_THRESHOLD = 0.4;
/** One voice in a three-party mix (the other voice is noise to it): measured 0.48–0.71. */
export const MIX_THRESHOLD = 0.3;
/**
 * A party's own voice in what it hears from the mixer: 0.07–0.15 measured
 * (a mix of two other voices scores a little above one voice by chance); a
 * real echo of one's own voice would score like a clean call, 0.8 and more.
 */
export const SELF_CEILING = 0.3;
/** What another person's speech scores: measured 0.09–0.11. */
export const CHANCE_CEILING = 0.2;

export interface Similarity {
  match: number;
  lagMs: number;
  chance: number;
}

/** How well the speaker recording at `receivedPath` carries the sample at `sentPath` (waits for the recording to be written). */
export async function speechSimilarity(sentPath: string, receivedPath: string, options: { maxLagMs?: number } = {}): Promise<Similarity> {
  // The recording is complete when the call's audio device closes, just after the call ends (its header says how long it is).
  const received = await until(`${receivedPath} written`, async () => {
    if (!existsSync(receivedPath) || statSync(receivedPath).size < 44 + 16000 * 2) return undefined;
    const samples = readSamples(receivedPath);
    return samples.length >= 16000 ? samples : undefined;
  }, 5_000);
  const maxLagMs = options.maxLagMs ?? 8_000;
  const sent = readSamples(sentPath);
  const match = alignedCorrelation(sent, received, { maxLagMs });
  let chance = -1;
  for (const other of Object.values(SPEECH)) {
    if (other === sentPath) continue;
    chance = Math.max(chance, alignedCorrelation(readSamples(other), received, { maxLagMs }).corr);
  }
  return { match: match.corr, lagMs: match.lagMs, chance };
}
