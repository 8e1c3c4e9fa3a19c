/**
 * The simulated ringer (`sim`): rings nothing, remembers everything — the
 * state for `ctl status`, and a history of starts and stops with their
 * times for tests.
 */
import type { ToneSpec } from '../tones/tables.js';
import type { Ringer, RingerState } from './types.js';

export interface RingerEvent {
  state: RingerState;
  /** Cadence name (`us/ring`) when ringing starts. */
  cadence?: string;
  atMs: number;
}

export class SimRinger implements Ringer {
  readonly #now: () => number;
  readonly #history: RingerEvent[] = [];
  #cadence: ToneSpec | undefined;
  #closed = false;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  get state(): RingerState {
    return this.#cadence ? 'ringing' : 'idle';
  }

  get cadence(): ToneSpec | undefined {
    return this.#cadence;
  }

  /** Starts and stops so far (a copy). */
  get history(): RingerEvent[] {
    return this.#history.map((e) => ({ ...e }));
  }

  start(cadence: ToneSpec): void {
    if (this.#closed) return;
    this.#cadence = cadence;
    this.#history.push({ state: 'ringing', cadence: cadence.name, atMs: this.#now() });
  }

  stop(): void {
    if (!this.#cadence) return;
    this.#cadence = undefined;
    this.#history.push({ state: 'idle', atMs: this.#now() });
  }

  async close(): Promise<void> {
    this.stop();
    this.#closed = true;
  }
}
