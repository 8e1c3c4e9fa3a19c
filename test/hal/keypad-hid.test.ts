/**
 * The hid keypad driver behind its node-hid seam: device choice, keys from
 * reports, unplug/replug with the 1 s rescan, permission and other open
 * faults (reported, never thrown), close; then the real node-hid backend as
 * far as this machine allows (no HID device: loading the binding, and a
 * permission refusal from hidapi's own open(2)).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HalLog } from '../../hal/log.js';
import { HidKeypad, openKeypad, KeypadError, nodeHidBackend, udevRuleFor, SimKeypad } from '../../hal/keypad/index.js';
import type { HidBackend, HidDeviceInfo, HidHandle, KeypadFault, KeypadDeviceInfo } from '../../hal/keypad/index.js';

const KEYPAD: HidDeviceInfo = { path: '/dev/hidraw0', vendorId: 0x05a4, productId: 0x9759, product: 'USB Keypad', manufacturer: 'ORTEK', interface: 0, usagePage: 0x01, usage: 0x06 };
const CONSUMER: HidDeviceInfo = { path: '/dev/hidraw1', vendorId: 0x05a4, productId: 0x9759, product: 'USB Keypad', interface: 1, usagePage: 0x0c, usage: 0x01 };
const MOUSE: HidDeviceInfo = { path: '/dev/hidraw2', vendorId: 0x046d, productId: 0xc077, product: 'USB Optical Mouse', interface: 0, usagePage: 0x01, usage: 0x02 };

class FakeHandle implements HidHandle {
  #data: ((data: Buffer) => void) | undefined;
  #error: ((err: Error) => void) | undefined;
  closed = false;
  constructor(readonly path: string) {}
  onData(listener: (data: Buffer) => void): void {
    this.#data = listener;
  }
  onError(listener: (err: Error) => void): void {
    this.#error = listener;
  }
  close(): void {
    this.closed = true;
  }
  /** A report as node-hid delivers it. */
  send(hex: string): void {
    if (!this.closed) this.#data?.(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
  }
  /** node-hid's read failing, as when the keypad is pulled out. */
  fail(message = 'could not read from HID device'): void {
    this.#error?.(new Error(message));
  }
}

/** HID devices as node-hid's hidraw backend shows them; errors worded as node-hid words them. */
class FakeHid implements HidBackend {
  present: HidDeviceInfo[] = [];
  /** path → errno the open(2) fails with. */
  refuse = new Map<string, string>();
  handles: FakeHandle[] = [];
  scans = 0;
  scanError: Error | undefined;

  devices(): HidDeviceInfo[] {
    this.scans++;
    if (this.scanError) throw this.scanError;
    return this.present.map((d) => ({ ...d }));
  }
  open(path: string): HidHandle {
    const errno = this.refuse.get(path);
    const text = errno === 'EACCES' ? 'Permission denied' : errno === 'EBUSY' ? 'Device or resource busy' : 'No such file or directory';
    if (errno !== undefined || !this.present.some((d) => d.path === path)) {
      throw new Error(`cannot open device with path ${path}: Failed to open a device with path '${path}': ${text}`);
    }
    const handle = new FakeHandle(path);
    this.handles.push(handle);
    return handle;
  }
  access(path: string): void {
    const errno = this.refuse.get(path) ?? (this.present.some((d) => d.path === path) ? undefined : 'ENOENT');
    if (errno) throw Object.assign(new Error(`${errno}: ${path}`), { code: errno });
  }
  last(): FakeHandle {
    const h = this.handles.at(-1);
    if (!h) throw new Error('nothing opened');
    return h;
  }
}

interface Recorded {
  keys: string[];
  connected: KeypadDeviceInfo[];
  disconnected: string[];
  faults: KeypadFault[];
}

function record(keypad: HidKeypad | SimKeypad): Recorded {
  const r: Recorded = { keys: [], connected: [], disconnected: [], faults: [] };
  keypad.on('key', (k) => r.keys.push(k));
  keypad.on('connected', (d) => r.connected.push(d));
  keypad.on('disconnected', (why) => r.disconnected.push(why));
  keypad.on('fault', (f) => r.faults.push(f));
  return r;
}

