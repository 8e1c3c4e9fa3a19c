/**
 * The gpio hook and LED drivers on the real onoff, against a fake sysfs GPIO
 * tree. onoff's path is fixed (/sys/class/gpio), so the drivers run in a
 * child process in a private mount namespace (`unshare -m`, as root) with a
 * tmpfs on /sys/class holding a Pi 4 / kernel 6.6 layout: gpiochip512
 * "pinctrl-bcm2711" (58 lines) and gpiochip570 "raspberrypi-exp-gpio".
 *
 * What this exercises: the gpiochip lookup through the real path, BCM → sysfs
 * numbers (17 → 529, 22 → 534, 23 → 535), onoff configuring already exported
 * lines (direction, edge, active_low written as the drivers ask), the hook's
 * initial level read through onoff's open value fd, epoll registration of
 * the hook's value file, LED levels written (on, blinking in real time, dark
 * on close), unexport on close, and the errors with no sysfs GPIO.
 *
 * What it cannot: edge interrupts. The kernel signals an edge by
 * sysfs_notify() on the gpioN/value attribute (EPOLLPRI); a tmpfs file cannot
 * even be added to an epoll set (EPERM). So the hook's value file is a bind
 * mount of a harmless real sysfs attribute that reads "1"/"0" (the PCI or
 * platform bus's drivers_autoprobe, only read, never written), which epoll
 * accepts but which never fires. The debounce that follows an edge is tested
 * behind the seam (gpio.test.ts). Exporting (writing `export` and waiting for
 * the kernel to create gpioN/) is onoff's own and is not exercised either:
 * the lines are created already exported, as a previous run or udev leaves
 * them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = mkdtempSync(join(tmpdir(), 'partyline-onoff-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The HAL's gpio code as plain ESM JavaScript (imports already say .js). */
