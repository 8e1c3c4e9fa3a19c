/**
 * The 20 ms frame clock of the simulated drivers. A sound card delivers a
 * frame every 20 ms from its own crystal; here a timer stands in for it.
 *
 * `RealtimeFrameClock` schedules tick n at `start + n × period` on
 * `performance.now()`, each `setTimeout` aimed at the next due time, so
 * timer lateness does not accumulate the way `setInterval` (or a chain of
 * fixed 20 ms timeouts) lets it. When the event loop stalls, the missed
 * ticks run at once on waking, as a sound card hands over the frames its
 * buffer kept — up to `maxCatchUp` of them; beyond that the clock skips
 * ahead (the frames are gone, as after an overrun).
 *
 * `ManualFrameClock` ticks only when told, for tests on a fake clock.
 */
import { performance } from 'node:perf_hooks';
import { AudioError } from './errors.js';

export type TickCallback = (tickTimeMs: number) => void;

export interface FrameClock {
  /** Call `onTick` every `periodMs` with the tick's due time (`performance.now()` timebase). */
  start(periodMs: number, onTick: TickCallback): void;
  /** No more ticks. Harmless twice. */
  stop(): void;
}

export interface RealtimeFrameClockOptions {
  /** Ticks run in one go after a stall before the clock skips ahead (default 10, 200 ms of 20 ms frames). */
  maxCatchUp?: number;
}

export class RealtimeFrameClock implements FrameClock {
  readonly #maxCatchUp: number;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: RealtimeFrameClockOptions = {}) {
    this.#maxCatchUp = options.maxCatchUp ?? 10;
  }

  start(periodMs: number, onTick: TickCallback): void {
    if (this.#running) throw new AudioError('ERR_AUDIO_STATE', 'frame clock: already started');
    if (!(periodMs > 0)) throw new AudioError('ERR_AUDIO_OPTIONS', `frame clock: period ${periodMs} ms, expected > 0`);
    this.#running = true;
    let next = performance.now() + periodMs;
    const run = (): void => {
      this.#timer = undefined;
      if (!this.#running) return;
      const now = performance.now();
      let ran = 0;
      while (next <= now && this.#running) {
        if (ran === this.#maxCatchUp) {
          // Overrun: drop the frames the stall swallowed and resume from now.
          while (next <= now) next += periodMs;
          break;
        }
        const due = next;
        next += periodMs;
        ran++;
        onTick(due);
      }
      if (this.#running) this.#timer = setTimeout(run, Math.max(0, next - performance.now()));
    };
    this.#timer = setTimeout(run, periodMs);
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** A clock for tests: `tick(timeMs)` runs one tick at the given time. */
export class ManualFrameClock implements FrameClock {
  #onTick: TickCallback | undefined;

  start(_periodMs: number, onTick: TickCallback): void {
    if (this.#onTick) throw new AudioError('ERR_AUDIO_STATE', 'frame clock: already started');
    this.#onTick = onTick;
  }

  stop(): void {
    this.#onTick = undefined;
  }

  get running(): boolean {
    return this.#onTick !== undefined;
  }

  /** One tick at `timeMs`; nothing when stopped. */
  tick(timeMs: number): void {
    this.#onTick?.(timeMs);
  }
}
