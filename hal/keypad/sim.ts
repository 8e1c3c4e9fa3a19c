/**
 * The simulated keypad (`driver: sim`): keys are pressed by code — the
 * control API (`ctl keys DIGITS`), the demo's terminal, tests. It is
 * connected from the start; `unplug()`/`plug()` play the USB keypad going
 * away and coming back.
 */
import { Emitter } from '../events.js';
import { silentLog } from '../log.js';
import type { HalLog } from '../log.js';
import { KeypadError } from './errors.js';
import { isKeyName } from './types.js';
import type { Keypad, KeypadDeviceInfo, KeypadEvents, KeypadStatus, KeyName } from './types.js';

const SIM_DEVICE: KeypadDeviceInfo = { path: 'sim', product: 'simulated keypad' };

export class SimKeypad implements Keypad {
  readonly driver = 'sim' as const;
  readonly #events: Emitter<KeypadEvents>;
  readonly #log: HalLog;
  #connected = true;
  #closed = false;

  constructor(options: { log?: HalLog } = {}) {
    this.#log = options.log ?? silentLog;
    this.#events = new Emitter((err, event) => this.#log.error({ err, event }, 'keypad listener failed'));
  }

  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  on<K extends keyof KeypadEvents>(event: K, listener: (...args: KeypadEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  off<K extends keyof KeypadEvents>(event: K, listener: (...args: KeypadEvents[K]) => void): void {
    this.#events.off(event, listener);
  }

  /**
   * Press one key (`5`, `#`, `redial`, …). Throws `ERR_KEYPAD_KEY` for
   * something that is not a key name; ignored (returns false) while
   * unplugged or after close.
   */
  press(key: KeyName): boolean {
    if (!isKeyName(key)) throw new KeypadError('ERR_KEYPAD_KEY', `sim keypad: key ${JSON.stringify(key)}, expected 0-9, *, # or a name such as redial`);
    if (!this.connected) return false;
    this.#events.emit('key', key);
    return true;
  }

  /**
   * Press each dial key of `keys` in order (`ctl keys 202#`). Throws
   * `ERR_KEYPAD_KEY`, before pressing anything, when `keys` holds anything
   * but 0-9, * and #. Returns the number of keys pressed.
   */
  type(keys: string): number {
    if (!/^[0-9*#]*$/.test(keys)) throw new KeypadError('ERR_KEYPAD_KEY', `sim keypad: keys ${JSON.stringify(keys)}, expected only 0-9, * and #`);
    let pressed = 0;
    for (const key of keys) if (this.press(key)) pressed++;
    return pressed;
  }

  /** The keypad goes away (emits `disconnected`). */
  unplug(): void {
    if (!this.connected) return;
    this.#connected = false;
    this.#events.emit('disconnected', 'unplugged');
  }

  /** The keypad comes back (emits `connected`). */
  plug(): void {
    if (this.#closed || this.#connected) return;
    this.#connected = true;
    this.#events.emit('connected', { ...SIM_DEVICE });
  }

  status(): KeypadStatus {
    return { driver: 'sim', connected: this.connected, ...(this.connected ? { device: { ...SIM_DEVICE } } : {}) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#events.removeAll();
  }
}
