/**
 * The `hid` keypad driver: a USB HID keypad (or keyboard) read through
 * node-hid's hidraw backend.
 *
 * - Which device: `device` as a hidraw path (`/dev/hidraw0`), as
 *   `vendorId:productId` in hex (`05a4:9759`; of a composite device the
 *   keyboard interface is taken), or unset for the first keyboard-like device
 *   (report descriptor usage page 0x01, usage 0x06).
 * - Reports are boot-protocol keyboard reports (report.ts) turned into keys by
 *   the keymap (keymap.ts): one `key` event per key-down.
 * - Unplug/replug: a read error or close (unplugged) emits `disconnected`;
 *   the driver scans for the device every `retryMs` (1 s) until it is back
 *   and emits `connected`. A keypad missing at start is looked for the same
 *   way. Nothing is thrown out of the event loop.
 * - A device that is there but cannot be opened for lack of permission is a
 *   fault (`ERR_KEYPAD_PERMISSION`), logged as an error once and emitted as
 *   `fault`, whose message carries the udev rule that fixes it; the driver
 *   keeps retrying, so fixing the rule and replugging is enough.
 */
import { Emitter } from '../events.js';
import { silentLog } from '../log.js';
import type { HalLog } from '../log.js';
import { KeypadError } from './errors.js';
import type { HidBackend, HidDeviceInfo, HidHandle } from './hid-backend.js';
import { buildKeymap } from './keymap.js';
import { KeyReportDecoder } from './report.js';
import type { Keypad, KeypadDeviceInfo, KeypadEvents, KeypadFault, KeypadStatus } from './types.js';

export interface HidKeypadOptions {
  /** hidraw path, `vendorId:productId` (hex) or unset (first keyboard-like device). */
  device?: string;
  /** Changes to the default keymap (see keymap.ts). */
  keymap?: Record<string, string>;
  /** The node-hid calls (default: the real node-hid). */
  backend: HidBackend;
  /** Time between scans while the keypad is absent, ms (default 1000). */
  retryMs?: number;
  log?: HalLog;
}

export type DeviceSelector = { kind: 'any' } | { kind: 'path'; path: string } | { kind: 'ids'; vendorId: number; productId: number };

/** Parse `hal.keypad.device`. Throws `ERR_KEYPAD_OPTIONS`. */
export function parseDeviceSelector(device: string | undefined): DeviceSelector {
  if (device === undefined) return { kind: 'any' };
  const ids = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(device);
  if (ids) return { kind: 'ids', vendorId: parseInt(ids[1] as string, 16), productId: parseInt(ids[2] as string, 16) };
  if (device.startsWith('/')) return { kind: 'path', path: device };
  throw new KeypadError('ERR_KEYPAD_OPTIONS', `hid keypad: device ${JSON.stringify(device)}, expected a hidraw path such as /dev/hidraw0 or "vendorId:productId" in hex such as 05a4:9759`);
}

/** Generic Desktop / Keyboard in the report descriptor. */
export function isKeyboardLike(d: HidDeviceInfo): boolean {
  return d.usagePage === 0x01 && d.usage === 0x06;
}

/** The device a selector names among those present, preferring keyboard interfaces. */
export function pickDevice(devices: readonly HidDeviceInfo[], selector: DeviceSelector): HidDeviceInfo | undefined {
  const withPath = devices.filter((d) => typeof d.path === 'string' && d.path.length > 0);
  switch (selector.kind) {
    case 'path':
      return withPath.find((d) => d.path === selector.path);
    case 'ids': {
      const matching = withPath.filter((d) => d.vendorId === selector.vendorId && d.productId === selector.productId);
      return matching.find(isKeyboardLike) ?? [...matching].sort((a, b) => a.interface - b.interface)[0];
    }
    case 'any':
      return withPath.find(isKeyboardLike);
  }
}

