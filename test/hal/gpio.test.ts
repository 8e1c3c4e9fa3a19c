/**
 * The GPIO HAL: BCM → sysfs numbering from gpiochip trees (fake sysfs trees
 * in a temporary directory, laid out as on Pi 3/4/5 with kernels 6.1 and
 * 6.6), the hook switch's debounce and polarity and the LEDs' blinking
 * behind a fake line driver on a fake clock, the sim drivers, and the
 * factories' errors.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HalLog } from '../../hal/log.js';
import {
  findGpioChip, GpioError, listGpioChips, openHookSwitch, openLeds, SimLeds, sysfsGpioNumber,
} from '../../hal/gpio/index.js';
import type { GpioBackend, GpioChipInfo, GpioHookSwitch, GpioLeds, GpioLevel, GpioLine, HookState, LedState, SimHookSwitch } from '../../hal/gpio/index.js';

interface Layout {
  name: string;
  chips: GpioChipInfo[];
  chip: string;
  bcm: number;
  sysfs: number;
}

const LAYOUTS = (JSON.parse(readFileSync(new URL('../fixtures/sysfs/gpiochips.json', import.meta.url), 'utf8')) as { layouts: Layout[] }).layouts;
const PI4_66 = LAYOUTS.find((l) => l.name === 'Pi 4, kernel 6.6') as Layout;

const dir = mkdtempSync(join(tmpdir(), 'partyline-gpio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let trees = 0;

/** A sysfs GPIO directory with these chips (and the export files the kernel has). */
function sysfsTree(chips: GpioChipInfo[]): string {
  const root = join(dir, `tree${trees++}`, 'class', 'gpio');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'export'), '');
  writeFileSync(join(root, 'unexport'), '');
  for (const c of chips) {
    mkdirSync(join(root, c.name));
    writeFileSync(join(root, c.name, 'base'), `${c.base}\n`);
    writeFileSync(join(root, c.name, 'ngpio'), `${c.ngpio}\n`);
    writeFileSync(join(root, c.name, 'label'), `${c.label}\n`);
  }
  return root;
}

class FakeLine implements GpioLine {
  level: GpioLevel;
  writes: { at: number; level: GpioLevel }[] = [];
  closed = false;
  failWrites = false;
  #listener: ((err: Error | null | undefined, level: GpioLevel) => void) | undefined;
  constructor(readonly gpio: number, level: GpioLevel) {
    this.level = level;
  }
  read(): GpioLevel {
    return this.level;
  }
  write(level: GpioLevel): void {
    if (this.failWrites) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
    this.level = level;
    this.writes.push({ at: Date.now(), level });
  }
  watch(listener: (err: Error | null | undefined, level: GpioLevel) => void): void {
    this.#listener = listener;
  }
  close(): void {
    this.closed = true;
  }
  /** The line changes level: the kernel's interrupt, as onoff reports it. */
  edge(level: GpioLevel): void {
    this.level = level;
    this.#listener?.(null, level);
  }
  interruptError(): void {
    this.#listener?.(new Error('epoll failed'), this.level);
  }
}

class FakeGpio implements GpioBackend {
  lines = new Map<number, FakeLine>();
  inputLevel: GpioLevel = 1;
  refuse = new Map<number, string>();
  input(gpio: number): GpioLine {
    return this.#make(gpio, this.inputLevel);
  }
  output(gpio: number, initial: GpioLevel): GpioLine {
    return this.#make(gpio, initial);
  }
  #make(gpio: number, level: GpioLevel): FakeLine {
    const errno = this.refuse.get(gpio);
    if (errno) throw Object.assign(new Error(`${errno}: write /sys/class/gpio/export`), { code: errno });
    const line = new FakeLine(gpio, level);
    this.lines.set(gpio, line);
    return line;
  }
  line(gpio: number): FakeLine {
    const l = this.lines.get(gpio);
    if (!l) throw new Error(`gpio ${gpio} not opened`);
    return l;
  }
}

function recordingLog() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  const log: HalLog = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
  return { log, lines };
}

function caught(fn: () => unknown): GpioError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GpioError);
    return err as GpioError;
  }
  throw new Error('expected a GpioError');
}

