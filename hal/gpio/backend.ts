/**
 * The seam between the gpio drivers and onoff: one GPIO line by its sysfs
 * number, as an input with both-edge interrupts or as an output. A test
 * fakes it; `onoffBackend()` is the real one.
 *
 * onoff always works under `/sys/class/gpio` (its path is fixed): it exports
 * the line, writes `direction`, `edge` and `active_low`, keeps `value` open,
 * and watches edges with epoll (EPOLLPRI on `value`). The drivers keep
 * `active_low` at 0 and apply `activeLow` themselves, and debounce in their
 * own timers (onoff's `debounceTimeout` is not used).
 *
 * onoff is loaded when the first gpio device opens, so the sim drivers run
 * anywhere.
 */
import { createRequire } from 'node:module';
import { GpioError } from './errors.js';

export type GpioLevel = 0 | 1;

export interface GpioLine {
  read(): GpioLevel;
  write(level: GpioLevel): void;
  /** Call `listener` on every edge (after the kernel's interrupt), with the level read then. */
  watch(listener: (err: Error | null | undefined, level: GpioLevel) => void): void;
  /** Stop watching, close and unexport. */
  close(): void;
}

export interface GpioBackend {
  /** An input with interrupts on both edges. `gpio` is the sysfs number. */
  input(gpio: number): GpioLine;
  /** An output, driven to `initial` as it is set up. */
  output(gpio: number, initial: GpioLevel): GpioLine;
}

interface OnoffGpio {
  readSync(): GpioLevel;
  writeSync(value: GpioLevel): void;
  watch(callback: (err: Error | null | undefined, value: GpioLevel) => void): void;
  unwatchAll(): void;
  unexport(): void;
}

interface OnoffModule {
  Gpio: new (gpio: number, direction: 'in' | 'out' | 'high' | 'low', edge?: 'none' | 'both', options?: { activeLow?: boolean }) => OnoffGpio;
}

let loaded: OnoffModule | undefined;

function loadOnoff(): OnoffModule {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('onoff') as OnoffModule;
    return loaded;
  } catch (err) {
    throw new GpioError(
      'ERR_GPIO_UNAVAILABLE',
      `gpio: onoff cannot be loaded (${(err as Error).message}); its epoll binding must be built at install time (package.json allowScripts)`,
      { cause: err },
    );
  }
}

function wrap(gpio: OnoffGpio): GpioLine {
  return {
    read: () => gpio.readSync(),
    write: (level) => gpio.writeSync(level),
    watch: (listener) => gpio.watch(listener),
    close: () => gpio.unexport(),
  };
}

/** The real backend: onoff on `/sys/class/gpio`. Throws `ERR_GPIO_UNAVAILABLE` when onoff cannot load. */
export function onoffBackend(): GpioBackend {
  const { Gpio } = loadOnoff();
  return {
    input: (gpio) => wrap(new Gpio(gpio, 'in', 'both', { activeLow: false })),
    output: (gpio, initial) => wrap(new Gpio(gpio, initial === 1 ? 'high' : 'low', 'none', { activeLow: false })),
  };
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A typed error for a failure opening or using line `what` (`hook switch
 * GPIO 17 (sysfs 529)`): permission, busy, or other.
 */
export function lineError(what: string, err: unknown): GpioError {
  const errno = errnoOf(err);
  const message = (err as Error)?.message ?? String(err);
  if (errno === 'EACCES' || errno === 'EPERM') {
    return new GpioError(
      'ERR_GPIO_ACCESS',
      `${what}: permission denied (${message}); run partyline as a user in the gpio group (Raspberry Pi OS gives /sys/class/gpio to group gpio) or as root`,
      { cause: err },
    );
  }
  if (errno === 'EBUSY') {
    return new GpioError('ERR_GPIO_BUSY', `${what}: the line is in use (${message}); a kernel driver (a dtoverlay in config.txt) or another program holds it`, { cause: err });
  }
  return new GpioError('ERR_GPIO_IO', `${what}: ${message}`, { cause: err });
}
