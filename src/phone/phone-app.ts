import type { CallLogEntry, CallView } from '../call/call-manager.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../system/logging.js';

/**
 * The phone application (DESIGN.md "Layers and folders" → phone/): what a
 * desk phone does with its handset, keypad and LEDs, on top of the call
 * layer. A state machine driven by HAL events (hook, keys) and call events;
 * its effects go through small ports (tones, ringer, LEDs, calls) and its
 * timers through an injected scheduler, so tests run it on a fake clock.
 *
 *   idle ──off-hook──▶ dialtone ──digit──▶ dialing ──# or pause──▶ (call) ringback ──answered──▶ in-call
 *    ▲  ◀──incoming── ringing ──off-hook──▶ in-call ──hold──▶ held
 *    └──────────────── on-hook from anywhere (ends or declines the call) ◀── busy-tone (busy, unknown number, far end hung up)
 */

export const PHONE_STATES = ['idle', 'dialtone', 'dialing', 'calling', 'ringback', 'ringing', 'in-call', 'held', 'busy-tone'] as const;
export type PhoneState = (typeof PHONE_STATES)[number];

export type ToneName = 'dial' | 'ringback' | 'busy' | 'congestion' | 'callWaiting';
export type LedState = 'off' | 'on' | 'blink-slow' | 'blink-fast';

/** What the phone needs of the call layer (src/call/call-manager.ts). */
export interface PhoneCalls {
  call(user: string): Promise<CallView>;
  answer(): Promise<CallView>;
  hangup(): Promise<unknown>;
  hold(held: boolean): Promise<CallView>;
  dtmf(digits: string): Promise<unknown>;
  view(): CallView | null;
}

export interface PhonePorts {
  calls: PhoneCalls;
  /** Play a call-progress tone to the handset (null: none). */
  tone(name: ToneName | null): void;
  /** Ring the bell (or not). */
  ring(on: boolean): void;
  /** Set an LED: `line` (calls), `message` (missed calls), `mute`. */
  led(name: string, state: LedState): void;
  /** Microphone muted (the far end hears silence). */
  mute(muted: boolean): void;
  /** Handset volume, 0–10. */
  volume(level: number): void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
  log: Logger;
}

export interface DialPlan {
  /** Extension number → user. */
  extensions: Readonly<Record<string, string>>;
  /** Speed-dial digits → an extension number or a user name. */
  speedDials: Readonly<Record<string, string>>;
  /** Dialling ends this long after the last digit. */
  interDigitTimeoutMs: number;
}

/** A type, not an interface: it fits the control API's loosely typed status. */
export type PhoneStatus = {
  state: PhoneState;
  /** The display line: what a one-line LCD would show. */
  display: string;
  hook: 'on' | 'off';
  dialled: string;
  muted: boolean;
  volume: number;
  missedCalls: number;
};

/** Where dialled digits go: an extension, a speed dial (to an extension or a user), or nowhere. */
export function resolveDialled(digits: string, plan: DialPlan): { user: string } | { error: string } {
  const viaExtension = (n: string): string | undefined => plan.extensions[n];
  const direct = viaExtension(digits);
  if (direct) return { user: direct };
  const speed = plan.speedDials[digits];
  if (speed) {
    const target = /^[0-9]+$/.test(speed) ? viaExtension(speed) : speed;
    if (target) return { user: target };
    return { error: `speed dial ${digits}: no extension ${speed}` };
  }
  return { error: `no extension ${digits}` };
}

const MAX_DIGITS = 32;

export class PhoneApp {
  #ports: PhonePorts;
  #plan: () => DialPlan;
  #state: PhoneState = 'idle';
  #hook: 'on' | 'off' = 'on';
  #digits = '';
  #display = 'ready';
  #timer: unknown;
  #lastDialled: string | undefined;
  #muted = false;
  #volume = 5;
  #missed = 0;
  /** The call this phone placed or took, while there is one. */
  #callId: string | undefined;

  constructor(ports: PhonePorts, plan: () => DialPlan) {
    this.#ports = ports;
    this.#plan = plan;
    this.#ports.led('power', 'on');
    this.#enter('idle', 'ready');
  }