describe('BCM to sysfs numbering', () => {
  for (const layout of LAYOUTS) {
    it(`${layout.name}: BCM ${layout.bcm} is sysfs ${layout.sysfs} on ${layout.chip}`, () => {
      const root = sysfsTree(layout.chips);
      const chip = findGpioChip(root);
      expect(chip.name).toBe(layout.chip);
      expect(sysfsGpioNumber(chip, layout.bcm)).toBe(layout.sysfs);
      expect(listGpioChips(root).map((c) => c.name)).toEqual(layout.chips.map((c) => c.name));
    });
  }

  it('says what was looked for when sysfs GPIO is absent', () => {
    const missing = join(dir, 'no-such', 'gpio');
    const err = caught(() => findGpioChip(missing));
    expect(err.code).toBe('ERR_GPIO_SYSFS');
    expect(err.message).toBe(`sysfs GPIO not found: ${missing} does not exist (a kernel without CONFIG_GPIO_SYSFS, or not a Raspberry Pi); the gpio hook and LED drivers need it, use driver "sim" here`);
  });

  it('names the labels looked for and the chips found when no Pi chip is there', () => {
    const other = sysfsTree([{ name: 'gpiochip0', base: 0, ngpio: 32, label: 'gpio-mockup-A' }]);
    const err = caught(() => findGpioChip(other));
    expect(err.code).toBe('ERR_GPIO_CHIP');
    expect(err.message).toBe(`no Raspberry Pi GPIO chip under ${other}: looked for a gpiochip labelled "pinctrl-rp1" or "pinctrl-bcm2711" or "pinctrl-bcm2835", found gpiochip0 "gpio-mockup-A" (base 0, 32 lines)`);
    expect(caught(() => findGpioChip(sysfsTree([]))).message).toMatch(/found no gpiochip\* entries$/);
    // Another board: its label given explicitly.
    expect(findGpioChip(other, ['gpio-mockup-A']).base).toBe(0);
  });

  it('refuses a BCM line the chip does not have', () => {
    const chip = findGpioChip(sysfsTree(PI4_66.chips));
    expect(sysfsGpioNumber(chip, 57)).toBe(569);
    const err = caught(() => sysfsGpioNumber(chip, 58));
    expect(err).toMatchObject({ code: 'ERR_GPIO_PIN', message: 'GPIO 58 (BCM): gpiochip512 "pinctrl-bcm2711" has lines 0..57' });
  });
});

describe('gpio hook switch', () => {
  let gpio: FakeGpio;
  let root: string;
  beforeEach(() => {
    vi.useFakeTimers();
    gpio = new FakeGpio();
    root = sysfsTree(PI4_66.chips);
  });
  afterEach(() => {
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  function hook(spec: { activeLow?: boolean; debounceMs?: number } = {}, log?: HalLog): GpioHookSwitch {
    return openHookSwitch({ driver: 'gpio', pin: 17, ...spec }, { sysfsRoot: root, backend: gpio, log }) as GpioHookSwitch;
  }

  function record(h: GpioHookSwitch | SimHookSwitch): { events: string[]; changes: HookState[] } {
    const r = { events: [] as string[], changes: [] as HookState[] };
    h.on('off-hook', () => r.events.push('off-hook'));
    h.on('on-hook', () => r.events.push('on-hook'));
    h.on('change', (s) => r.changes.push(s));
    return r;
  }

  it('opens BCM 17 as sysfs 529 on a 6.6 Pi 4 and reads the state (active low: 1 is on hook)', async () => {
    const h = hook();
    expect([...gpio.lines.keys()]).toEqual([529]);
    expect(h.state).toBe('on-hook');
    await h.close();
    gpio.inputLevel = 0;
    const lifted = hook();
    expect(lifted.state).toBe('off-hook');
    await lifted.close();
  });

  it('reports one change per lift and replace, after the line is stable for debounceMs', async () => {
    const h = hook({ debounceMs: 30 });
    const r = record(h);
    const line = gpio.line(529);
    // Lifting: the contact bounces for 8 ms.
    for (const level of [0, 1, 0, 1, 0] as GpioLevel[]) {
      line.edge(level);
      vi.advanceTimersByTime(2);
    }
    vi.advanceTimersByTime(27);
    expect(r.events).toEqual([]);
    expect(h.state).toBe('on-hook');
    vi.advanceTimersByTime(1);
    expect(r.events).toEqual(['off-hook']);
    expect(h.state).toBe('off-hook');

    // A glitch that comes back within debounceMs is no change.
    line.edge(1);
    vi.advanceTimersByTime(5);
    line.edge(0);
    vi.advanceTimersByTime(100);
    expect(r.events).toEqual(['off-hook']);

    line.edge(1);
    vi.advanceTimersByTime(30);
    expect(r.events).toEqual(['off-hook', 'on-hook']);
    expect(r.changes).toEqual(['off-hook', 'on-hook']);
    await h.close();
  });

  it('with activeLow false, 1 is off hook; with debounceMs 0 every edge counts at once', async () => {
    gpio.inputLevel = 0;
    const h = hook({ activeLow: false, debounceMs: 0 });
    const r = record(h);
    expect(h.state).toBe('on-hook');
    gpio.line(529).edge(1);
    expect(r.events).toEqual(['off-hook']);
    gpio.line(529).edge(1);
    gpio.line(529).edge(0);
    expect(r.events).toEqual(['off-hook', 'on-hook']);
    await h.close();
  });

  it('logs a failing interrupt once and carries on; a throwing listener does not stop the others', async () => {
    const { log, lines } = recordingLog();
    const h = hook({ debounceMs: 10 }, log);
    h.on('off-hook', () => {
      throw new Error('listener bug');
    });
    const r = record(h);
    gpio.line(529).interruptError();
    gpio.line(529).interruptError();
    gpio.line(529).edge(0);
    vi.advanceTimersByTime(10);
    expect(r.events).toEqual(['off-hook']);
    expect(lines.filter((l) => l.msg === 'hook switch interrupt failed')).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'hook listener failed')).toHaveLength(1);
    await h.close();
  });

  it('close releases the line and cancels a pending debounce; twice is harmless', async () => {
    const h = hook();
    const r = record(h);
    gpio.line(529).edge(0);
    await h.close();
    await h.close();
    vi.advanceTimersByTime(100);
    expect(r.events).toEqual([]);
    expect(gpio.line(529).closed).toBe(true);
  });

  it('turns refusals into typed errors naming the pin', () => {
    gpio.refuse.set(529, 'EACCES');
    expect(caught(() => hook())).toMatchObject({ code: 'ERR_GPIO_ACCESS', message: expect.stringContaining('hook switch GPIO 17 (sysfs 529): permission denied (EACCES: write /sys/class/gpio/export); run partyline as a user in the gpio group') });
    gpio.refuse.set(529, 'EBUSY');
    expect(caught(() => hook())).toMatchObject({ code: 'ERR_GPIO_BUSY', message: expect.stringContaining('hook switch GPIO 17 (sysfs 529): the line is in use') });
    gpio.refuse.set(529, 'EINVAL');
    expect(caught(() => hook()).code).toBe('ERR_GPIO_IO');
    expect(caught(() => openHookSwitch({ driver: 'gpio', pin: 60 }, { sysfsRoot: root, backend: gpio })).code).toBe('ERR_GPIO_PIN');
    expect(caught(() => hook({ debounceMs: 5000 })).message).toBe('hook switch: debounceMs 5000, expected an integer 0..1000');
  });
});

