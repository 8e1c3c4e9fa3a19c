/**
 * The hid keypad's pure parts: boot-protocol keyboard reports and the keymap,
 * against reports written down from a standard USB numeric keypad's boot
 * layout (test/fixtures/hid/numeric-keypad.txt).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KeypadError } from '../../hal/keypad/errors.js';
import { buildKeymap, DEFAULT_KEYMAP_ENTRIES, lookupKey, parseUsageKey } from '../../hal/keypad/keymap.js';
import { KeyReportDecoder, parseBootReport } from '../../hal/keypad/report.js';

interface FixtureLine {
  line: number;
  bytes: Buffer;
  keys: string[];
}

function loadFixture(name: string): FixtureLine[] {
  const text = readFileSync(new URL(`../fixtures/hid/${name}`, import.meta.url), 'utf8');
  const out: FixtureLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [hex, expected] = line.split('=>').map((s) => s.trim());
    out.push({ line: i + 1, bytes: Buffer.from((hex as string).replace(/\s+/g, ''), 'hex'), keys: expected === '-' ? [] : (expected as string).split(',') });
  });
  return out;
}

function hexBytes(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

describe('boot keyboard reports', () => {
  it('decodes the numeric keypad recording into one key per press', () => {
    const lines = loadFixture('numeric-keypad.txt');
    expect(lines.length).toBe(49);
    const decoder = new KeyReportDecoder(buildKeymap());
    for (const { line, bytes, keys } of lines) {
      expect({ line, keys: decoder.decode(bytes).keys }).toEqual({ line, keys });
    }
  });

  it('parses modifiers and held usages, leaving out empty slots and modifier usages', () => {
    expect(parseBootReport(hexBytes('22 00 59 00 e1 62 00 00'))).toEqual({ modifiers: 0x22, usages: [0x59, 0x62], error: false });
    expect(parseBootReport(hexBytes('00 00 00 00 00 00 00 00'))).toEqual({ modifiers: 0, usages: [], error: false });
    // A numbered report: ID 3 then the 8 bytes.
    expect(parseBootReport(hexBytes('03 00 00 5a 00 00 00 00 00'))).toEqual({ modifiers: 0, usages: [0x5a], error: false });
  });

  it('flags ErrorRollOver, POSTFail and ErrorUndefined reports', () => {
    for (const code of ['01', '02', '03']) {
      expect(parseBootReport(hexBytes(`00 00 ${code} ${code} ${code} ${code} ${code} ${code}`))).toEqual({ modifiers: 0, usages: [], error: true });
    }
  });

  it('refuses reports that are not 8 bytes (or 9 with a report ID), naming the length', () => {
    for (const bytes of [Buffer.alloc(0), Buffer.alloc(7), hexBytes('00 00 00 00 00 00 00 00 00'), Buffer.alloc(64)]) {
      let caught: unknown;
      try {
        parseBootReport(bytes);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(KeypadError);
      expect(caught).toMatchObject({ code: 'ERR_KEYPAD_REPORT', message: `HID report: ${bytes.length} bytes, expected a boot-protocol keyboard report of 8 bytes (or 9 with a report ID)` });
    }
  });

  it('keeps its state across a malformed report', () => {
    const decoder = new KeyReportDecoder(buildKeymap());
    expect(decoder.decode(hexBytes('00 00 5a 00 00 00 00 00')).keys).toEqual(['2']);
    expect(() => decoder.decode(Buffer.alloc(3))).toThrow(KeypadError);
    expect(decoder.decode(hexBytes('00 00 5a 00 00 00 00 00')).keys).toEqual([]);
    expect(decoder.decode(hexBytes('00 00 00 00 00 00 00 00')).keys).toEqual([]);
    expect(decoder.decode(hexBytes('00 00 5a 00 00 00 00 00')).keys).toEqual(['2']);
  });

  it('reports usages the keymap does not name, and forgets held keys on reset', () => {
    const decoder = new KeyReportDecoder(buildKeymap());
    expect(decoder.decode(hexBytes('00 00 67 5a 00 00 00 00'))).toEqual({ keys: ['2'], unmapped: [0x67] });
    decoder.reset();
    expect(decoder.decode(hexBytes('00 00 67 5a 00 00 00 00'))).toEqual({ keys: ['2'], unmapped: [0x67] });
  });
});

describe('keymap', () => {
  it('maps both digit rows, keypad * and #, Enter and the function keys by default', () => {
    const map = buildKeymap();
    const digits = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'];
    digits.forEach((d, i) => {
      expect(lookupKey(map, 0x59 + i, false)).toBe(d);
      expect(lookupKey(map, 0x1e + i, false)).toBe(d);
    });
    expect(lookupKey(map, 0x55, false)).toBe('*');
    expect(lookupKey(map, 0xcc, false)).toBe('#');
    expect(lookupKey(map, 0x58, false)).toBe('#');
    expect(lookupKey(map, 0x20, true)).toBe('#');
    expect(lookupKey(map, 0x20, false)).toBe('3');
    expect(lookupKey(map, 0x59, true)).toBe('1'); // Shift does not change a usage without a shifted entry
    expect([0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40].map((u) => lookupKey(map, u, false))).toEqual(['redial', 'hold', 'mute', 'volume-up', 'volume-down', 'speaker', 'conference']);
    expect(lookupKey(map, 0x67, false)).toBeUndefined();
    expect(Object.keys(DEFAULT_KEYMAP_ENTRIES)).toContain('shift+0x20');
  });

  it('takes overrides in hex or decimal, with shift+ and none', () => {
    const map = buildKeymap({ '0x63': 'conference', '87': 'line-2', 'shift+0x59': 'hold', '0x53': 'none', 'SHIFT+0X22': 'intercom' });
    expect(lookupKey(map, 0x63, false)).toBe('conference');
    expect(lookupKey(map, 87, false)).toBe('line-2');
    expect(lookupKey(map, 0x59, true)).toBe('hold');
    expect(lookupKey(map, 0x59, false)).toBe('1');
    expect(lookupKey(map, 0x53, false)).toBeUndefined();
    expect(lookupKey(map, 0x22, true)).toBe('intercom');
  });

  it('names every bad entry at once', () => {
    let caught: unknown;
    try {
      buildKeymap({ '0x1ff': 'redial', 'alt+0x20': '#', '0x59': 'Volume Up', '3': 'mute', '0x5a': '2' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KeypadError);
    const message = (caught as KeypadError).message;
    expect((caught as KeypadError).code).toBe('ERR_KEYPAD_OPTIONS');
    expect(message).toContain('usage "0x1ff", expected a keyboard-page usage 0x04..0xff');
    expect(message).toContain('usage "alt+0x20"');
    expect(message).toContain('usage "3"'); // 0x00-0x03 are not keys
    expect(message).toContain('usage 0x59: key "Volume Up", expected 0-9, *, #, a name like "redial"');
    expect(message).not.toContain('0x5a');
  });

  it('parses usage keys', () => {
    expect(parseUsageKey('0x59')).toEqual({ usage: 0x59, shift: false });
    expect(parseUsageKey('89')).toEqual({ usage: 89, shift: false });
    expect(parseUsageKey('shift+0x20')).toEqual({ usage: 0x20, shift: true });
    expect(() => parseUsageKey('0x')).toThrow(/expected a keyboard-page usage/);
    expect(() => parseUsageKey('256')).toThrow(/expected a keyboard-page usage/);
  });
});

describe('hal.keypad config and the keymap agree', () => {
  it('the config schema accepts every default entry and the shapes the driver takes, and refuses what the driver refuses', async () => {
    const { keypadSchema } = await import('../../src/config/schema.js');
    const parsed = keypadSchema.parse({ driver: 'hid', device: '05a4:9759', keymap: { ...DEFAULT_KEYMAP_ENTRIES, '99': 'line-2', '0x53': 'none' } });
    expect(() => buildKeymap(parsed.keymap)).not.toThrow();
    expect(keypadSchema.parse({}).keymap).toEqual({});
    expect(keypadSchema.parse({ device: '/dev/hidraw1' }).device).toBe('/dev/hidraw1');
    for (const bad of [{ keymap: { '0x1ff': 'redial' } }, { keymap: { '3': 'mute' } }, { keymap: { '0x59': 'Redial' } }, { device: 'hidraw0' }, { device: '05a4-9759' }]) {
      expect(keypadSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
