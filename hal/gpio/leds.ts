/**
 * LED drivers. `LedBank` holds the states and does the blinking for both:
 * one 125 ms ticker runs while any LED blinks (none otherwise), `blink-fast`
 * toggles on every tick (125 ms on, 125 ms off) and `blink-slow` every fourth
 * (500 ms on, 500 ms off); all LEDs share the ticker's phase, so they blink
 * in step, and a newly blinking LED lights at once unless the phase is dark.
 *
 * - `GpioLeds` (`driver: gpio`): one GPIO output per configured LED, driven
 *   high for lit. A write that fails is logged (once per LED), not thrown:
 *   the ticker must go on for the other LEDs.
 * - `SimLeds` (`driver: sim`): no hardware; `lit(name)` says whether an LED
 *   is lit at this moment (the demo's terminal shows it). An LED comes into
 *   being on its first `set`.
 */
import { Emitter } from '../events.js';
import { silentLog } from '../log.js';
import type { HalLog } from '../log.js';
import { lineError } from './backend.js';
import type { GpioBackend, GpioLine } from './backend.js';
import { GpioError } from './errors.js';
import { isLedState, LED_STATES } from './types.js';
import type { Leds, LedsEvents, LedState } from './types.js';

export const BLINK_TICK_MS = 125;
/** Ticks per half period. */
const HALF_PERIOD_TICKS: Record<'blink-slow' | 'blink-fast', number> = { 'blink-slow': 4, 'blink-fast': 1 };

const LED_NAME = /^[a-z][a-z0-9-]*$/;

export function checkLedName(name: string): void {
  if (typeof name !== 'string' || !LED_NAME.test(name)) {
    throw new GpioError('ERR_GPIO_OPTIONS', `LED name ${JSON.stringify(name)}: expected lower case letters, digits and "-", e.g. "call"`);
  }
}

/** Is an LED in `state` lit at ticker phase `tick`? */
export function litAt(state: LedState, tick: number): boolean {
  if (state === 'on') return true;
  if (state === 'off') return false;
  return Math.floor(tick / HALF_PERIOD_TICKS[state]) % 2 === 0;
}

abstract class LedBank implements Leds {
  abstract readonly driver: 'sim' | 'gpio';
  protected readonly log: HalLog;
  readonly #events: Emitter<LedsEvents>;
  readonly #states = new Map<string, LedState>();
  readonly #lit = new Map<string, boolean>();
  #ticker: ReturnType<typeof setInterval> | undefined;
  #tick = 0;
  protected closed = false;

  constructor(names: readonly string[], log: HalLog | undefined) {
    this.log = log ?? silentLog;
    this.#events = new Emitter((err, event) => this.log.error({ err, event }, 'LED listener failed'));
    for (const name of names) {
      this.#states.set(name, 'off');
      this.#lit.set(name, false);
    }
  }

  /** Light or darken one LED in hardware. Must not throw. */
  protected abstract drive(name: string, lit: boolean): void;

  /** Whether the LED has a place to be set (sim: creates it). */
  protected abstract accepts(name: string): boolean;

