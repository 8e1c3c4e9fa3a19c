/**
 * The keypad of a desk phone, as the phone application sees it: a stream of
 * key presses, one event per press (key-down; releases and auto-repeat are not
 * reported), and whether the keypad is there at all.
 *
 * Keys are named by strings: the dial keys `0`-`9`, `*`, `#`; the function
 * keys in `FUNCTION_KEYS`; and any other lower-case name a keymap gives
 * (`[a-z][a-z0-9-]*`, e.g. `line-2`), passed through untouched.
 *
 * Events (`on(event, listener)` returns a function that removes the listener;
 * a listener that throws is logged and cannot break the keypad):
 * - `key` (key): one press.
 * - `connected` (device): the keypad is there and read (also once after
 *   opening when it is found at once; the sim keypad is connected from the
 *   start and emits nothing then).
 * - `disconnected` (reason): it went away (unplugged, read error); the
 *   driver keeps looking for it and emits `connected` when it is back.
 * - `fault` (error): something an operator must fix, e.g. `ERR_KEYPAD_PERMISSION`
 *   with the udev rule in its message. Reported once per distinct fault,
 *   never thrown; `status().fault` holds the latest until the keypad connects.
 *
 * Drivers are chosen by name (`KeypadSpec.driver`): `sim` (pressed through
 * `press`/`type`, the control API's `ctl keys`) and `hid` (a USB HID keypad
 * through node-hid).
 */

export const DIAL_KEYS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'] as const;
export const FUNCTION_KEYS = ['redial', 'hold', 'mute', 'volume-up', 'volume-down', 'speaker', 'conference'] as const;

export type DialKey = (typeof DIAL_KEYS)[number];
export type FunctionKey = (typeof FUNCTION_KEYS)[number];
/** A dial key, a function key, or another name a keymap gives (`[a-z][a-z0-9-]*`). */
export type KeyName = DialKey | FunctionKey | (string & {});

const KEY_NAME = /^(?:[0-9*#]|[a-z][a-z0-9-]{0,31})$/;

/** True for `0`-`9`, `*`, `#` and lower-case names (`[a-z][a-z0-9-]*`, at most 32 characters). */
export function isKeyName(value: unknown): value is KeyName {
  return typeof value === 'string' && KEY_NAME.test(value);
}

export function isDialKey(key: string): key is DialKey {
  return (DIAL_KEYS as readonly string[]).includes(key);
}

/** What the keypad knows of the device it reads. */
export interface KeypadDeviceInfo {
  /** hidraw path (`/dev/hidraw0`) or `sim`. */
  path: string;
  vendorId?: number;
  productId?: number;
  product?: string;
  manufacturer?: string;
}

/** A fault an operator must fix (see `KeypadError` codes). */
export interface KeypadFault {
  code: string;
  message: string;
}

export interface KeypadStatus {
  driver: 'sim' | 'hid';
  connected: boolean;
  device?: KeypadDeviceInfo;
  fault?: KeypadFault;
}

export type KeypadEvents = {
  key: [key: KeyName];
  connected: [device: KeypadDeviceInfo];
  disconnected: [reason: string];
  fault: [error: KeypadFault];
};

export interface Keypad {
  readonly driver: 'sim' | 'hid';
  /** True while the keypad is there and read. */
  readonly connected: boolean;
  on<K extends keyof KeypadEvents>(event: K, listener: (...args: KeypadEvents[K]) => void): () => void;
  off<K extends keyof KeypadEvents>(event: K, listener: (...args: KeypadEvents[K]) => void): void;
  status(): KeypadStatus;
  /** Stop reading and release the device; no events afterwards. Harmless twice. */
  close(): Promise<void>;
}

/** The simulated keypad (`hal.keypad.driver: sim`). */
export interface SimKeypadSpec {
  driver: 'sim';
}

/** A USB HID keypad (`hal.keypad.driver: hid`). Shaped like the `hal.keypad` config section. */
export interface HidKeypadSpec {
  driver: 'hid';
  /** hidraw path (`/dev/hidraw0`) or `vendorId:productId` in hex (`05a4:9759`); unset = the first keyboard-like HID device. */
  device?: string;
  /**
   * Changes to the default keymap: HID usage on the keyboard page (0x07) as
   * `0x59` or `89`, optionally `shift+0x20` for the usage with Shift held, to
   * a key name; `none` removes a default mapping.
   */
  keymap?: Record<string, string>;
}

export type KeypadSpec = SimKeypadSpec | HidKeypadSpec;