function transpileHal(out: string): void {
  const files = ['hal/events.ts', 'hal/log.ts', ...readdirSync(join(repo, 'hal/gpio')).filter((f) => f.endsWith('.ts')).map((f) => `hal/gpio/${f}`)];
  for (const file of files) {
    const { outputText } = ts.transpileModule(readFileSync(join(repo, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    const target = join(out, file.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
}

const CHILD = `
import { readFileSync } from 'node:fs';
const { openHookSwitch, openLeds } = await import(process.env.HAL_GPIO);
const G = '/sys/class/gpio';
const read = (p) => readFileSync(p, 'utf8').trim();
const failure = (fn) => { try { fn(); return null; } catch (err) { return { code: err.code, message: err.message }; } };
const res = {};
if (process.argv[2] === 'absent') {
  res.hook = failure(() => openHookSwitch({ driver: 'gpio', pin: 17 }));
  res.leds = failure(() => openLeds({ driver: 'gpio', pins: { call: 23 } }));
} else {
  const hook = openHookSwitch({ driver: 'gpio', pin: 17, activeLow: true, debounceMs: 30 });
  res.hookState = hook.state;
  res.hookFiles = { direction: read(G + '/gpio529/direction'), edge: read(G + '/gpio529/edge'), activeLow: read(G + '/gpio529/active_low') };
  res.pinError = failure(() => openHookSwitch({ driver: 'gpio', pin: 58 }));
  const leds = openLeds({ driver: 'gpio', pins: { power: 22, call: 23 } });
  res.ledFiles = ['534', '535'].map((n) => ({ direction: read(G + '/gpio' + n + '/direction'), activeLow: read(G + '/gpio' + n + '/active_low'), value: read(G + '/gpio' + n + '/value') }));
  leds.set('power', 'on');
  res.powerOn = read(G + '/gpio534/value');
  leds.set('call', 'blink-fast');
  const samples = [];
  const t0 = performance.now();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      samples.push(read(G + '/gpio535/value'));
      if (performance.now() - t0 >= 1000) { clearInterval(timer); resolve(); }
    }, 5);
  });
  res.callSamples = samples.join('');
  res.states = leds.state();
  await leds.close();
  res.afterClose = { power: read(G + '/gpio534/value'), call: read(G + '/gpio535/value') };
  await hook.close();
  res.unexport = read(G + '/unexport');
}
console.log(JSON.stringify(res));
`;

/** A real sysfs attribute that reads 0 or 1, opens read-write as root and can be polled. */
const POLLABLE = ['/sys/bus/platform/drivers_autoprobe', '/sys/bus/pci/drivers_autoprobe'].find((p) => existsSync(p));

const SCRIPT = `
set -e
mount -t tmpfs partyline-gpio /sys/class
node "$CHILD" absent
G=/sys/class/gpio
mkdir $G; : > $G/export; : > $G/unexport
chip() { mkdir $G/gpiochip$1; echo $1 > $G/gpiochip$1/base; echo $2 > $G/gpiochip$1/ngpio; echo $3 > $G/gpiochip$1/label; }
chip 512 58 pinctrl-bcm2711
chip 570 8 raspberrypi-exp-gpio
line() { mkdir $G/gpio$1; for f in direction edge; do : > $G/gpio$1/$f; done; echo 1 > $G/gpio$1/active_low; echo 0 > $G/gpio$1/value; }
line 529; line 534; line 535
mount --bind "$POLLABLE" $G/gpio529/value
node "$CHILD" present
`;

interface Failure {
  code: string;
  message: string;
}

describe('gpio drivers on onoff in a mount namespace with a fake sysfs tree', () => {
  let absent: { hook: Failure; leds: Failure };
  let present: {
    hookState: string;
    hookFiles: Record<string, string>;
    pinError: Failure;
    ledFiles: Record<string, string>[];
    powerOn: string;
    callSamples: string;
    states: Record<string, string>;
    afterClose: Record<string, string>;
    unexport: string;
  };

  beforeAll(() => {
    expect(POLLABLE, 'a sysfs drivers_autoprobe attribute to stand in for gpio529/value').toBeDefined();
    expect(process.geteuid?.(), 'unshare -m needs root').toBe(0);
    transpileHal(join(work, 'out'));
    writeFileSync(join(work, 'child.mjs'), CHILD);
    const output = execFileSync('unshare', ['-m', 'sh', '-c', SCRIPT], {
      encoding: 'utf8',
      env: {
        ...process.env,
        CHILD: join(work, 'child.mjs'),
        HAL_GPIO: join(work, 'out/hal/gpio/index.js'),
        POLLABLE: POLLABLE as string,
        NODE_PATH: join(repo, 'node_modules'),
      },
      timeout: 30_000,
    });
    const [first, second] = output.trim().split('\n');
    absent = JSON.parse(first as string);
    present = JSON.parse(second as string);
  });

  it('without /sys/class/gpio both devices refuse to open, naming the path', () => {
    expect(absent.hook.code).toBe('ERR_GPIO_SYSFS');
    expect(absent.hook.message).toContain('sysfs GPIO not found: /sys/class/gpio does not exist');
    expect(absent.leds.code).toBe('ERR_GPIO_SYSFS');
  });

  it('the hook on BCM 17 is sysfs 529: configured as a both-edge input with active_low 0, state read through onoff', () => {
    expect(present.hookFiles).toEqual({ direction: 'in', edge: 'both', activeLow: '0' });
    const level = readFileSync(POLLABLE as string, 'utf8').trim();
    expect(present.hookState).toBe(level === '1' ? 'on-hook' : 'off-hook');
    expect(present.pinError).toEqual({ code: 'ERR_GPIO_PIN', message: 'GPIO 58 (BCM): gpiochip512 "pinctrl-bcm2711" has lines 0..57' });
  });

  it('LEDs on BCM 22/23 are sysfs 534/535: outputs set up low, lit, blinking, dark after close and unexported', () => {
    for (const files of present.ledFiles) expect(files).toEqual({ direction: 'low', activeLow: '0', value: '0' });
    expect(present.powerOn).toBe('1');
    expect(present.states).toEqual({ power: 'on', call: 'blink-fast' });
    // Sampled every ~5 ms for 1 s: 125 ms runs of 1s and 0s, about 8 of them.
    const runs = present.callSamples.match(/0+|1+/g) ?? [];
    expect(present.callSamples.startsWith('1')).toBe(true);
    expect(runs.length).toBeGreaterThanOrEqual(6);
    expect(runs.length).toBeLessThanOrEqual(10);
    expect(present.afterClose).toEqual({ power: '0', call: '0' });
    expect(['529', '534', '535']).toContain(present.unexport);
  });
});