describe('gpio LEDs', () => {
  let gpio: FakeGpio;
  let root: string;
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    gpio = new FakeGpio();
    root = sysfsTree(PI4_66.chips);
  });
  afterEach(() => {
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  function leds(pins: Record<string, number> = { power: 22, call: 23, message: 24 }, log?: HalLog): GpioLeds {
    return openLeds({ driver: 'gpio', pins }, { sysfsRoot: root, backend: gpio, log }) as GpioLeds;
  }

  /** Levels of a line at each `step` ms from `from` to `to`, replayed from its writes. */
  function levelsOver(line: FakeLine, from: number, to: number, step: number): string {
    let out = '';
    for (let t = from; t < to; t += step) {
      const last = line.writes.filter((w) => w.at <= t).at(-1);
      out += String(last?.level ?? 0);
    }
    return out;
  }

  it('opens one output per LED at its sysfs number, all dark, and reports their states', async () => {
    const l = leds();
    expect([...gpio.lines.keys()]).toEqual([534, 535, 536]);
    expect([...gpio.lines.values()].map((line) => line.level)).toEqual([0, 0, 0]);
    expect(l.names).toEqual(['power', 'call', 'message']);
    expect(l.state()).toEqual({ power: 'off', call: 'off', message: 'off' });
    expect(l.set('power', 'on')).toBe(true);
    expect(gpio.line(534).level).toBe(1);
    expect(vi.getTimerCount()).toBe(0); // nothing blinks: no timer
    expect(l.state()).toEqual({ power: 'on', call: 'off', message: 'off' });
    await l.close();
  });

  it('blinks fast at 125 ms on / 125 ms off and slow at 500/500, in step, with one timer', async () => {
    const l = leds();
    l.set('call', 'blink-fast');
    l.set('message', 'blink-slow');
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1999);
    // Sampled every 125 ms from t=0.
    expect(levelsOver(gpio.line(535), 0, 2000, 125)).toBe('1010101010101010');
    expect(levelsOver(gpio.line(536), 0, 2000, 125)).toBe('1111000011110000');
    // Writes only on changes.
    expect(gpio.line(535).writes).toHaveLength(16);
    expect(gpio.line(536).writes).toHaveLength(4);

    l.set('call', 'on');
    l.set('message', 'off');
    expect(vi.getTimerCount()).toBe(0);
    expect(gpio.line(535).level).toBe(1);
    expect(gpio.line(536).level).toBe(0);
    await l.close();
  });

  it('emits change for a new state only; an LED that is not fitted is refused, a bad state throws', async () => {
    const l = leds({ call: 23 });
    const changes: [string, LedState][] = [];
    l.on('change', (name, state) => changes.push([name, state]));
    l.set('call', 'blink-slow');
    l.set('call', 'blink-slow');
    l.set('call', 'off');
    expect(changes).toEqual([['call', 'blink-slow'], ['call', 'off']]);
    expect(l.set('message', 'on')).toBe(false);
    expect(l.state()).toEqual({ call: 'off' });
    expect(caught(() => l.set('call', 'flash' as LedState))).toMatchObject({ code: 'ERR_GPIO_LED', message: 'LED "call": state "flash", expected off, on, blink-slow, blink-fast' });
    await l.close();
  });

  it('a failing write is logged once and the others keep blinking', async () => {
    const { log, lines } = recordingLog();
    const l = leds({ power: 22, call: 23 }, log);
    gpio.line(534).failWrites = true;
    l.set('power', 'blink-fast');
    l.set('call', 'blink-fast');
    vi.advanceTimersByTime(999);
    expect(gpio.line(535).writes.length).toBe(8);
    expect(lines.filter((x) => x.msg === 'LED write failed')).toHaveLength(1);
    await l.close();
  });

  it('close darkens every LED, stops the blinking and releases the lines', async () => {
    const l = leds();
    l.set('power', 'on');
    l.set('call', 'blink-fast');
    await l.close();
    await l.close();
    expect([...gpio.lines.values()].map((line) => [line.level, line.closed])).toEqual([[0, true], [0, true], [0, true]]);
    expect(l.set('power', 'on')).toBe(false);
  });

  it('refuses two LEDs on one pin, and releases what it opened when a later line fails', () => {
    expect(caught(() => leds({ power: 22, call: 22 })).message).toBe('LEDs "power" and "call": both on GPIO 22');
    gpio.refuse.set(536, 'EBUSY');
    expect(caught(() => leds()).code).toBe('ERR_GPIO_BUSY');
    expect(gpio.line(534).closed).toBe(true);
    expect(gpio.line(535).closed).toBe(true);
  });

  it('a phone without LEDs needs no sysfs GPIO', async () => {
    const l = openLeds({ driver: 'gpio', pins: {} }, { sysfsRoot: join(dir, 'absent'), backend: gpio });
    expect(l.driver).toBe('gpio');
    expect(l.set('call', 'on')).toBe(false);
    expect(l.state()).toEqual({});
    await l.close();
  });
});