/** `05a4:9759` */
export function formatIds(vendorId: number, productId: number): string {
  return `${hex4(vendorId)}:${hex4(productId)}`;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** The udev rule that lets the `plugdev` group read and write the keypad's hidraw node. */
export function udevRuleFor(ids?: { vendorId: number; productId: number }): string {
  const match = ids ? `ATTRS{idVendor}=="${hex4(ids.vendorId)}", ATTRS{idProduct}=="${hex4(ids.productId)}", ` : '';
  return `SUBSYSTEM=="hidraw", ${match}MODE="0660", GROUP="plugdev"`;
}

/** The fault for a hidraw node this process may not open, with the fix. */
export function permissionError(path: string, info?: HidDeviceInfo, cause?: unknown): KeypadError {
  const ids = info ? { vendorId: info.vendorId, productId: info.productId } : undefined;
  const what = info ? ` (${formatIds(info.vendorId, info.productId)}${info.product ? ` "${info.product}"` : ''})` : '';
  return new KeypadError(
    'ERR_KEYPAD_PERMISSION',
    `hid keypad ${path}${what}: permission denied (EACCES) opening it. ` +
      `Add a udev rule, e.g. /etc/udev/rules.d/70-partyline-keypad.rules containing: ${udevRuleFor(ids)} ` +
      '(config/udev/70-partyline-keypad.rules has one), run `udevadm control --reload-rules && udevadm trigger` or replug the keypad, ' +
      'and put the user partyline runs as in the plugdev group',
    { cause },
  );
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export class HidKeypad implements Keypad {
  readonly driver = 'hid' as const;
  readonly #selector: DeviceSelector;
  readonly #decoder: KeyReportDecoder;
  readonly #backend: HidBackend;
  readonly #retryMs: number;
  readonly #log: HalLog;
  readonly #events: Emitter<KeypadEvents>;
  #handle: HidHandle | undefined;
  #device: KeypadDeviceInfo | undefined;
  #fault: KeypadFault | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #waitingLogged = false;
  #badLengths = new Set<number>();
  #closed = false;

  /** Throws `ERR_KEYPAD_OPTIONS` for a bad device or keymap; looks for the device from the next tick on. */
  constructor(options: HidKeypadOptions) {
    this.#selector = parseDeviceSelector(options.device);
    this.#decoder = new KeyReportDecoder(buildKeymap(options.keymap ?? {}));
    this.#backend = options.backend;
    const retryMs = options.retryMs ?? 1000;
    if (!Number.isInteger(retryMs) || retryMs < 1) throw new KeypadError('ERR_KEYPAD_OPTIONS', `hid keypad: retryMs ${retryMs}, expected a positive integer`);
    this.#retryMs = retryMs;
    this.#log = options.log ?? silentLog;
    this.#events = new Emitter((err, event) => this.#log.error({ err, event }, 'keypad listener failed'));
    this.#schedule(0);
  }

  get connected(): boolean {
    return this.#handle !== undefined;
  }

  on<K extends keyof KeypadEvents>(event: K, listener: (...args: KeypadEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  off<K extends keyof KeypadEvents>(event: K, listener: (...args: KeypadEvents[K]) => void): void {
    this.#events.off(event, listener);
  }

  status(): KeypadStatus {
    return {
      driver: 'hid',
      connected: this.connected,
      ...(this.#device && this.connected ? { device: { ...this.#device } } : {}),
      ...(this.#fault ? { fault: { ...this.#fault } } : {}),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#release();
    this.#events.removeAll();
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed || this.#handle) return;
      if (!this.#tryOpen()) this.#schedule(this.#retryMs);
    }, ms);
  }

  /** One attempt to find and open the keypad; true when it is open. */
  #tryOpen(): boolean {
    let info: HidDeviceInfo | undefined;
    let path: string;
    try {
      info = pickDevice(this.#backend.devices(), this.#selector);
    } catch (err) {
      this.#raise(new KeypadError('ERR_KEYPAD_SCAN', `hid keypad: listing HID devices failed: ${(err as Error).message}`, { cause: err }));
      return false;
    }
    if (info?.path !== undefined) path = info.path;
    else if (this.#selector.kind === 'path') path = this.#selector.path;
    else return this.#notFound();

    let handle: HidHandle;
    try {
      handle = this.#backend.open(path);
    } catch (err) {
      return this.#openFailed(path, info, err);
    }
    this.#handle = handle;
    this.#device = {
      path,
      ...(info ? { vendorId: info.vendorId, productId: info.productId } : {}),
      ...(info?.product ? { product: info.product } : {}),
      ...(info?.manufacturer ? { manufacturer: info.manufacturer } : {}),
    };
    this.#fault = undefined;
    this.#waitingLogged = false;
    this.#decoder.reset();
    handle.onData((data) => {
      if (this.#handle === handle) this.#onReport(data);
    });
    handle.onError((err) => {
      if (this.#handle === handle) this.#lost(`read failed: ${err.message}`);
    });
    this.#log.info({ device: this.#device }, 'keypad connected');
    this.#events.emit('connected', { ...this.#device });
    return true;
  }

  #notFound(): boolean {
    if (!this.#waitingLogged) {
      this.#waitingLogged = true;
      this.#log.warn({ selector: this.#selector }, 'keypad not found, waiting for it');
    }
    return false;
  }

  #openFailed(path: string, info: HidDeviceInfo | undefined, err: unknown): boolean {
    const message = (err as Error)?.message ?? String(err);
    let accessCode: string | undefined;
    try {
      this.#backend.access(path);
    } catch (accessErr) {
      accessCode = errnoOf(accessErr) ?? 'EIO';
    }
    if (accessCode === 'ENOENT' || (accessCode === undefined && /no such file/i.test(message))) return this.#notFound();
    if (accessCode === 'EACCES' || accessCode === 'EPERM' || /permission denied|EACCES/i.test(message)) {
      this.#raise(permissionError(path, info, err));
    } else {
      this.#raise(new KeypadError('ERR_KEYPAD_OPEN', `hid keypad ${path}: cannot open it: ${message}`, { cause: err }));
    }
    return false;
  }

  /** Report a fault once (again only when it changes). */
  #raise(error: KeypadError): void {
    if (this.#fault?.code === error.code && this.#fault.message === error.message) return;
    this.#fault = { code: error.code, message: error.message };
    this.#log.error({ err: error, code: error.code }, 'keypad fault');
    this.#events.emit('fault', { ...this.#fault });
  }

  #onReport(data: Buffer): void {
    let decoded;
    try {
      decoded = this.#decoder.decode(data);
    } catch (err) {
      if (!this.#badLengths.has(data.length)) {
        this.#badLengths.add(data.length);
        this.#log.warn({ err, length: data.length }, 'keypad report ignored');
      }
      return;
    }
    if (decoded.unmapped.length > 0) this.#log.debug({ usages: decoded.unmapped }, 'keypad usage not in keymap');
    for (const key of decoded.keys) {
      if (this.#closed || this.#handle === undefined) return;
      this.#events.emit('key', key);
    }
  }

  #lost(reason: string): void {
    this.#release();
    this.#log.warn({ reason }, 'keypad disconnected');
    this.#events.emit('disconnected', reason);
    this.#schedule(this.#retryMs);
  }

  #release(): void {
    const handle = this.#handle;
    this.#handle = undefined;
    this.#decoder.reset();
    if (!handle) return;
    try {
      handle.close();
    } catch (err) {
      this.#log.debug({ err }, 'keypad close failed');
    }
  }
}