  get names(): readonly string[] {
    return [...this.#states.keys()];
  }

  set(name: string, state: LedState): boolean {
    if (!isLedState(state)) throw new GpioError('ERR_GPIO_LED', `LED ${JSON.stringify(name)}: state ${JSON.stringify(state)}, expected ${LED_STATES.join(', ')}`);
    if (this.closed || !this.accepts(name)) return false;
    const before = this.#states.get(name);
    this.#states.set(name, state);
    if (state === 'blink-slow' || state === 'blink-fast') this.#startTicker();
    this.#apply(name);
    if (!this.#anyBlinking()) this.#stopTicker();
    if (before !== state) this.#events.emit('change', name, state);
    return true;
  }

  get(name: string): LedState | undefined {
    return this.#states.get(name);
  }

  state(): Record<string, LedState> {
    return Object.fromEntries(this.#states);
  }

  /** Whether the LED is lit at this moment. */
  lit(name: string): boolean {
    return this.#lit.get(name) ?? false;
  }

  on<K extends keyof LedsEvents>(event: K, listener: (...args: LedsEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  off<K extends keyof LedsEvents>(event: K, listener: (...args: LedsEvents[K]) => void): void {
    this.#events.off(event, listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.#stopTicker();
    for (const name of this.#states.keys()) {
      this.#states.set(name, 'off');
      this.#apply(name);
    }
    this.closed = true;
    this.#events.removeAll();
    this.release();
  }

  /** Release the hardware after every LED is dark. */
  protected abstract release(): void;

  protected addLed(name: string): void {
    if (this.#states.has(name)) return;
    this.#states.set(name, 'off');
    this.#lit.set(name, false);
  }

  #apply(name: string): void {
    const lit = litAt(this.#states.get(name) ?? 'off', this.#tick);
    if (this.#lit.get(name) === lit) return;
    this.#lit.set(name, lit);
    this.drive(name, lit);
  }

  #anyBlinking(): boolean {
    for (const state of this.#states.values()) if (state === 'blink-slow' || state === 'blink-fast') return true;
    return false;
  }

  #startTicker(): void {
    if (this.#ticker !== undefined) return;
    this.#tick = 0;
    this.#ticker = setInterval(() => {
      this.#tick = (this.#tick + 1) % 8;
      for (const name of this.#states.keys()) this.#apply(name);
    }, BLINK_TICK_MS);
  }

  #stopTicker(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#tick = 0;
  }
}

export class SimLeds extends LedBank {
  readonly driver = 'sim' as const;

  /** `names`: LEDs it starts with (all off); more come with `set`. */
  constructor(options: { names?: readonly string[]; log?: HalLog } = {}) {
    const names = options.names ?? [];
    names.forEach(checkLedName);
    super(names, options.log);
  }

  protected accepts(name: string): boolean {
    checkLedName(name);
    this.addLed(name);
    return true;
  }

  protected drive(): void {}

  protected release(): void {}
}

export interface GpioLedsOptions {
  /** LED name → BCM number (for messages) and sysfs number. */
  pins: Record<string, { pin: number; gpio: number }>;
  backend: GpioBackend;
  log?: HalLog;
}

export class GpioLeds extends LedBank {
  readonly driver = 'gpio' as const;
  readonly #lines = new Map<string, { line: GpioLine; what: string; failed: boolean }>();
  readonly #unknownLogged = new Set<string>();

  /** Opens every line, driven low; throws `GpioError` (and releases what it opened) when one fails. */
  constructor(options: GpioLedsOptions) {
    const entries = Object.entries(options.pins);
    entries.forEach(([name]) => checkLedName(name));
    const byPin = new Map<number, string>();
    for (const [name, { pin }] of entries) {
      const other = byPin.get(pin);
      if (other !== undefined) throw new GpioError('ERR_GPIO_OPTIONS', `LEDs ${JSON.stringify(other)} and ${JSON.stringify(name)}: both on GPIO ${pin}`);
      byPin.set(pin, name);
    }
    super(entries.map(([name]) => name), options.log);
    try {
      for (const [name, { pin, gpio }] of entries) {
        const what = `LED "${name}" GPIO ${pin} (sysfs ${gpio})`;
        try {
          this.#lines.set(name, { line: options.backend.output(gpio, 0), what, failed: false });
        } catch (err) {
          throw lineError(what, err);
        }
      }
    } catch (err) {
      this.release();
      throw err;
    }
  }

  protected accepts(name: string): boolean {
    if (this.#lines.has(name)) return true;
    if (!this.#unknownLogged.has(name)) {
      this.#unknownLogged.add(name);
      this.log.debug({ led: name }, 'LED not fitted');
    }
    return false;
  }

  protected drive(name: string, lit: boolean): void {
    const entry = this.#lines.get(name);
    if (!entry) return;
    try {
      entry.line.write(lit ? 1 : 0);
      entry.failed = false;
    } catch (err) {
      if (!entry.failed) this.log.warn({ err: lineError(entry.what, err) }, 'LED write failed');
      entry.failed = true;
    }
  }

  protected release(): void {
    for (const { line, what } of this.#lines.values()) {
      try {
        line.close();
      } catch (err) {
        this.log.warn({ err: lineError(what, err) }, 'LED release failed');
      }
    }
    this.#lines.clear();
  }
}
