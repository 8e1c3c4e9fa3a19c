/**
 * The keypad HAL: `openKeypad(spec)` picks the driver by name.
 *
 * - `sim`: pressed by code (`sim.ts`): `press(key)`, `type(digits)`.
 * - `hid`: a USB HID keypad through node-hid (`hid.ts`), keymap in `keymap.ts`,
 *   reports in `report.ts`, the node-hid seam in `hid-backend.ts`.
 *
 * The spec is shaped like the `hal.keypad` config section (`hal/` does not
 * import the config types): `{driver: 'sim'}` or
 * `{driver: 'hid', device?, keymap?}`.
 */
import type { HalLog } from '../log.js';
import { KeypadError } from './errors.js';
import { HidKeypad, parseDeviceSelector } from './hid.js';
import { nodeHidBackend } from './hid-backend.js';
import type { HidBackend } from './hid-backend.js';
import { SimKeypad } from './sim.js';
import type { Keypad, KeypadSpec, SimKeypadSpec, HidKeypadSpec } from './types.js';

export { KeypadError } from './errors.js';
export type { Keypad, KeypadEvents, KeypadSpec, SimKeypadSpec, HidKeypadSpec, KeyName, DialKey, FunctionKey, KeypadDeviceInfo, KeypadFault, KeypadStatus } from './types.js';
export { DIAL_KEYS, FUNCTION_KEYS, isKeyName, isDialKey } from './types.js';
export { SimKeypad } from './sim.js';
export { HidKeypad, parseDeviceSelector, pickDevice, isKeyboardLike, udevRuleFor, permissionError, formatIds } from './hid.js';
export type { DeviceSelector, HidKeypadOptions } from './hid.js';
export { nodeHidBackend } from './hid-backend.js';
export type { HidBackend, HidDeviceInfo, HidHandle } from './hid-backend.js';
export { buildKeymap, lookupKey, parseUsageKey, DEFAULT_KEYMAP_ENTRIES } from './keymap.js';
export type { Keymap } from './keymap.js';
export { parseBootReport, KeyReportDecoder, BOOT_REPORT_LENGTH } from './report.js';
export type { BootKeyboardReport, DecodedReport } from './report.js';

export interface OpenKeypadOptions {
  log?: HalLog;
  /** hid driver: the node-hid calls (default: real node-hid, loaded now). */
  hidBackend?: HidBackend;
  /** hid driver: time between scans while the keypad is absent, ms (default 1000). */
  retryMs?: number;
}

/**
 * Open the keypad a spec names. Throws `KeypadError`: `ERR_KEYPAD_DRIVER`
 * (unknown driver), `ERR_KEYPAD_OPTIONS` (bad device or keymap),
 * `ERR_KEYPAD_UNAVAILABLE` (node-hid cannot load). A hid keypad that is
 * absent or refused is not an error here: it is looked for every second and
 * reported through `connected`/`fault` events.
 */
export function openKeypad(spec: SimKeypadSpec, options?: OpenKeypadOptions): SimKeypad;
export function openKeypad(spec: HidKeypadSpec, options?: OpenKeypadOptions): HidKeypad;
export function openKeypad(spec: KeypadSpec, options?: OpenKeypadOptions): Keypad;
export function openKeypad(spec: KeypadSpec, options: OpenKeypadOptions = {}): Keypad {
  const driver = (spec as { driver?: unknown } | null)?.driver;
  switch (driver) {
    case 'sim':
      return new SimKeypad({ log: options.log });
    case 'hid': {
      const hid = spec as HidKeypadSpec;
      // Check the options before loading node-hid, so a config mistake is named first.
      parseDeviceSelector(hid.device);
      return new HidKeypad({
        device: hid.device,
        keymap: hid.keymap,
        backend: options.hidBackend ?? nodeHidBackend(),
        retryMs: options.retryMs,
        log: options.log,
      });
    }
    default:
      throw new KeypadError('ERR_KEYPAD_DRIVER', `keypad driver ${JSON.stringify(driver)}: unknown, expected "sim" or "hid"`);
  }
}
