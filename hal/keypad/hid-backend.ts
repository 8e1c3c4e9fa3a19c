/**
 * The seam between the `hid` keypad driver and node-hid: the few calls the
 * driver makes, behind an interface a test can fake (a keypad that is
 * plugged, unplugged, refused). `nodeHidBackend()` is the real one.
 *
 * node-hid is loaded when the first `hid` keypad opens, not when this module
 * is imported, so a machine without libusb/libudev can run the sim driver;
 * when it cannot load, the error says which Debian packages it needs.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { KeypadError } from './errors.js';

/** What a device scan reports of one HID interface (node-hid's `Device`). */
export interface HidDeviceInfo {
  path?: string;
  vendorId: number;
  productId: number;
  product?: string;
  manufacturer?: string;
  interface: number;
  /** From the report descriptor: 0x01 (Generic Desktop) with usage 0x06 is a keyboard. */
  usagePage?: number;
  usage?: number;
}

/** An open device: reports arrive through `onData`, a read failure (unplugged) through `onError`. */
export interface HidHandle {
  onData(listener: (data: Buffer) => void): void;
  onError(listener: (err: Error) => void): void;
  close(): void;
}

export interface HidBackend {
  /** All HID interfaces present now. */
  devices(): HidDeviceInfo[];
  /** Open a device by its path (`/dev/hidraw0`). Throws as node-hid does. */
  open(path: string): HidHandle;
  /** Throws the errno error (`EACCES`, `ENOENT`) when this process cannot read and write `path`. */
  access(path: string): void;
}

interface NodeHidModule {
  devices(): HidDeviceInfo[];
  HID: new (path: string) => {
    on(event: 'data', listener: (data: Buffer) => void): void;
    on(event: 'error', listener: (err: Error) => void): void;
    close(): void;
  };
}

let loaded: NodeHidModule | undefined;

function loadNodeHid(): NodeHidModule {
  if (loaded) return loaded;
  try {
    const mod = createRequire(import.meta.url)('node-hid') as NodeHidModule;
    mod.devices(); // loads the native binding: fails here when a shared library is missing
    loaded = mod;
    return mod;
  } catch (err) {
    throw new KeypadError(
      'ERR_KEYPAD_UNAVAILABLE',
      `hid keypad: node-hid cannot be loaded (${(err as Error).message}); it needs the Debian packages libusb-1.0-0 and libudev1 (apt-get install libusb-1.0-0 libudev1)`,
      { cause: err },
    );
  }
}

/** The real backend: node-hid's hidraw binding. Throws `ERR_KEYPAD_UNAVAILABLE` when node-hid cannot load. */
export function nodeHidBackend(): HidBackend {
  const hid = loadNodeHid();
  return {
    devices: () => hid.devices(),
    open(path) {
      const device = new hid.HID(path);
      return {
        onData: (listener) => device.on('data', listener),
        onError: (listener) => device.on('error', listener),
        close: () => device.close(),
      };
    },
    access(path) {
      // open(2), not access(2): it checks the effective user, as hidapi's open does.
      closeSync(openSync(path, constants.O_RDWR | constants.O_NONBLOCK));
    },
  };
}
