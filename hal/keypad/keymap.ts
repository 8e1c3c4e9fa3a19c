/**
 * Keymaps: HID usages on the Keyboard/Keypad page (0x07, HID Usage Tables
 * 1.4 §10) to key names. A boot-protocol keyboard report carries these usages
 * (report.ts); the keymap says what each one means on a phone.
 *
 * `DEFAULT_KEYMAP` fits the common 17-22 key USB numeric keypads and also a
 * full keyboard's digit row and F-keys:
 *
 * | usage | key on the keypad | phone key |
 * |---|---|---|
 * | 0x59-0x61, 0x62 | Keypad 1-9, 0 | `1`-`9`, `0` |
 * | 0x1e-0x26, 0x27 | 1-9, 0 (keyboard row) | `1`-`9`, `0` |
 * | 0x55 | Keypad * | `*` |
 * | 0xcc | Keypad # (few keypads have it) | `#` |
 * | shift+0x20, shift+0x25 | Shift+3 (#), Shift+8 (*) | `#`, `*` |
 * | 0x58, 0x28 | Keypad Enter, Enter | `#` (dial now) |
 * | 0x57, 0x56 | Keypad +, Keypad - | `volume-up`, `volume-down` |
 * | 0x54 | Keypad / | `redial` |
 * | 0x63 | Keypad . (Del) | `hold` |
 * | 0x2a | Backspace | `mute` |
 * | 0x53 | Num Lock | `speaker` |
 * | 0x2b | Tab | `conference` |
 * | 0x3a-0x40 | F1-F7 | `redial`, `hold`, `mute`, `volume-up`, `volume-down`, `speaker`, `conference` |
 *
 * Config (`hal.keypad.keymap`) changes entries: `"0x63": conference`,
 * `"shift+0x20": "#"`, `"99": hold` (decimal), `"0x53": none` (unmapped).
 */
import { KeypadError } from './errors.js';
import { isKeyName } from './types.js';
import type { KeyName } from './types.js';

/** Usage → key name, with the usages seen while Shift is held looked up in `shifted` first. */
export interface Keymap {
  readonly plain: ReadonlyMap<number, KeyName>;
  readonly shifted: ReadonlyMap<number, KeyName>;
}

const DIGITS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'];

function defaultEntries(): Record<string, KeyName> {
  const map: Record<string, KeyName> = {};
  DIGITS.forEach((digit, i) => {
    map[hex(0x1e + i)] = digit;
    map[hex(0x59 + i)] = digit;
  });
  Object.assign(map, {
    '0x55': '*',
    '0xcc': '#',
    'shift+0x20': '#',
    'shift+0x25': '*',
    '0x58': '#',
    '0x28': '#',
    '0x57': 'volume-up',
    '0x56': 'volume-down',
    '0x54': 'redial',
    '0x63': 'hold',
    '0x2a': 'mute',
    '0x53': 'speaker',
    '0x2b': 'conference',
  });
  ['redial', 'hold', 'mute', 'volume-up', 'volume-down', 'speaker', 'conference'].forEach((key, i) => {
    map[hex(0x3a + i)] = key;
  });
  return map;
}

function hex(usage: number): string {
  return `0x${usage.toString(16).padStart(2, '0')}`;
}

/** The default keymap as config-style entries (usage string → key name). */
export const DEFAULT_KEYMAP_ENTRIES: Readonly<Record<string, KeyName>> = Object.freeze(defaultEntries());

const USAGE_KEY = /^(shift\+)?(0x[0-9a-f]{1,2}|[0-9]{1,3})$/i;

/** Parse a keymap entry's usage: `0x59`, `89`, `shift+0x20`. Throws `ERR_KEYPAD_OPTIONS`. */
export function parseUsageKey(text: string): { usage: number; shift: boolean } {
  const m = USAGE_KEY.exec(text);
  const usage = m ? Number(m[2]) : NaN;
  if (!m || !(usage >= 4 && usage <= 0xff)) {
    throw new KeypadError('ERR_KEYPAD_OPTIONS', `keypad keymap: usage ${JSON.stringify(text)}, expected a keyboard-page usage 0x04..0xff as "0x59" or "89", optionally "shift+0x20"`);
  }
  return { usage, shift: m[1] !== undefined };
}

/**
 * Build a keymap: the defaults, then `overrides` (usage string → key name,
 * `none` to remove). Throws `ERR_KEYPAD_OPTIONS` naming every bad entry.
 */
export function buildKeymap(overrides: Readonly<Record<string, string>> = {}, base: Readonly<Record<string, string>> = DEFAULT_KEYMAP_ENTRIES): Keymap {
  const plain = new Map<number, KeyName>();
  const shifted = new Map<number, KeyName>();
  const problems: string[] = [];
  const apply = (entries: Readonly<Record<string, string>>, where: string) => {
    for (const [usageText, key] of Object.entries(entries)) {
      let parsed: { usage: number; shift: boolean };
      try {
        parsed = parseUsageKey(usageText);
      } catch (err) {
        problems.push((err as Error).message.replace(/^keypad keymap: /, ''));
        continue;
      }
      const target = parsed.shift ? shifted : plain;
      if (key === 'none') target.delete(parsed.usage);
      else if (isKeyName(key)) target.set(parsed.usage, key);
      else problems.push(`${where} ${usageText}: key ${JSON.stringify(key)}, expected 0-9, *, #, a name like "redial" ([a-z][a-z0-9-]*) or "none"`);
    }
  };
  apply(base, 'default');
  if (typeof overrides !== 'object' || overrides === null) {
    throw new KeypadError('ERR_KEYPAD_OPTIONS', `keypad keymap: ${String(overrides)}, expected a map of usage to key name`);
  }
  apply(overrides, 'usage');
  if (problems.length > 0) throw new KeypadError('ERR_KEYPAD_OPTIONS', `keypad keymap: ${problems.join('; ')}`);
  return { plain, shifted };
}

/** The key a usage means with or without Shift held; `undefined` when unmapped. */
export function lookupKey(keymap: Keymap, usage: number, shift: boolean): KeyName | undefined {
  if (shift) {
    const key = keymap.shifted.get(usage);
    if (key !== undefined) return key;
  }
  return keymap.plain.get(usage);
}