  status(): PhoneStatus {
    return { state: this.#state, display: this.#display, hook: this.#hook, dialled: this.#digits, muted: this.#muted, volume: this.#volume, missedCalls: this.#missed };
  }

  // ---- HAL events ---------------------------------------------------------

  offHook(): void {
    if (this.#hook === 'off') return;
    this.#hook = 'off';
    if (this.#state === 'ringing') {
      this.#answer();
      return;
    }
    if (this.#state === 'idle') this.#enter('dialtone', 'dial');
  }

  onHook(): void {
    if (this.#hook === 'on') return;
    this.#hook = 'on';
    this.#clearTimer();
    const hadCall = this.#callId !== undefined || this.#state === 'calling' || this.#state === 'ringback' || this.#state === 'in-call' || this.#state === 'held';
    this.#digits = '';
    this.#setMuted(false);
    this.#enter('idle', 'ready');
    if (hadCall && this.#ports.calls.view()) this.#act('hang up', () => this.#ports.calls.hangup());
  }

  key(key: string): void {
    switch (this.#state) {
      case 'dialtone':
      case 'dialing':
        this.#dialKey(key);
        return;
      case 'in-call':
      case 'held':
        this.#callKey(key);
        return;
      case 'idle':
        if (key === 'redial' && this.#lastDialled) {
          // Redial on hook: a desk phone goes off hook on the speaker; we need the handset lifted.
          this.#display = `lift the handset to redial ${this.#lastDialled}`;
        }
        if (key === 'volume-up' || key === 'volume-down') this.#changeVolume(key);
        return;
      case 'ringing':
        if (key === 'volume-up' || key === 'volume-down') this.#changeVolume(key);
        return;
      default:
        if (key === 'volume-up' || key === 'volume-down') this.#changeVolume(key);
    }
  }

  // ---- call events --------------------------------------------------------

  /** The call layer's view changed (CallManager 'state'). */
  callChanged(view: CallView | null): void {
    if (!view) return; // endings come through callEnded
    if (view.direction === 'incoming' && view.state === 'ringing' && this.#callId === undefined) {
      this.#callId = view.id;
      if (this.#hook === 'off') {
        // Busy lifting the handset for something else: the call waits, the tone says so.
        this.#ports.tone('callWaiting');
        this.#display = `call from ${view.peer}`;
        return;
      }
      this.#enter('ringing', `call from ${view.peer}`);
      return;
    }
    if (view.id !== this.#callId) return;
    if (view.state === 'ringing' && this.#state === 'calling') this.#enter('ringback', `ringing ${view.peer}`);
    else if (view.state === 'active' && this.#state !== 'in-call' && this.#hook === 'off') this.#enter('in-call', `in call with ${view.peer}`);
    else if (view.state === 'held' && this.#state === 'in-call') this.#enter('held', view.held === 'remote' ? `${view.peer} holds the call` : `holding ${view.peer}`);
    else if (view.state === 'active' && this.#state === 'held') this.#enter('in-call', `in call with ${view.peer}`);
  }

  /** A call ended (CallManager 'ended'). */
  callEnded(entry: CallLogEntry): void {
    if (entry.id !== this.#callId) {
      if (entry.missed) this.#missedCall(entry.peer);
      return;
    }
    this.#callId = undefined;
    if (entry.missed) this.#missedCall(entry.peer);
    if (this.#hook === 'on') {
      this.#enter('idle', entry.missed ? `missed call from ${entry.peer}` : 'ready');
      return;
    }
    // Handset still lifted: say how it ended until it goes down.
    const why: Record<string, string> = {
      completed: `${entry.peer} hung up`,
      busy: `${entry.peer} is busy`,
      declined: `${entry.peer} declined`,
      'no-answer': `no answer from ${entry.peer}`,
      unreachable: `${entry.peer} cannot be reached`,
      failed: `call failed: ${entry.reason ?? 'error'}`,
      cancelled: 'call cancelled',
      'answered-elsewhere': 'answered on another phone',
      missed: `missed call from ${entry.peer}`,
    };
    this.#enter('busy-tone', why[entry.outcome] ?? entry.outcome, entry.outcome === 'busy' ? 'busy' : 'congestion');
  }

  // ---- inside ---------------------------------------------------------------

  #dialKey(key: string): void {
    if (key === 'redial') {
      if (this.#lastDialled) this.#dial(this.#lastDialled);
      return;
    }
    if (key === '#') {
      if (this.#digits) this.#dial(this.#digits);
      return;
    }
    if (!/^[0-9*]$/.test(key)) return;
    if (this.#digits.length >= MAX_DIGITS) return;
    this.#digits += key;
    this.#enter('dialing', this.#digits);
    this.#clearTimer();
    this.#timer = this.#ports.setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === 'dialing' && this.#digits) this.#dial(this.#digits);
    }, this.#plan().interDigitTimeoutMs);
  }

  #dial(digits: string): void {
    this.#clearTimer();
    this.#lastDialled = digits;
    const target = resolveDialled(digits, this.#plan());
    if ('error' in target) {
      this.#enter('busy-tone', target.error, 'congestion');
      return;
    }
    this.#enter('calling', `calling ${target.user}`);
    this.#ports.calls.call(target.user).then(
      (view) => {
        if (this.#state !== 'calling' || this.#hook === 'on') return;
        this.#callId = view.id;
        this.#enter('ringback', `ringing ${target.user}`);
        // The callee may have answered already.
        this.callChanged(this.#ports.calls.view());
      },
      (err: unknown) => {
        if (this.#state !== 'calling') return;
        const code = (err as { code?: string }).code;
        this.#enter('busy-tone', errorMessage(err), code === 'ERR_USER_BUSY' ? 'busy' : 'congestion');
      },
    );
  }

  #callKey(key: string): void {
    if (/^[0-9*#]$/.test(key)) {
      this.#act('send DTMF', () => this.#ports.calls.dtmf(key));
      return;
    }
    switch (key) {
      case 'hold':
        this.#act(this.#state === 'held' ? 'resume' : 'hold', () => this.#ports.calls.hold(this.#state !== 'held'));
        return;
      case 'mute':
        this.#setMuted(!this.#muted);
        return;
      case 'volume-up':
      case 'volume-down':
        this.#changeVolume(key);
        return;
      default:
    }
  }

  #answer(): void {
    this.#ports.ring(false);
    this.#enter('in-call', 'answering');
    this.#act('answer', async () => {
      const view = await this.#ports.calls.answer();
      this.#display = `in call with ${view.peer}`;
    });
  }

  #missedCall(peer: string): void {
    this.#missed++;
    this.#ports.led('message', 'blink-slow');
    this.#display = `missed call from ${peer}`;
  }

  #changeVolume(key: 'volume-up' | 'volume-down'): void {
    this.#volume = Math.max(0, Math.min(10, this.#volume + (key === 'volume-up' ? 1 : -1)));
    this.#ports.volume(this.#volume);
    this.#display = `volume ${this.#volume}`;
  }

  #setMuted(muted: boolean): void {
    if (muted === this.#muted) return;
    this.#muted = muted;
    this.#ports.mute(muted);
    this.#ports.led('mute', muted ? 'on' : 'off');
  }

  /** Enter a state: its tone, ringer and line LED. */
  #enter(state: PhoneState, display: string, tone?: ToneName): void {
    const ringing = state === 'ringing';
    if (this.#state === 'ringing' && !ringing) this.#ports.ring(false);
    this.#state = state;
    this.#display = display;
    if (state !== 'dialing') this.#clearTimer();
    if (state === 'idle' || state === 'dialtone') this.#digits = state === 'idle' ? '' : this.#digits;
    const toneFor: Partial<Record<PhoneState, ToneName>> = { dialtone: 'dial', ringback: 'ringback' };
    this.#ports.tone(tone ?? toneFor[state] ?? null);
    if (ringing) this.#ports.ring(true);
    const led: Record<PhoneState, LedState> = {
      idle: 'off',
      dialtone: 'on',
      dialing: 'on',
      calling: 'on',
      ringback: 'on',
      ringing: 'blink-fast',
      'in-call': 'on',
      held: 'blink-slow',
      'busy-tone': 'on',
    };
    this.#ports.led('line', led[state]);
    if (state === 'idle' && this.#missed === 0) this.#ports.led('message', 'off');
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#ports.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #act(what: string, action: () => Promise<unknown>): void {
    action().catch((err: unknown) => {
      this.#ports.log.info({ err: errorMessage(err) }, `phone: cannot ${what}`);
      if (what === 'answer' && this.#hook === 'off') this.#enter('busy-tone', errorMessage(err), 'congestion');
    });
  }

  /** Clear the missed-call count (the user looked at them). */
  clearMissed(): void {
    this.#missed = 0;
    this.#ports.led('message', 'off');
  }
}
