/**
 * Boot-protocol keyboard reports (HID 1.11 Appendix B.1), as a USB keypad
 * sends them on its keyboard interface and hidraw hands them over:
 *
 *   byte 0     modifiers (bit 0 LCtrl, 1 LShift, 2 LAlt, 3 LGUI, 4 RCtrl, 5 RShift, 6 RAlt, 7 RGUI)
 *   byte 1     reserved
 *   bytes 2-7  usages of the keys held now (Keyboard page 0x07), 0 = none
 *
 * A report says which keys are down, not which changed: a key-down is a usage
 * that appears in a report and was not in the previous one. When more keys
 * are held than fit, every slot is 0x01 (ErrorRollOver); such a report (and
 * 0x02 POSTFail, 0x03 ErrorUndefined) says nothing about which keys are held
 * and is skipped, keeping the previous state, so no key is reported twice.
 *
 * Some devices number their reports: a 9-byte report whose first byte is a
 * report ID (1..255) is read from byte 1 on.
 */
import { KeypadError } from './errors.js';
import { lookupKey } from './keymap.js';
import type { Keymap } from './keymap.js';
import type { KeyName } from './types.js';

export const BOOT_REPORT_LENGTH = 8;
const SHIFT_BITS = 0x02 | 0x20;
const ERROR_USAGES = new Set([0x01, 0x02, 0x03]);

export interface BootKeyboardReport {
  modifiers: number;
  /** Usages of the keys held, in report order, zeros and modifier usages (0xe0-0xe7) left out. */
  usages: number[];
  /** True for an ErrorRollOver/POSTFail/ErrorUndefined report (too many keys held). */
  error: boolean;
}

/** Parse one report. Throws `ERR_KEYPAD_REPORT` for a length that is not 8 (or 9 with a report ID). */
export function parseBootReport(data: Uint8Array): BootKeyboardReport {
  let bytes = data;
  if (bytes.length === BOOT_REPORT_LENGTH + 1 && bytes[0] !== 0) bytes = bytes.subarray(1);
  if (bytes.length !== BOOT_REPORT_LENGTH) {
    throw new KeypadError('ERR_KEYPAD_REPORT', `HID report: ${data.length} bytes, expected a boot-protocol keyboard report of 8 bytes (or 9 with a report ID)`);
  }
  const slots = [...bytes.subarray(2)];
  const error = slots.some((u) => ERROR_USAGES.has(u));
  const usages = error ? [] : slots.filter((u) => u !== 0 && !(u >= 0xe0 && u <= 0xe7));
  return { modifiers: bytes[0] ?? 0, usages, error };
}

export interface DecodedReport {
  /** Keys pressed by this report, in report order. */
  keys: KeyName[];
  /** Usages pressed by this report that the keymap does not name. */
  unmapped: number[];
}

/**
 * Turns a device's reports into key presses: one per key-down, with the
 * Shift state of that report. Keeps the previous report's usages.
 */
export class KeyReportDecoder {
  readonly #keymap: Keymap;
  #held = new Set<number>();

  constructor(keymap: Keymap) {
    this.#keymap = keymap;
  }

  /** Decode one report. Throws `ERR_KEYPAD_REPORT` (state unchanged) for a malformed one. */
  decode(data: Uint8Array): DecodedReport {
    const report = parseBootReport(data);
    const out: DecodedReport = { keys: [], unmapped: [] };
    if (report.error) return out;
    const shift = (report.modifiers & SHIFT_BITS) !== 0;
    for (const usage of new Set(report.usages)) {
      if (this.#held.has(usage)) continue;
      const key = lookupKey(this.#keymap, usage, shift);
      if (key === undefined) out.unmapped.push(usage);
      else out.keys.push(key);
    }
    this.#held = new Set(report.usages);
    return out;
  }

  /** Forget held keys (the device went away). */
  reset(): void {
    this.#held.clear();
  }
}
