/**
 * Call-progress tones and ring cadences per country, as tables.
 *
 * A tone is a cadence: a list of segments, each a duration and the
 * frequencies sounding together during it (none: silence), repeated from the
 * start when `repeat` is set. Durations are whole milliseconds, so at 16 and
 * 48 kHz every segment is a whole number of samples and a cadence is exact by
 * sample count.
 *
 * Sources:
 * - ITU-T Recommendation E.180 (03/1998), "Technical characteristics of tones
 *   for the telephone service", §2 (dial, ringing, busy, congestion, call
 *   waiting: recommended frequencies 400–450 Hz, cadences and the ±1 %
 *   timing tolerance), and its Supplement 2, "Various tones used in national
 *   networks" (the per-country table the values below are read from).
 * - North America: ANSI T1.401 / Telcordia GR-506-CORE (LSSGR) "precise
 *   tone plan": dial 350+440 Hz continuous; audible ringing 440+480 Hz,
 *   2 s on 4 s off; busy (line busy) 480+620 Hz, 0.5 s on 0.5 s off;
 *   reorder (congestion) 480+620 Hz, 0.25 s on 0.25 s off; call waiting
 *   440 Hz, a 0.3 s burst, repeated about every 10 s; power ringing 2 s on
 *   4 s off.
 * - Europe ("eu"): the CEPT harmonised tones of ETSI TR 101 041-2 and E.180
 *   §2: 425 Hz throughout; dial continuous; ringing 1 s on 4 s off; busy
 *   0.5 s on 0.5 s off; congestion 0.2 s on 0.2 s off (ETSI; some national
 *   networks use 0.25/0.25); call waiting 0.2 s on 0.2 s off 0.2 s on, then
 *   a pause (national values differ; 5 s as in Germany here); ringing
 *   signal 1 s on 4 s off.
 * - United Kingdom ("uk", E.180 Suppl. 2, BT SIN 350): dial 350+450 Hz
 *   continuous; ringing 400+450 Hz, 0.4 on 0.2 off 0.4 on 2.0 off; busy
 *   400 Hz 0.375/0.375; congestion 400 Hz 0.4 on 0.35 off 0.225 on 0.525 off;
 *   call waiting 400 Hz 0.1 s, repeated after 3 s (simplified); ringing
 *   signal in the ringback cadence.
 *
 * The ring (`ring`) is what the phone's own loudspeaker plays for an
 * incoming call: the country's ringing-signal cadence, sounded as a
 * 1000/800 Hz warble (25 ms each) — a desk phone's electronic ringer, not
 * the 20–25 Hz line voltage a bell needs.
 */

import { AudioError } from '../audio/errors.js';

export const TONE_COUNTRIES = ['us', 'eu', 'uk'] as const;
export type ToneCountry = (typeof TONE_COUNTRIES)[number];

export const TONE_NAMES = ['dial', 'ringback', 'busy', 'congestion', 'callWaiting', 'ring'] as const;
export type ToneName = (typeof TONE_NAMES)[number];

export interface ToneSegment {
  /** Length in milliseconds (whole milliseconds). */
  readonly durationMs: number;
  /** Frequencies sounding together, Hz; empty for silence. */
  readonly frequencies: readonly number[];
}

export interface ToneSpec {
  readonly name: string;
  readonly segments: readonly ToneSegment[];
  /** Start again from the first segment after the last (false: silence after the last segment). */
  readonly repeat: boolean;
}

const on = (durationMs: number, ...frequencies: number[]): ToneSegment => ({ durationMs, frequencies });
const off = (durationMs: number): ToneSegment => ({ durationMs, frequencies: [] });

/** A warble of `high`/`low` alternating every `stepMs` for `durationMs` (the electronic ringer). */
function warble(durationMs: number, high = 1000, low = 800, stepMs = 25): ToneSegment[] {
  const out: ToneSegment[] = [];
  for (let t = 0, i = 0; t < durationMs; t += stepMs, i++) out.push(on(Math.min(stepMs, durationMs - t), i % 2 === 0 ? high : low));
  return out;
}

type Table = Record<ToneName, Omit<ToneSpec, 'name'>>;

const TABLES: Record<ToneCountry, Table> = {
  us: {
    dial: { segments: [on(1000, 350, 440)], repeat: true },
    ringback: { segments: [on(2000, 440, 480), off(4000)], repeat: true },
    busy: { segments: [on(500, 480, 620), off(500)], repeat: true },
    congestion: { segments: [on(250, 480, 620), off(250)], repeat: true },
    callWaiting: { segments: [on(300, 440), off(9700)], repeat: true },
    ring: { segments: [...warble(2000), off(4000)], repeat: true },
  },
  eu: {
    dial: { segments: [on(1000, 425)], repeat: true },
    ringback: { segments: [on(1000, 425), off(4000)], repeat: true },
    busy: { segments: [on(500, 425), off(500)], repeat: true },
    congestion: { segments: [on(200, 425), off(200)], repeat: true },
    callWaiting: { segments: [on(200, 425), off(200), on(200, 425), off(5000)], repeat: true },
    ring: { segments: [...warble(1000), off(4000)], repeat: true },
  },
  uk: {
    dial: { segments: [on(1000, 350, 450)], repeat: true },
    ringback: { segments: [on(400, 400, 450), off(200), on(400, 400, 450), off(2000)], repeat: true },
    busy: { segments: [on(375, 400), off(375)], repeat: true },
    congestion: { segments: [on(400, 400), off(350), on(225, 400), off(525)], repeat: true },
    callWaiting: { segments: [on(100, 400), off(3000)], repeat: true },
    ring: { segments: [...warble(400), off(200), ...warble(400), off(2000)], repeat: true },
  },
};

export function isToneCountry(value: unknown): value is ToneCountry {
  return typeof value === 'string' && (TONE_COUNTRIES as readonly string[]).includes(value);
}

/** The table entry for `name` in `country`. */
export function toneSpec(country: ToneCountry, name: ToneName): ToneSpec {
  const table = TABLES[country];
  if (!table) throw new AudioError('ERR_AUDIO_TONE', `tone country ${JSON.stringify(country)}: expected one of ${TONE_COUNTRIES.join(', ')}`);
  const entry = table[name];
  if (!entry) throw new AudioError('ERR_AUDIO_TONE', `tone ${JSON.stringify(name)}: expected one of ${TONE_NAMES.join(', ')}`);
  return { name: `${country}/${name}`, ...entry };
}

/** The ring cadence of `country` (what a `Ringer` plays). */
export function ringCadence(country: ToneCountry): ToneSpec {
  return toneSpec(country, 'ring');
}
