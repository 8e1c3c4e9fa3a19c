/**
 * The phone application's state machine (src/phone/phone-app.ts) on a fake
 * clock, with a fake call layer: what the handset, keypad, tones, ringer
 * and LEDs do in each situation.
 */
import { describe, expect, it } from 'vitest';
import type { CallLogEntry, CallView } from '../../src/call/call-manager.js';
import { PartylineError } from '../../src/errors.js';
import { PhoneApp, resolveDialled } from '../../src/phone/phone-app.js';
import type { DialPlan, PhoneCalls, ToneName } from '../../src/phone/phone-app.js';
import { silentLogger } from '../../src/system/logging.js';

const PLAN: DialPlan = { extensions: { '201': 'alice', '202': 'bob', '203': 'carol' }, speedDials: { '1': '202', '9': 'dave' }, interDigitTimeoutMs: 4000 };

function view(fields: Partial<CallView>): CallView {
  return {
    id: 'c1', state: 'ringing', peer: 'bob', direction: 'outgoing', path: null, codec: null,
    rtp: { packetsSent: 0, packetsReceived: 0, packetsLost: 0, jitterMs: 0, bytesSent: 0, bytesReceived: 0, datagramsSent: 0, datagramsReceived: 0, srtpRejected: 0, jitterBufferMs: 0, fec: false },
    setup: null, rttMs: null, mos: null, held: null, signalling: 'supernodes', durationS: 0, dtmfReceived: '', startedAt: '', answeredAt: null,
    ...fields,
  };
}

function ended(fields: Partial<CallLogEntry>): CallLogEntry {
  return { id: 'c1', peer: 'bob', direction: 'outgoing', outcome: 'completed', reason: null, startedAt: '', durationS: 1, missed: false, ...fields };
}

/** A fake clock and call layer recording what the phone did. */
function rig(calls: Partial<PhoneCalls> = {}) {
  let now = 0;
  const timers: Array<{ at: number; fn: () => void; id: number }> = [];
  let nextId = 1;
  const log = { tones: [] as Array<ToneName | null>, ring: [] as boolean[], leds: {} as Record<string, string>, called: [] as string[], dtmf: [] as string[], hangups: 0, answers: 0, holds: [] as boolean[], muted: false, volume: 5 };
  let current: CallView | null = null;
  const fake: PhoneCalls = {
    call: async (user) => {
      log.called.push(user);
      current = view({ peer: user });
      return current;
    },
    answer: async () => {
      log.answers++;
      current = view({ state: 'active', direction: 'incoming', peer: current?.peer ?? 'alice' });
      return current;
    },
    hangup: async () => {
      log.hangups++;
      return { ended: 'c1' };
    },
    hold: async (held) => {
      log.holds.push(held);
      return view({ state: held ? 'held' : 'active' });
    },
    dtmf: async (d) => {
      log.dtmf.push(d);
      return { sent: d };
    },
    view: () => current,
    ...calls,
  };
  const phone = new PhoneApp(
    {
      calls: fake,
      tone: (t) => log.tones.push(t),
      ring: (on) => log.ring.push(on),
      led: (name, state) => (log.leds[name] = state),
      mute: (m) => (log.muted = m),
      volume: (v) => (log.volume = v),
      setTimeout: (fn, ms) => {
        const t = { at: now + ms, fn, id: nextId++ };
        timers.push(t);
        return t.id;
      },
      clearTimeout: (id) => {
        const i = timers.findIndex((t) => t.id === id);
        if (i >= 0) timers.splice(i, 1);
      },
      log: silentLogger(),
    },
    () => PLAN,
  );
  const advance = async (ms: number): Promise<void> => {
    now += ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at);
      const due = timers[0];
      if (!due || due.at > now) break;
      timers.shift();
      due.fn();
    }
    await new Promise((r) => setImmediate(r));
  };
  return { phone, log, advance, setCurrent: (v: CallView | null) => (current = v), tone: () => log.tones.at(-1) ?? null };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('dial plan', () => {
  it.each([
    ['201', { user: 'alice' }],
    ['1', { user: 'bob' }],
    ['9', { user: 'dave' }],
    ['555', { error: 'no extension 555' }],
  ] as const)('%s -> %o', (digits, expected) => {
    expect(resolveDialled(digits, PLAN)).toEqual(expected);
  });
});