function recordingLog() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  const log: HalLog = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
  return { log, lines };
}

const KEY_2 = '00 00 5a 00 00 00 00 00';
const KEY_0 = '00 00 62 00 00 00 00 00';
const NONE = '00 00 00 00 00 00 00 00';

describe('hid keypad (fake node-hid)', () => {
  let hid: FakeHid;
  const open: HidKeypad[] = [];
  function keypad(options: { device?: string; keymap?: Record<string, string>; log?: HalLog } = {}): HidKeypad {
    const k = new HidKeypad({ ...options, backend: hid });
    open.push(k);
    return k;
  }

  beforeEach(() => {
    vi.useFakeTimers();
    hid = new FakeHid();
  });
  afterEach(async () => {
    for (const k of open.splice(0)) await k.close();
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  it('opens the first keyboard-like device on the next tick and turns reports into keys', () => {
    hid.present = [MOUSE, CONSUMER, KEYPAD];
    const k = keypad();
    const r = record(k);
    expect(k.connected).toBe(false);
    vi.advanceTimersByTime(0);
    expect(k.connected).toBe(true);
    expect(hid.handles.map((h) => h.path)).toEqual(['/dev/hidraw0']);
    expect(r.connected).toEqual([{ path: '/dev/hidraw0', vendorId: 0x05a4, productId: 0x9759, product: 'USB Keypad', manufacturer: 'ORTEK' }]);
    for (const report of [KEY_2, NONE, KEY_0, NONE, '00 00 58 00 00 00 00 00', NONE]) hid.last().send(report);
    expect(r.keys).toEqual(['2', '0', '#']);
    expect(k.status()).toEqual({ driver: 'hid', connected: true, device: r.connected[0] });
  });

  it('by vendor:product takes the keyboard interface of a composite keypad; by path takes that node', () => {
    hid.present = [CONSUMER, KEYPAD, MOUSE];
    keypad({ device: '05A4:9759' });
    vi.advanceTimersByTime(0);
    expect(hid.last().path).toBe('/dev/hidraw0');

    keypad({ device: '/dev/hidraw2' });
    vi.advanceTimersByTime(0);
    expect(hid.last().path).toBe('/dev/hidraw2');
  });

  it('uses the configured keymap', () => {
    hid.present = [KEYPAD];
    const k = keypad({ keymap: { '0x5a': 'conference', '0x62': 'none' } });
    const r = record(k);
    vi.advanceTimersByTime(0);
    for (const report of [KEY_2, NONE, KEY_0, NONE]) hid.last().send(report);
    expect(r.keys).toEqual(['conference']);
  });

  it('survives unplug and replug: disconnected once, a rescan every second, connected again at the new node', () => {
    hid.present = [KEYPAD];
    const { log, lines } = recordingLog();
    const k = keypad({ log });
    const r = record(k);
    vi.advanceTimersByTime(0);
    const first = hid.last();
    first.send(KEY_2); // held while pulled out

    hid.present = [];
    first.fail();
    expect(r.disconnected).toEqual(['read failed: could not read from HID device']);
    expect(k.connected).toBe(false);
    expect(first.closed).toBe(true);
    first.fail(); // a second error from the dead handle changes nothing
    expect(r.disconnected).toHaveLength(1);

    const scans = hid.scans;
    vi.advanceTimersByTime(5000);
    expect(hid.scans - scans).toBe(5);
    expect(r.connected).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'keypad not found, waiting for it')).toHaveLength(1);

    hid.present = [{ ...KEYPAD, path: '/dev/hidraw3' }];
    vi.advanceTimersByTime(1000);
    expect(k.connected).toBe(true);
    expect(r.connected.map((d) => d.path)).toEqual(['/dev/hidraw0', '/dev/hidraw3']);
    // The key held while unplugged does not count as held on the new device.
    hid.last().send(KEY_2);
    expect(r.keys).toEqual(['2', '2']);
    expect(vi.getTimerCount()).toBe(0); // no scanning while connected
    expect(r.faults).toEqual([]);
  });

  it('waits for a keypad that is not there at start', () => {
    const k = keypad({ device: '05a4:9759' });
    const r = record(k);
    vi.advanceTimersByTime(3000);
    expect(k.connected).toBe(false);
    expect(k.status()).toEqual({ driver: 'hid', connected: false });
    hid.present = [KEYPAD];
    vi.advanceTimersByTime(1000);
    expect(r.connected).toHaveLength(1);
    expect(r.disconnected).toEqual([]);
  });

  it('reports a refused hidraw node as ERR_KEYPAD_PERMISSION with the udev rule, once, and connects when fixed', () => {
    hid.present = [KEYPAD];
    hid.refuse.set('/dev/hidraw0', 'EACCES');
    const { log, lines } = recordingLog();
    const k = keypad({ log });
    const r = record(k);
    vi.advanceTimersByTime(10_000);
    expect(r.faults).toHaveLength(1);
    const fault = r.faults[0] as KeypadFault;
    expect(fault.code).toBe('ERR_KEYPAD_PERMISSION');
    expect(fault.message).toContain('hid keypad /dev/hidraw0 (05a4:9759 "USB Keypad"): permission denied (EACCES)');
    expect(fault.message).toContain('SUBSYSTEM=="hidraw", ATTRS{idVendor}=="05a4", ATTRS{idProduct}=="9759", MODE="0660", GROUP="plugdev"');
    expect(fault.message).toContain('udevadm control --reload-rules && udevadm trigger');
    expect(k.status().fault).toEqual(fault);
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1);

    hid.refuse.clear();
    vi.advanceTimersByTime(1000);
    expect(k.connected).toBe(true);
    expect(k.status().fault).toBeUndefined();
  });

  it('reports other open failures and scan failures as faults without throwing', () => {
    hid.present = [KEYPAD];
    hid.refuse.set('/dev/hidraw0', 'EBUSY');
    hid.access = () => {}; // the node opens fine for access(); hidapi's open still fails
    const k = keypad();
    const r = record(k);
    vi.advanceTimersByTime(0);
    expect(r.faults).toEqual([{ code: 'ERR_KEYPAD_OPEN', message: "hid keypad /dev/hidraw0: cannot open it: cannot open device with path /dev/hidraw0: Failed to open a device with path '/dev/hidraw0': Device or resource busy" }]);

    hid.scanError = new Error('udev_enumerate failed');
    vi.advanceTimersByTime(1000);
    expect(r.faults[1]).toEqual({ code: 'ERR_KEYPAD_SCAN', message: 'hid keypad: listing HID devices failed: udev_enumerate failed' });
    expect(k.connected).toBe(false);
  });

  it('ignores reports that are not boot keyboard reports, logging each length once', () => {
    hid.present = [KEYPAD];
    const { log, lines } = recordingLog();
    const k = keypad({ log });
    const r = record(k);
    vi.advanceTimersByTime(0);
    hid.last().send('02 e9 00'); // a consumer-control report (volume up)
    hid.last().send('02 00 00');
    hid.last().send(KEY_2);
    expect(r.keys).toEqual(['2']);
    expect(lines.filter((l) => l.msg === 'keypad report ignored').map((l) => (l.obj as { length: number }).length)).toEqual([3]);
  });

  it('a throwing listener is logged and the others still get the key', () => {
    hid.present = [KEYPAD];
    const { log, lines } = recordingLog();
    const k = keypad({ log });
    k.on('key', () => {
      throw new Error('listener bug');
    });
    const r = record(k);
    vi.advanceTimersByTime(0);
    hid.last().send(KEY_2);
    expect(r.keys).toEqual(['2']);
    expect(lines.find((l) => l.msg === 'keypad listener failed')).toBeDefined();
  });

  it('close releases the device, stops scanning and emits nothing more; twice is harmless', async () => {
    hid.present = [KEYPAD];
    const k = keypad();
    const r = record(k);
    vi.advanceTimersByTime(0);
    const handle = hid.last();
    await k.close();
    await k.close();
    expect(handle.closed).toBe(true);
    handle.fail();
    expect(r.disconnected).toEqual([]);
    expect(k.connected).toBe(false);

    const absent = keypad({ device: '/dev/hidraw9' });
    vi.advanceTimersByTime(2000);
    await absent.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('openKeypad', () => {
  it('opens the sim driver, and refuses unknown drivers and bad options before loading node-hid', () => {
    expect(openKeypad({ driver: 'sim' })).toBeInstanceOf(SimKeypad);
    expect(() => openKeypad({ driver: 'usb' } as never)).toThrow(new KeypadError('ERR_KEYPAD_DRIVER', 'keypad driver "usb": unknown, expected "sim" or "hid"'));
    expect(() => openKeypad({ driver: 'hid', device: 'hidraw0' }, { hidBackend: new FakeHid() })).toThrow(/device "hidraw0", expected a hidraw path such as \/dev\/hidraw0 or "vendorId:productId" in hex/);
    expect(() => openKeypad({ driver: 'hid', keymap: { '0x59': 'Redial' } }, { hidBackend: new FakeHid() })).toThrow(/keypad keymap: usage 0x59: key "Redial"/);
  });

  it('udevRuleFor without ids matches every hidraw node', () => {
    expect(udevRuleFor()).toBe('SUBSYSTEM=="hidraw", MODE="0660", GROUP="plugdev"');
  });
});

describe('sim keypad', () => {
  it('presses keys, types digit strings and refuses anything else before pressing', async () => {
    const k = new SimKeypad();
    const r = record(k);
    expect(k.press('redial')).toBe(true);
    expect(k.type('202#')).toBe(4);
    expect(() => k.type('20a')).toThrow(new KeypadError('ERR_KEYPAD_KEY', 'sim keypad: keys "20a", expected only 0-9, * and #'));
    expect(() => k.press('Mute')).toThrow(/sim keypad: key "Mute"/);
    expect(r.keys).toEqual(['redial', '2', '0', '2', '#']);
    expect(k.status()).toEqual({ driver: 'sim', connected: true, device: { path: 'sim', product: 'simulated keypad' } });

    k.unplug();
    expect(k.press('1')).toBe(false);
    k.plug();
    expect(r.disconnected).toEqual(['unplugged']);
    expect(r.connected).toHaveLength(1);

    await k.close();
    expect(k.press('1')).toBe(false);
    expect(r.keys).toHaveLength(5);
  });
});

describe('hid keypad on the real node-hid', () => {
  const dir = mkdtempSync(join(tmpdir(), 'partyline-hid-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the hidraw binding and lists devices (none on this machine)', () => {
    const backend = nodeHidBackend();
    expect(Array.isArray(backend.devices())).toBe(true);
  });

  it('a node the user may not open becomes ERR_KEYPAD_PERMISSION from hidapi\'s own open(2)', async () => {
    // A root-owned 0600 file stands in for /dev/hidraw0 as udev leaves it
    // without a rule; hidapi opens it before any ioctl, so EACCES comes first.
    const node = join(dir, 'hidraw0');
    writeFileSync(node, '');
    chmodSync(node, 0o600);
    const backend = nodeHidBackend();
    const seteuid = process.seteuid;
    expect(process.geteuid?.(), 'needs root to open as another user').toBe(0);
    if (!seteuid) return;
    const faults: KeypadFault[] = [];
    vi.useFakeTimers();
    const k = new HidKeypad({ device: node, backend });
    k.on('fault', (f) => faults.push(f));
    seteuid(65534); // nobody, for this open only
    try {
      vi.advanceTimersByTime(0);
    } finally {
      seteuid(0);
    }
    await k.close();
    vi.useRealTimers();
    expect(faults).toHaveLength(1);
    expect(faults[0]?.code).toBe('ERR_KEYPAD_PERMISSION');
    expect(faults[0]?.message).toContain(`hid keypad ${node}: permission denied`);

    // As root the same file opens but is no hidraw node: hidapi's ioctl fails.
    vi.useFakeTimers();
    const asRoot = new HidKeypad({ device: node, backend });
    asRoot.on('fault', (f) => faults.push(f));
    vi.advanceTimersByTime(0);
    await asRoot.close();
    vi.useRealTimers();
    expect(faults[1]?.code).toBe('ERR_KEYPAD_OPEN');
    expect(faults[1]?.message).toContain('not a HIDRAW device');
  });
});
