/**
 * The keypad HAL's typed errors (STYLE.md 9), shaped like `AudioError`: a
 * stable `code`, `name` the class name, `cause` when wrapping.
 *
 * Codes: `ERR_KEYPAD_OPTIONS` (a spec or keymap out of range),
 * `ERR_KEYPAD_DRIVER` (unknown driver),
 * `ERR_KEYPAD_UNAVAILABLE` (node-hid cannot be loaded: missing shared library),
 * `ERR_KEYPAD_REPORT` (a HID report that is not a boot-protocol keyboard report),
 * `ERR_KEYPAD_KEY` (the sim driver was asked to press something that is not a key),
 * `ERR_KEYPAD_PERMISSION` (the hidraw node cannot be opened: permissions; the message carries the udev rule),
 * `ERR_KEYPAD_OPEN` (the device cannot be opened for another reason),
 * `ERR_KEYPAD_SCAN` (listing HID devices failed).
 *
 * The last three are never thrown out of a driver: they are faults reported
 * through the keypad's `fault` event and `status()` while it keeps retrying.
 */
export class KeypadError extends Error {
  readonly code: string;

  constructor(code: `ERR_KEYPAD_${string}`, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