describe('PhoneApp', () => {
  it('lifting the handset gives dial tone at once; digits stop it; # dials now; ringback, then in call', async () => {
    const { phone, log, tone, setCurrent } = rig();
    expect(phone.status()).toMatchObject({ state: 'idle', hook: 'on' });
    phone.offHook();
    expect(phone.status().state).toBe('dialtone');
    expect(tone()).toBe('dial');
    expect(log.leds.line).toBe('on');
    phone.key('2');
    expect(phone.status()).toMatchObject({ state: 'dialing', dialled: '2', display: '2' });
    expect(tone()).toBeNull();
    phone.key('0');
    phone.key('2');
    phone.key('#');
    expect(phone.status()).toMatchObject({ state: 'calling', display: 'calling bob' });
    await settle();
    expect(log.called).toEqual(['bob']);
    expect(phone.status().state).toBe('ringback');
    expect(tone()).toBe('ringback');
    setCurrent(view({ state: 'active' }));
    phone.callChanged(view({ state: 'active' }));
    expect(phone.status()).toMatchObject({ state: 'in-call', display: 'in call with bob' });
    expect(tone()).toBeNull();
    phone.onHook();
    await settle();
    expect(log.hangups).toBe(1);
    expect(phone.status()).toMatchObject({ state: 'idle', hook: 'on' });
    expect(log.leds.line).toBe('off');
  });

  it('dials after the inter-digit pause, and speed dials resolve through extensions', async () => {
    const { phone, log, advance } = rig();
    phone.offHook();
    phone.key('1');
    await advance(3999);
    expect(phone.status().state).toBe('dialing');
    await advance(1);
    expect(log.called).toEqual(['bob']);
    // Each digit restarts the pause.
    phone.onHook();
    phone.offHook();
    phone.key('2');
    await advance(3000);
    phone.key('0');
    await advance(3000);
    phone.key('3');
    await advance(3999);
    expect(log.called).toEqual(['bob']);
    await advance(1);
    expect(log.called).toEqual(['bob', 'carol']);
  });

  it('an unknown number gives congestion tone and the reason on the display until the handset goes down', async () => {
    const { phone, tone, log } = rig();
    phone.offHook();
    for (const k of '555#') phone.key(k);
    expect(phone.status()).toMatchObject({ state: 'busy-tone', display: 'no extension 555' });
    expect(tone()).toBe('congestion');
    expect(log.called).toEqual([]);
    phone.onHook();
    expect(phone.status().state).toBe('idle');
    expect(tone()).toBeNull();
  });

  it('busy and offline callees: busy tone for busy, congestion otherwise', async () => {
    const busy = rig({ call: async () => Promise.reject(new PartylineError('ERR_USER_BUSY', 'bob is busy')) });
    busy.phone.offHook();
    for (const k of '202#') busy.phone.key(k);
    await settle();
    expect(busy.phone.status()).toMatchObject({ state: 'busy-tone', display: 'bob is busy' });
    expect(busy.tone()).toBe('busy');
    const offline = rig({ call: async () => Promise.reject(new PartylineError('ERR_USER_OFFLINE', 'bob is offline')) });
    offline.phone.offHook();
    for (const k of '202#') offline.phone.key(k);
    await settle();
    expect(offline.phone.status()).toMatchObject({ state: 'busy-tone', display: 'bob is offline' });
    expect(offline.tone()).toBe('congestion');
  });

  it('an incoming call rings and blinks the line LED; lifting the handset answers; the far end hanging up gives a tone', async () => {
    const { phone, log, tone, setCurrent } = rig();
    const incoming = view({ direction: 'incoming', peer: 'alice', state: 'ringing' });
    setCurrent(incoming);
    phone.callChanged(incoming);
    expect(phone.status()).toMatchObject({ state: 'ringing', display: 'call from alice' });
    expect(log.ring.at(-1)).toBe(true);
    expect(log.leds.line).toBe('blink-fast');
    phone.offHook();
    expect(log.ring.at(-1)).toBe(false);
    await settle();
    expect(log.answers).toBe(1);
    expect(phone.status()).toMatchObject({ state: 'in-call', display: 'in call with alice' });
    expect(log.leds.line).toBe('on');
    phone.callEnded(ended({ peer: 'alice', direction: 'incoming' }));
    expect(phone.status()).toMatchObject({ state: 'busy-tone', display: 'alice hung up' });
    expect(tone()).toBe('congestion');
    phone.onHook();
    expect(phone.status().state).toBe('idle');
  });

  it('a call that stops ringing before anyone lifts the handset is a missed call: the message LED blinks', () => {
    const { phone, log } = rig();
    phone.callChanged(view({ direction: 'incoming', peer: 'alice' }));
    phone.callEnded(ended({ peer: 'alice', direction: 'incoming', outcome: 'missed', missed: true }));
    expect(phone.status()).toMatchObject({ state: 'idle', missedCalls: 1, display: 'missed call from alice' });
    expect(log.ring.at(-1)).toBe(false);
    expect(log.leds.message).toBe('blink-slow');
    phone.clearMissed();
    expect(log.leds.message).toBe('off');
  });

  it('in a call: keys send DTMF, hold toggles, mute and volume work; redial dials the last number', async () => {
    const { phone, log, setCurrent } = rig();
    phone.offHook();
    for (const k of '203#') phone.key(k);
    await settle();
    setCurrent(view({ state: 'active', peer: 'carol' }));
    phone.callChanged(view({ state: 'active', peer: 'carol' }));
    phone.key('5');
    phone.key('#');
    await settle();
    expect(log.dtmf).toEqual(['5', '#']);
    phone.key('hold');
    await settle();
    expect(log.holds).toEqual([true]);
    phone.callChanged(view({ state: 'held', held: 'local', peer: 'carol' }));
    expect(phone.status()).toMatchObject({ state: 'held', display: 'holding carol' });
    expect(log.leds.line).toBe('blink-slow');
    phone.key('hold');
    await settle();
    expect(log.holds).toEqual([true, false]);
    phone.callChanged(view({ state: 'active', peer: 'carol' }));
    expect(phone.status().state).toBe('in-call');
    phone.key('mute');
    expect(log.muted).toBe(true);
    expect(log.leds.mute).toBe('on');
    phone.key('volume-up');
    phone.key('volume-up');
    expect(log.volume).toBe(7);
    phone.onHook();
    expect(log.muted).toBe(false);
    phone.offHook();
    phone.key('redial');
    await settle();
    expect(log.called).toEqual(['carol', 'carol']);
  });

  it('hanging up while it rings out cancels the call', async () => {
    const { phone, log } = rig();
    phone.offHook();
    for (const k of '202#') phone.key(k);
    await settle();
    expect(phone.status().state).toBe('ringback');
    phone.onHook();
    await settle();
    expect(log.hangups).toBe(1);
    expect(phone.status().state).toBe('idle');
  });
});
