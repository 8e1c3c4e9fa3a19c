/**
 * Hook switch drivers.
 *
 * `GpioHookSwitch` (`driver: gpio`): the switch on a GPIO input with
 * interrupts on both edges. A contact bounces for a few milliseconds when the
 * handset is lifted or put down, so every edge (re)starts a `debounceMs`
 * timer, and only when it runs out is the line read again and a change to
 * the other state reported — one event per real lift or replace. With
 * `activeLow` (the default: the switch pulls the line to ground when the
 * handset is lifted, the Pi's pull-up holds it high otherwise) level 0 is
 * off-hook.
 *
 * `SimHookSwitch` (`driver: sim`): moved by `lift()` and `replace()`.
 */
import { Emitter } from '../events.js';
import { silentLog } from '../log.js';
import type { HalLog } from '../log.js';
import { lineError } from './backend.js';
import type { GpioBackend, GpioLevel, GpioLine } from './backend.js';
import { GpioError } from './errors.js';
import type { HookEvents, HookState, HookSwitch } from './types.js';

abstract class HookBase implements HookSwitch {
  abstract readonly driver: 'sim' | 'gpio';
  protected readonly log: HalLog;
  protected readonly events: Emitter<HookEvents>;
  protected current: HookState;
  protected closed = false;

  constructor(initial: HookState, log: HalLog | undefined) {
    this.current = initial;
    this.log = log ?? silentLog;
    this.events = new Emitter((err, event) => this.log.error({ err, event }, 'hook listener failed'));
  }

  get state(): HookState {
    return this.current;
  }

  on<K extends keyof HookEvents>(event: K, listener: (...args: HookEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  off<K extends keyof HookEvents>(event: K, listener: (...args: HookEvents[K]) => void): void {
    this.events.off(event, listener);
  }

  /** Move to `state`; emits when it is a change. */
  protected moveTo(state: HookState): boolean {
    if (this.closed || state === this.current) return false;
    this.current = state;
    this.log.info({ state }, 'hook switch changed');
    this.events.emit(state);
    this.events.emit('change', state);
    return true;
  }

  abstract close(): Promise<void>;
}

export class SimHookSwitch extends HookBase {
  readonly driver = 'sim' as const;

  constructor(options: { log?: HalLog; initial?: HookState } = {}) {
    super(options.initial ?? 'on-hook', options.log);
  }

  /** Lift the handset; false when it already was. */
  lift(): boolean {
    return this.moveTo('off-hook');
  }

  /** Put the handset down; false when it already was. */
  replace(): boolean {
    return this.moveTo('on-hook');
  }

  set(state: HookState): boolean {
    return this.moveTo(state);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.events.removeAll();
  }
}

export interface GpioHookOptions {
  /** BCM number (for messages). */
  pin: number;
  /** sysfs number of the line. */
  gpio: number;
  activeLow: boolean;
  debounceMs: number;
  backend: GpioBackend;
  log?: HalLog;
}

export class GpioHookSwitch extends HookBase {
  readonly driver = 'gpio' as const;
  readonly #line: GpioLine;
  readonly #activeLow: boolean;
  readonly #debounceMs: number;
  readonly #what: string;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #watchErrors = 0;

  /** Opens the line at once and reads the state; throws `GpioError` (`ERR_GPIO_ACCESS`, `_BUSY`, `_IO`). */
  constructor(options: GpioHookOptions) {
    checkDebounce(options.debounceMs);
    super('on-hook', options.log);
    this.#activeLow = options.activeLow;
    this.#debounceMs = options.debounceMs;
    this.#what = `hook switch GPIO ${options.pin} (sysfs ${options.gpio})`;
    try {
      this.#line = options.backend.input(options.gpio);
    } catch (err) {
      throw lineError(this.#what, err);
    }
    try {
      this.current = levelToState(this.#line.read(), this.#activeLow);
      this.#line.watch((err, value) => this.#onEdge(err, value));
    } catch (err) {
      closeQuietly(this.#line);
      throw lineError(this.#what, err);
    }
    this.log.info({ pin: options.pin, gpio: options.gpio, state: this.current }, 'hook switch ready');
  }

  #onEdge(err: Error | null | undefined, level: GpioLevel): void {
    if (this.closed) return;
    if (err) {
      if (this.#watchErrors++ === 0) this.log.warn({ err, line: this.#what }, 'hook switch interrupt failed');
      return;
    }
    if (this.#debounceMs === 0) {
      this.moveTo(levelToState(level, this.#activeLow));
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#settle(), this.#debounceMs);
  }

  /** The line has been quiet for debounceMs: read it and report a change. */
  #settle(): void {
    this.#timer = undefined;
    if (this.closed) return;
    let level: GpioLevel;
    try {
      level = this.#line.read();
    } catch (err) {
      this.log.warn({ err: lineError(this.#what, err) }, 'hook switch read failed');
      return;
    }
    this.moveTo(levelToState(level, this.#activeLow));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.events.removeAll();
    try {
      this.#line.close();
    } catch (err) {
      this.log.warn({ err: lineError(this.#what, err) }, 'hook switch release failed');
    }
  }
}

/** The state a level means: with `activeLow`, 0 is off-hook. */
export function levelToState(level: GpioLevel, activeLow: boolean): HookState {
  return (level === 0) === activeLow ? 'off-hook' : 'on-hook';
}

function checkDebounce(ms: number): void {
  if (!Number.isInteger(ms) || ms < 0 || ms > 1000) throw new GpioError('ERR_GPIO_OPTIONS', `hook switch: debounceMs ${ms}, expected an integer 0..1000`);
}

function closeQuietly(line: GpioLine): void {
  try {
    line.close();
  } catch {
    // Already failing: the first error is the one reported.
    return;
  }
}
