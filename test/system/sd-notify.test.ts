import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServiceNotifier, formatNotification, notifySocketPath } from '../../src/system/sd-notify.js';
import type { NotifyTransport, ServiceNotifier } from '../../src/system/sd-notify.js';
import { ServiceLifecycle, nodeReadiness, watchdogIntervalMs } from '../../src/system/service-lifecycle.js';
import type { NodeReadinessView } from '../../src/system/service-lifecycle.js';
import { memoryLogger } from '../helpers/log.js';
import { NotifyListener } from './notify-listener.js';

describe('sd_notify messages', () => {
  it('formats KEY=VALUE lines and keeps a status on one line', () => {
    expect(formatNotification({ READY: '1', STATUS: 'logged in' }).toString()).toBe('READY=1\nSTATUS=logged in\n');
    expect(formatNotification({ STATUS: 'line one\nline two\r\0' }).toString()).toBe('STATUS=line one line two \n');
    expect(formatNotification({ STATUS: 'x'.repeat(2000) }).length).toBe('STATUS='.length + 512 + 1);
    expect(() => formatNotification({ 'ready=1\nX': '1' })).toThrow(expect.objectContaining({ code: 'ERR_SD_NOTIFY' }));
  });

  it('takes the socket from $NOTIFY_SOCKET: absolute paths only', () => {
    expect(notifySocketPath({})).toEqual({});
    expect(notifySocketPath({ NOTIFY_SOCKET: '/run/systemd/notify' })).toEqual({ path: '/run/systemd/notify' });
    expect(notifySocketPath({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify' }).problem).toMatch(/abstract socket/);
    expect(notifySocketPath({ NOTIFY_SOCKET: 'run/notify' }).problem).toMatch(/absolute path/);
    expect(notifySocketPath({ NOTIFY_SOCKET: `/${'x'.repeat(120)}` }).problem).toMatch(/longer than/);
  });

  it('does nothing without $NOTIFY_SOCKET', async () => {
    const sent: string[] = [];
    const transport: NotifyTransport = { send: async (_path, d) => void sent.push(d.toString()) };
    const notifier = createServiceNotifier({ env: {}, log: memoryLogger().log, transport });
    expect(notifier.enabled).toBe(false);
    await notifier.ready('up');
    await notifier.watchdog();
    expect(sent).toEqual([]);
  });

  it('sends datagrams that a listening socket receives (unix-dgram, one socket per message)', async () => {
    const listener = await NotifyListener.create();
    try {
      const notifier = createServiceNotifier({ env: { NOTIFY_SOCKET: listener.path }, log: memoryLogger().log });
      expect(notifier.enabled).toBe(true);
      await notifier.status('logging in');
      await notifier.ready('logged in as alice');
      await notifier.watchdog();
      await notifier.stopping();
      await listener.waitFor((n) => n.fields.STOPPING === '1');
      expect(listener.received.map((n) => n.fields)).toEqual([
        { STATUS: 'logging in' },
        { READY: '1', STATUS: 'logged in as alice' },
        { WATCHDOG: '1' },
        { STOPPING: '1' },
      ]);
    } finally {
      await listener.close();
    }
  });

  it('logs a failed send once per run of failures and never throws', async () => {
    const memory = memoryLogger();
    const notifier = createServiceNotifier({ env: { NOTIFY_SOCKET: '/nonexistent/partyline-notify' }, log: memory.log });
    await notifier.watchdog();
    await notifier.watchdog();
    const warnings = memory.lines().filter((l) => l.msg === 'sd_notify failed');
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.err)).toMatch(/nonexistent\/partyline-notify/);
  });
});

describe('watchdog period', () => {
  it('is half of WATCHDOG_USEC, for this process only', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000' }, 42)).toBe(10_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '42' }, 42)).toBe(10_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '41' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '-5' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 42)).toBeUndefined();
  });
});

describe('node readiness', () => {
  const base: NodeReadinessView = { role: 'ordinary', loggedIn: false, user: 'alice', port: 4000, supernode: null, overlay: { state: 'connecting', lastError: null } };
  it.each([
    ['a phone still connecting', base, false, /^logging in: connecting$/],
    ['a phone whose login failed', { ...base, overlay: { state: 'connecting', lastError: 'login server unreachable' } }, false, /unreachable/],
    ['a phone attached with a credential', { ...base, loggedIn: true, supernode: { address: '10.0.0.1:5060' }, overlay: { state: 'attached', lastError: null } }, true, /logged in as alice via supernode 10.0.0.1:5060/],
    ['a phone with no account, waiting for provisioning', { ...base, user: null, overlay: { state: 'awaiting-provisioning', lastError: null } }, true, /provisioning/],
    ['a supernode', { ...base, role: 'supernode', overlay: { state: 'serving', lastError: null } }, true, /serving on port 4000/],
  ])('%s', (_what, view, ready, status) => {
    const r = nodeReadiness(view);
    expect(r.ready).toBe(ready);
    expect(r.status).toMatch(status);
  });
});

describe('ServiceLifecycle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function recorder(): ServiceNotifier & { sent: Array<[number, string]> } {
    const sent: Array<[number, string]> = [];
    const rec = (what: string) => async () => void sent.push([Date.now(), what]);
    return {
      sent,
      enabled: true,
      ready: async (status) => void sent.push([Date.now(), `READY ${status}`]),
      status: async (text) => void sent.push([Date.now(), `STATUS ${text}`]),
      stopping: rec('STOPPING'),
      watchdog: rec('WATCHDOG'),
    };
  }

  it('pings at half the watchdog period, sends READY once the probe says so, and stops everything on close', () => {
    vi.useFakeTimers({ now: 0 });
    const notifier = recorder();
    const life = new ServiceLifecycle({ notifier, log: memoryLogger().log, env: { WATCHDOG_USEC: '2000000' }, pid: 7, pollMs: 100 });
    expect(life.watchdogMs).toBe(1000);
    life.startWatchdog();
    let up = false;
    life.whenReady(() => ({ ready: up, status: up ? 'logged in' : 'logging in' }));
    vi.advanceTimersByTime(3500);
    expect(life.ready).toBe(false);
    up = true;
    vi.advanceTimersByTime(100);
    expect(life.ready).toBe(true);
    vi.advanceTimersByTime(1400);
    life.close();
    vi.advanceTimersByTime(5000);
    expect(notifier.sent).toEqual([
      [0, 'WATCHDOG'], [0, 'STATUS logging in'], [1000, 'WATCHDOG'], [2000, 'WATCHDOG'], [3000, 'WATCHDOG'],
      [3600, 'READY logged in'], [4000, 'WATCHDOG'], [5000, 'WATCHDOG'],
    ]);
  });

  it('has no watchdog when the notifier is disabled or WATCHDOG_PID is another process', () => {
    expect(new ServiceLifecycle({ notifier: { ...recorder(), enabled: false }, log: memoryLogger().log, env: { WATCHDOG_USEC: '2000000' } }).watchdogMs).toBeUndefined();
    expect(new ServiceLifecycle({ notifier: recorder(), log: memoryLogger().log, env: { WATCHDOG_USEC: '2000000', WATCHDOG_PID: '1' }, pid: 2 }).watchdogMs).toBeUndefined();
  });
});