describe('factories', () => {
  it('refuse unknown drivers, bad pins, and a non-default sysfs root with onoff', () => {
    expect(caught(() => openHookSwitch({ driver: 'usb' } as never))).toMatchObject({ code: 'ERR_GPIO_DRIVER', message: 'hook switch driver "usb": unknown, expected "sim" or "gpio"' });
    expect(caught(() => openLeds({ driver: 'i2c' } as never)).code).toBe('ERR_GPIO_DRIVER');
    expect(caught(() => openHookSwitch({ driver: 'gpio', pin: -1 })).message).toBe('hook switch: pin -1, expected a BCM GPIO number');
    expect(caught(() => openHookSwitch({ driver: 'gpio', pin: 17 }, { sysfsRoot: join(dir, 'x') })).code).toBe('ERR_GPIO_OPTIONS');
  });

  it('say when sysfs GPIO is absent (the default root through a backend)', () => {
    expect(caught(() => openHookSwitch({ driver: 'gpio', pin: 17 }, { sysfsRoot: join(dir, 'none'), backend: new FakeGpio() })).code).toBe('ERR_GPIO_SYSFS');
  });
});

describe('sim hook switch and LEDs', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  it('the sim hook moves with lift and replace, once per change', async () => {
    const h = openHookSwitch({ driver: 'sim' });
    const events: string[] = [];
    h.on('off-hook', () => events.push('off'));
    h.on('on-hook', () => events.push('on'));
    expect(h.state).toBe('on-hook');
    expect(h.lift()).toBe(true);
    expect(h.lift()).toBe(false);
    expect(h.state).toBe('off-hook');
    expect(h.replace()).toBe(true);
    expect(events).toEqual(['off', 'on']);
    await h.close();
    expect(h.lift()).toBe(false);
  });

  it('sim LEDs start with the configured names, add others on set, blink and say what is lit', async () => {
    const l = openLeds({ driver: 'sim', pins: { power: 22 } });
    expect(l).toBeInstanceOf(SimLeds);
    expect(l.state()).toEqual({ power: 'off' });
    l.set('call', 'blink-fast');
    expect(l.state()).toEqual({ power: 'off', call: 'blink-fast' });
    expect(l.lit('call')).toBe(true);
    vi.advanceTimersByTime(125);
    expect(l.lit('call')).toBe(false);
    expect(caught(() => l.set('Call', 'on')).code).toBe('ERR_GPIO_OPTIONS');
    await l.close();
    expect(l.state()).toEqual({ power: 'off', call: 'off' });
  });
});
