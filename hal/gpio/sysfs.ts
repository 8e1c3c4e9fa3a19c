/**
 * BCM line numbers to the kernel's sysfs GPIO numbers.
 *
 * The configuration names pins by their BCM number (GPIO17 = header pin 11),
 * but sysfs (`/sys/class/gpio/export`, `gpioN/`) numbers every line of every
 * GPIO chip in one global space: a line's number is its chip's `base` plus
 * its offset on the chip. Up to kernel 6.1 the Pi's main chip had base 0, so
 * BCM numbers were sysfs numbers; since 6.6 bases are allocated from 512
 * (Pi 4: `pinctrl-bcm2711` at 512; Pi 5: the header's RP1 chip
 * `pinctrl-rp1` at 571), which is why old scripts writing `17` to `export`
 * now fail. So the chip is found by its label and its base read:
 * sysfs number = base + BCM number.
 *
 * Each `/sys/class/gpio/gpiochipN/` holds `base`, `label` and `ngpio`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GpioError } from './errors.js';

export const DEFAULT_SYSFS_GPIO_ROOT = '/sys/class/gpio';

/**
 * Labels of the chip that drives the 40-pin header, most specific first:
 * Pi 5 (RP1), Pi 4/400/CM4 (BCM2711), Pi 1-3/Zero (BCM2835/6/7).
 */
export const PI_GPIO_CHIP_LABELS: readonly string[] = ['pinctrl-rp1', 'pinctrl-bcm2711', 'pinctrl-bcm2835'];

export interface GpioChipInfo {
  /** `gpiochip512` */
  name: string;
  base: number;
  ngpio: number;
  label: string;
}

/** The gpiochips under `root`, by base. Throws `ERR_GPIO_SYSFS` when `root` is missing. */
export function listGpioChips(root = DEFAULT_SYSFS_GPIO_ROOT): GpioChipInfo[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new GpioError(
      'ERR_GPIO_SYSFS',
      `sysfs GPIO not found: ${root} does not exist (a kernel without CONFIG_GPIO_SYSFS, or not a Raspberry Pi); the gpio hook and LED drivers need it, use driver "sim" here`,
    );
  }
  const chips: GpioChipInfo[] = [];
  for (const name of readdirSync(root)) {
    if (!/^gpiochip\d+$/.test(name)) continue;
    const read = (file: string) => readFileSync(join(root, name, file), 'utf8').trim();
    try {
      const base = Number(read('base'));
      const ngpio = Number(read('ngpio'));
      if (Number.isInteger(base) && Number.isInteger(ngpio)) chips.push({ name, base, ngpio, label: read('label') });
    } catch {
      // A chip whose attributes cannot be read is not one we can use; it shows in the error's list by its absence.
      continue;
    }
  }
  return chips.sort((a, b) => a.base - b.base);
}

/**
 * The chip of the 40-pin header: the first of `labels` (in that order) that
 * a gpiochip carries. Throws `ERR_GPIO_SYSFS` or `ERR_GPIO_CHIP` naming what
 * was looked for and what was found.
 */
export function findGpioChip(root = DEFAULT_SYSFS_GPIO_ROOT, labels: readonly string[] = PI_GPIO_CHIP_LABELS): GpioChipInfo {
  const chips = listGpioChips(root);
  for (const label of labels) {
    const chip = chips.find((c) => c.label === label);
    if (chip) return chip;
  }
  const found = chips.length === 0 ? 'no gpiochip* entries' : chips.map((c) => `${c.name} "${c.label}" (base ${c.base}, ${c.ngpio} lines)`).join(', ');
  throw new GpioError('ERR_GPIO_CHIP', `no Raspberry Pi GPIO chip under ${root}: looked for a gpiochip labelled ${labels.map((l) => `"${l}"`).join(' or ')}, found ${found}`);
}

/** sysfs number of a BCM line on `chip`. Throws `ERR_GPIO_PIN` for a line the chip does not have. */
export function sysfsGpioNumber(chip: GpioChipInfo, bcm: number): number {
  if (!Number.isInteger(bcm) || bcm < 0 || bcm >= chip.ngpio) {
    throw new GpioError('ERR_GPIO_PIN', `GPIO ${bcm} (BCM): ${chip.name} "${chip.label}" has lines 0..${chip.ngpio - 1}`);
  }
  return chip.base + bcm;
}

/** Maps BCM numbers through the chip found under `root` (looked up once). */
export class GpioNumbering {
  readonly chip: GpioChipInfo;

  constructor(root = DEFAULT_SYSFS_GPIO_ROOT, labels: readonly string[] = PI_GPIO_CHIP_LABELS) {
    this.chip = findGpioChip(root, labels);
  }

  sysfs(bcm: number): number {
    return sysfsGpioNumber(this.chip, bcm);
  }
}
