/**
 * The hook switch and the LEDs of a desk phone.
 *
 * `HookSwitch`: whether the handset is lifted. `state` is the current
 * (debounced) state; events `off-hook` and `on-hook` fire once per change,
 * and `change` (state) with either. The gpio driver reads a GPIO input with
 * both-edge interrupts and reports a change only after the line has been
 * stable for `debounceMs`; the sim driver is moved by `lift()`/`replace()`
 * (the control API's `ctl hook off|on`).
 *
 * `Leds`: named LEDs (`power`, `call`, `message`, … — the names are the
 * configuration's), each `off`, `on`, `blink-slow` (500 ms on, 500 ms off)
 * or `blink-fast` (125 ms on, 125 ms off). Blinking is the driver's job:
 * set a state once and the LED keeps it; all blinking LEDs blink in step.
 * `state()` is the map name → state for `ctl status --json`; `change`
 * (name, state) fires when an LED's state is set to a new one.
 *
 * Both: `on(event, listener)` returns a function that removes the listener;
 * a listener that throws is logged and cannot break the device; `close()`
 * releases the lines and stops every timer (harmless twice).
 */

export const HOOK_STATES = ['on-hook', 'off-hook'] as const;
export type HookState = (typeof HOOK_STATES)[number];

export type HookEvents = {
  'off-hook': [];
  'on-hook': [];
  change: [state: HookState];
};

export interface HookSwitch {
  readonly driver: 'sim' | 'gpio';
  /** The debounced state now. */
  readonly state: HookState;
  on<K extends keyof HookEvents>(event: K, listener: (...args: HookEvents[K]) => void): () => void;
  off<K extends keyof HookEvents>(event: K, listener: (...args: HookEvents[K]) => void): void;
  close(): Promise<void>;
}

export const LED_STATES = ['off', 'on', 'blink-slow', 'blink-fast'] as const;
export type LedState = (typeof LED_STATES)[number];

export function isLedState(value: unknown): value is LedState {
  return typeof value === 'string' && (LED_STATES as readonly string[]).includes(value);
}

export type LedsEvents = {
  change: [name: string, state: LedState];
};

export interface Leds {
  readonly driver: 'sim' | 'gpio';
  /** The LEDs there are (the sim driver adds one on its first `set`). */
  readonly names: readonly string[];
  /**
   * Put an LED in a state. Returns false (and does nothing) for an LED this
   * phone does not have (gpio: no pin configured for it). Throws
   * `ERR_GPIO_LED` for a state that is not one of `LED_STATES`.
   */
  set(name: string, state: LedState): boolean;
  get(name: string): LedState | undefined;
  /** Name → state of every LED, for status. */
  state(): Record<string, LedState>;
  on<K extends keyof LedsEvents>(event: K, listener: (...args: LedsEvents[K]) => void): () => void;
  off<K extends keyof LedsEvents>(event: K, listener: (...args: LedsEvents[K]) => void): void;
  /** Turn every LED off, stop blinking and release the lines. */
  close(): Promise<void>;
}

/** Hook switch spec, shaped like the `hal.hook` config section. */
export interface HookSpec {
  driver: 'sim' | 'gpio';
  /** gpio: BCM line of the hook switch. */
  pin?: number;
  /** gpio: true when the line reads 0 with the handset lifted (default true). */
  activeLow?: boolean;
  /** gpio: the line must be stable this long before a change counts, ms (default 30). */
  debounceMs?: number;
}

/** LEDs spec, shaped like the `hal.leds` config section. */
export interface LedsSpec {
  driver: 'sim' | 'gpio';
  /** LED name → BCM line (gpio); for sim the names only, LEDs it starts with. */
  pins?: Record<string, number>;
}
