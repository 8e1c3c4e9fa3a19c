/**
 * The GPIO HAL: the hook switch and the LEDs, drivers by name.
 *
 * - `openHookSwitch(spec)`: `sim` (`lift()`/`replace()`) or `gpio` (an input
 *   with both-edge interrupts and debounce, `hook.ts`).
 * - `openLeds(spec)`: `sim` (states only, `lit(name)`) or `gpio` (one output
 *   per LED, `leds.ts`).
 *
 * Specs are shaped like the `hal.hook` and `hal.leds` config sections. Pins
 * are BCM numbers; the gpio drivers map them to sysfs numbers through the
 * Pi's GPIO chip found under `sysfsRoot` (sysfs.ts) and drive the lines with
 * onoff (backend.ts). Opening a gpio device touches the hardware at once and
 * throws `GpioError` when it cannot: no sysfs GPIO (`ERR_GPIO_SYSFS`), no Pi
 * chip (`ERR_GPIO_CHIP`), a pin the chip lacks (`ERR_GPIO_PIN`), permission
 * (`ERR_GPIO_ACCESS`), a line in use (`ERR_GPIO_BUSY`).
 */
import type { HalLog } from '../log.js';
import { onoffBackend } from './backend.js';
import type { GpioBackend } from './backend.js';
import { GpioError } from './errors.js';
import { GpioHookSwitch, SimHookSwitch } from './hook.js';
import { GpioLeds, SimLeds } from './leds.js';
import { DEFAULT_SYSFS_GPIO_ROOT, GpioNumbering, PI_GPIO_CHIP_LABELS } from './sysfs.js';
import type { HookSpec, HookSwitch, Leds, LedsSpec } from './types.js';

export { GpioError } from './errors.js';
export type { HookSwitch, HookEvents, HookState, HookSpec, Leds, LedsEvents, LedState, LedsSpec } from './types.js';
export { HOOK_STATES, LED_STATES, isLedState } from './types.js';
export { SimHookSwitch, GpioHookSwitch, levelToState } from './hook.js';
export type { GpioHookOptions } from './hook.js';
export { SimLeds, GpioLeds, BLINK_TICK_MS, litAt } from './leds.js';
export type { GpioLedsOptions } from './leds.js';
export { listGpioChips, findGpioChip, sysfsGpioNumber, GpioNumbering, DEFAULT_SYSFS_GPIO_ROOT, PI_GPIO_CHIP_LABELS } from './sysfs.js';
export type { GpioChipInfo } from './sysfs.js';
export { onoffBackend } from './backend.js';
export type { GpioBackend, GpioLine, GpioLevel } from './backend.js';

export interface OpenGpioOptions {
  log?: HalLog;
  /** Where the gpiochips are read (default `/sys/class/gpio`). The onoff backend works only there. */
  sysfsRoot?: string;
  /** Chip labels to look for, in order (default: Pi 5, Pi 4, Pi 1-3). */
  chipLabels?: readonly string[];
  /** The line driver (default: onoff). */
  backend?: GpioBackend;
}

function gpioSetup(options: OpenGpioOptions): { numbering: GpioNumbering; backend: GpioBackend } {
  const root = options.sysfsRoot ?? DEFAULT_SYSFS_GPIO_ROOT;
  if (options.backend === undefined && root !== DEFAULT_SYSFS_GPIO_ROOT) {
    throw new GpioError('ERR_GPIO_OPTIONS', `gpio: sysfsRoot ${root} with the onoff backend, which only works under ${DEFAULT_SYSFS_GPIO_ROOT}`);
  }
  const numbering = new GpioNumbering(root, options.chipLabels ?? PI_GPIO_CHIP_LABELS);
  return { numbering, backend: options.backend ?? onoffBackend() };
}

function unusable(): never {
  throw new GpioError('ERR_GPIO_OPTIONS', 'gpio: no line configured');
}

function checkPin(what: string, pin: unknown): number {
  if (typeof pin !== 'number' || !Number.isInteger(pin) || pin < 0 || pin > 1023) {
    throw new GpioError('ERR_GPIO_OPTIONS', `${what}: pin ${JSON.stringify(pin)}, expected a BCM GPIO number`);
  }
  return pin;
}

/** Open the hook switch a spec names. Throws `GpioError` (see above; `ERR_GPIO_DRIVER` for an unknown driver). */
export function openHookSwitch(spec: HookSpec & { driver: 'sim' }, options?: OpenGpioOptions): SimHookSwitch;
export function openHookSwitch(spec: HookSpec, options?: OpenGpioOptions): HookSwitch;
export function openHookSwitch(spec: HookSpec, options: OpenGpioOptions = {}): HookSwitch {
  const driver = (spec as { driver?: unknown } | null)?.driver;
  switch (driver) {
    case 'sim':
      return new SimHookSwitch({ log: options.log });
    case 'gpio': {
      const pin = checkPin('hook switch', spec.pin);
      const { numbering, backend } = gpioSetup(options);
      return new GpioHookSwitch({
        pin,
        gpio: numbering.sysfs(pin),
        activeLow: spec.activeLow ?? true,
        debounceMs: spec.debounceMs ?? 30,
        backend,
        log: options.log,
      });
    }
    default:
      throw new GpioError('ERR_GPIO_DRIVER', `hook switch driver ${JSON.stringify(driver)}: unknown, expected "sim" or "gpio"`);
  }
}

/** Open the LEDs a spec names. Throws `GpioError` (see above; `ERR_GPIO_DRIVER` for an unknown driver). */
export function openLeds(spec: LedsSpec & { driver: 'sim' }, options?: OpenGpioOptions): SimLeds;
export function openLeds(spec: LedsSpec, options?: OpenGpioOptions): Leds;
export function openLeds(spec: LedsSpec, options: OpenGpioOptions = {}): Leds {
  const driver = (spec as { driver?: unknown } | null)?.driver;
  switch (driver) {
    case 'sim':
      return new SimLeds({ names: Object.keys(spec.pins ?? {}), log: options.log });
    case 'gpio': {
      const entries = Object.entries(spec.pins ?? {}).map(([name, pin]) => [name, checkPin(`LED ${JSON.stringify(name)}`, pin)] as const);
      if (entries.length === 0) {
        // No LED fitted: nothing to open, and a phone without LEDs needs no sysfs GPIO.
        return new GpioLeds({ pins: {}, backend: options.backend ?? { input: unusable, output: unusable }, log: options.log });
      }
      const { numbering, backend } = gpioSetup(options);
      const pins = Object.fromEntries(entries.map(([name, pin]) => [name, { pin, gpio: numbering.sysfs(pin) }]));
      return new GpioLeds({ pins, backend, log: options.log });
    }
    default:
      throw new GpioError('ERR_GPIO_DRIVER', `LED driver ${JSON.stringify(driver)}: unknown, expected "sim" or "gpio"`);
  }
}
