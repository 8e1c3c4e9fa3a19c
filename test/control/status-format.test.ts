import { describe, expect, it } from 'vitest';
import { formatDuration, formatFields } from '../../src/control/format.js';
import type { StatusReport } from '../../src/control/status.js';
import { formatStatus } from '../../src/control/status-format.js';

const report: StatusReport = {
  user: 'alice',
  deviceId: 'd8f1c2a9e0b34f5a',
  role: 'ordinary',
  loggedIn: true,
  supernode: { address: '203.0.113.5:40000', rttMs: 12.4 },
  hostCache: { size: 37 },
  uptimeS: 3725,
};

describe('formatStatus', () => {
  it('prints the known fields as aligned label: value lines', () => {
    expect(formatStatus(report)).toBe(
      [
        'user:       alice',
        'device:     d8f1c2a9e0b34f5a',
        'role:       ordinary',
        'logged in:  yes',
        'supernode:  203.0.113.5:40000 (rtt 12 ms)',
        'host cache: 37 supernodes',
        'uptime:     1h 02m 05s',
        '',
      ].join('\n'),
    );
  });

  it('says what null means for user and supernode', () => {
    const text = formatStatus({ ...report, user: null, loggedIn: false, supernode: null, hostCache: { size: 1 } });
    expect(text).toContain('user:       none (waiting for provisioning)\n');
    expect(text).toContain('logged in:  no\n');
    expect(text).toContain('supernode:  none (not attached)\n');
    expect(text).toContain('host cache: 1 supernode\n');
  });

  it('prints the later fields it knows, and any field it does not know generically', () => {
    const later: StatusReport & Record<string, unknown> = {
      ...report,
      role: 'supernode',
      nat: { type: 'port-restricted', publicAddress: '198.51.100.9:5060' },
      call: { id: 'c1', state: 'active', direction: 'outgoing', peer: 'bob', durationS: 65, path: 'relay-udp', codec: 'opus/16000/16k', rtp: { packetsSent: 10, packetsReceived: 9, packetsLost: 1, jitterMs: 3 }, rttMs: 21.4, mos: 4.3, held: null },
      phone: { hook: 'off', dialled: '100' },
      leds: { call: 'blink', power: true, message: false },
      promotion: { policy: 'auto', candidate: false, reason: 'uptime 120 s < 600 s' },
      quality: { lossPct: 0.5, jitterMs: 3, history: [1, 2, 3], peers: [{ user: 'bob' }] },
      relays: 2,
    };
    const text = formatStatus(later);
    expect(text).toContain('nat:        port-restricted, public address 198.51.100.9:5060\n');
    expect(text).toContain('call:       active outgoing with bob 1m 05s via relay-udp (opus/16000/16k, MOS 4.3, rtt 21 ms, 9 packets in, 1 lost, jitter 3 ms)\n');
    expect(text).toContain('phone:      off hook, dialled 100\n');
    expect(text).toContain('leds:       call=blink, power=on, message=off\n');
    expect(text).toContain('promotion:  policy auto, candidate: no (uptime 120 s < 600 s)\n');
    expect(text).toContain('quality:\n  lossPct:  0.5\n  jitterMs: 3\n  history:  1, 2, 3\n  peers:\n    [0]:\n      user: bob\n');
    expect(text).toContain('relays:     2\n');
    // known fields come first, unknown ones after, in the order the node sent them
    expect(text.indexOf('uptime:')).toBeLessThan(text.indexOf('quality:'));
    expect(text.indexOf('quality:')).toBeLessThan(text.indexOf('relays:'));
  });

  it('prints the promotion check: eligible, and why not', () => {
    const base = { user: 'alice', deviceId: 'd', role: 'ordinary', loggedIn: true, supernode: null, hostCache: { size: 0 }, uptimeS: 1 };
    const text = formatStatus({ ...base, promotion: { policy: 'auto', role: 'ordinary', eligible: false, reasons: ['behind NAT', 'uptime 1 s < 600 s'], lastCheck: '2026-11-21T20:00:00.000Z', since: null, next: null } });
    expect(text).toContain('promotion:  policy auto, eligible: no: behind NAT; uptime 1 s < 600 s\n');
    expect(formatStatus({ ...base, promotion: { policy: 'never', eligible: false, reasons: ['not checked yet'], lastCheck: null } })).toContain('promotion:  policy never, eligible: no (not checked yet): not checked yet\n');
  });

  it('falls back to generic printing when a known field has an unexpected shape', () => {
    const odd = { ...report, supernode: 'somewhere', hostCache: { entries: 3 }, uptimeS: 'long', nat: 'open', leds: { call: { r: 1 } } };
    const text = formatStatus(odd);
    expect(text).toContain('supernode:  somewhere\n');
    expect(text).toContain('host cache:\n  entries: 3\n');
    expect(text).toContain('uptime:     long\n');
    expect(text).toContain('nat:        open\n');
    expect(text).toContain('leds:\n  call:\n    r: 1\n');
  });

  it('never throws, whatever the node sends', () => {
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let i = 0; i < 20; i++) cursor = (cursor.next = {}) as Record<string, unknown>;
    for (const value of [null, 42, 'text', [], [1, [2, [3]]], {}, { user: 5, loggedIn: 'maybe', nested: deep }, { a: undefined, b: '' }]) {
      expect(typeof formatStatus(value)).toBe('string');
    }
    expect(formatStatus({})).toBe('(empty)\n');
    expect(formatStatus('up')).toBe('result: up\n');
    expect(formatStatus({ b: '' })).toBe('b: ""\n');
  });
});

describe('formatFields and formatDuration', () => {
  it('labels known fields and keeps unknown ones', () => {
    expect(formatFields({ user: 'bob', online: true, extra: null }, [{ key: 'user', label: 'user name' }])).toBe('user name: bob\nonline:    true\nextra:     -\n');
  });

  it.each([
    [0, '0s'],
    [59.9, '59s'],
    [60, '1m 00s'],
    [3599, '59m 59s'],
    [3600, '1h 00m 00s'],
    [90061, '1d 1h 01m'],
    [-5, '0s'],
  ])('%d s is %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
