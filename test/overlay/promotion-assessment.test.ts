import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { ago, assess } from '../../src/overlay/promotion/assessment.js';
import type { PromotionFacts, PromotionThresholds } from '../../src/overlay/promotion/assessment.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const MIN = 60_000;

const thresholds: PromotionThresholds = configSchema.parse({}).supernode;

/** A public, idle, well-connected node that has been up a while: every check passes. */
function good(): PromotionFacts {
  return {
    policy: 'auto',
    nat: { type: 'open', publicAddress: '203.0.113.7:4000' },
    reachback: { address: '203.0.113.7', tcp: true, udp: true, by: 'sn1', at: NOW - 2 * MIN },
    bandwidth: { upKbps: 5000, downKbps: 20000, with: 'sn1', at: NOW - 5 * MIN },
    uptimeS: 3600,
    capabilities: {
      cores: 4,
      load1: 0.4,
      cpuBusyPercent: 10,
      freeMemoryMb: 900,
      totalMemoryMb: 2048,
      interfaces: [
        { name: 'lo', addresses: ['127.0.0.1', '::1'], internal: true, speedMbps: null, operstate: 'unknown' },
        { name: 'eth0', addresses: ['203.0.113.7'], internal: false, speedMbps: 1000, operstate: 'up' },
      ],
    },
  };
}

type Patch = (f: PromotionFacts) => void;

describe('assess (policy auto)', () => {
  it('uses the documented defaults', () => {
    expect(thresholds).toMatchObject({ minUptimeS: 600, minBandwidthKbps: 1000, minFreeMemoryMb: 128, maxLoadPerCore: 0.7, bandwidthMaxAgeS: 86400, reachbackMaxAgeS: 3600 });
  });

  it('all good: eligible, and every reason says why', () => {
    const a = assess(good(), thresholds, NOW);
    expect(a.eligible).toBe(true);
    expect(a.policy).toBe('auto');
    expect(a.at).toBe(NOW);
    expect(a.checks.map((c) => [c.name, c.ok])).toEqual([
      ['public-address', true], ['reachback', true], ['bandwidth', true], ['uptime', true], ['memory', true], ['load', true],
    ]);
    expect(a.reasons).toEqual([
      'public address 203.0.113.7 is the address of interface eth0 (NAT type open)',
      'reachable over TCP and UDP (checked by sn1 2 min ago)',
      'bandwidth 5000 kbit/s up, 20000 kbit/s down >= 1000 kbit/s (measured with sn1 5 min ago)',
      'uptime 3600 s >= 600 s',
      'free memory 900 MiB >= 128 MiB',
      'load 0.4 on 4 cores (0.10 per core <= 0.7)',
    ]);
  });

  const table: [string, Patch, string[]][] = [
    ['behind NAT', (f) => { f.nat = { type: 'port-restricted', publicAddress: '198.51.100.20:61000' }; f.reachback = null; }, [
      'public address 198.51.100.20 is not one of this node\'s interface addresses (behind NAT)',
      'reachability not confirmed: no supernode has connected back over TCP and UDP yet',
    ]],
    ['no STUN answer yet', (f) => { f.nat = { type: 'unknown', publicAddress: null }; }, [
      'public address not known yet (NAT type unknown: STUN has not reported one)',
    ]],
    ['public but reachback not confirmed', (f) => { f.reachback = null; }, [
      'reachability not confirmed: no supernode has connected back over TCP and UDP yet',
    ]],
    ['public, TCP reached but UDP filtered', (f) => { f.reachback = { address: '203.0.113.7', tcp: true, udp: false, by: 'sn2', at: NOW - 30_000 }; }, [
      'not reachable from outside over UDP (checked by sn2 30 s ago)',
    ]],
    ['reachback confirmed an earlier address', (f) => { f.reachback = { address: '203.0.113.99', tcp: true, udp: true, by: 'sn1', at: NOW - MIN }; }, [
      'reachability not confirmed for 203.0.113.7: sn1 reached 203.0.113.99, an earlier address',
    ]],
    ['reachback stale', (f) => { f.reachback = { address: '203.0.113.7', tcp: true, udp: true, by: 'sn1', at: NOW - 3 * 3600_000 }; }, [
      'reachability confirmation is stale: checked by sn1 3 h ago, older than 3600 s',
    ]],
    ['throttled below the threshold', (f) => { f.bandwidth = { upKbps: 600, downKbps: 8000, with: 'sn1', at: NOW - 5 * MIN }; }, [
      'bandwidth 600 kbit/s up < 1000 kbit/s needed (measured with sn1 5 min ago)',
    ]],
    ['throttled both ways', (f) => { f.bandwidth = { upKbps: 400, downKbps: 999.6, with: 'sn3', at: NOW - 5 * MIN }; }, [
      'bandwidth 400 kbit/s up, 999 kbit/s down < 1000 kbit/s needed (measured with sn3 5 min ago)',
    ]],
    ['bandwidth not measured', (f) => { f.bandwidth = null; }, ['bandwidth not measured yet']],
    ['bandwidth stale', (f) => { f.bandwidth = { upKbps: 5000, downKbps: 5000, with: 'sn1', at: NOW - 2 * 86400_000 }; }, [
      'bandwidth measurement is stale (measured with sn1 2 d ago, older than 86400 s)',
    ]],
    ['low memory', (f) => { f.capabilities.freeMemoryMb = 90; }, ['free memory 90 MiB < 128 MiB']],
    ['not up long enough', (f) => { f.uptimeS = 120.7; }, ['uptime 120 s < 600 s']],
    ['busy', (f) => { f.capabilities.cores = 2; f.capabilities.load1 = 3.2; }, ['load 3.2 on 2 cores (1.60 per core > 0.7)']],
    ['busy single core', (f) => { f.capabilities.cores = 1; f.capabilities.load1 = 0.71; }, ['load 0.71 on 1 core (0.71 per core > 0.7)']],
  ];

  it.each(table)('%s: not eligible, and the reasons say exactly why', (_name, patch, reasons) => {
    const facts = good();
    patch(facts);
    const a = assess(facts, thresholds, NOW);
    expect(a.eligible).toBe(false);
    expect(a.reasons).toEqual(reasons);
    expect(a.checks.filter((c) => !c.ok).map((c) => c.detail)).toEqual(reasons);
    expect(a.checks).toHaveLength(6);
  });

  it('thresholds come from config: a lower bar lets the throttled node through', () => {
    const facts = good();
    facts.bandwidth = { upKbps: 600, downKbps: 8000, with: 'sn1', at: NOW - 5 * MIN };
    expect(assess(facts, { ...thresholds, minBandwidthKbps: 500 }, NOW).eligible).toBe(true);
    expect(assess(facts, { ...thresholds, minBandwidthKbps: 601 }, NOW).eligible).toBe(false);
  });

  it('limits are inclusive: exactly at the threshold passes', () => {
    const facts = good();
    facts.uptimeS = 600;
    facts.capabilities.freeMemoryMb = 128;
    facts.capabilities.cores = 1;
    facts.capabilities.load1 = 0.7;
    facts.bandwidth = { upKbps: 1000, downKbps: 1000, with: 'sn1', at: NOW - 86400_000 };
    facts.reachback = { address: '203.0.113.7:4000', tcp: true, udp: true, by: 'sn1', at: NOW - 3600_000 };
    expect(assess(facts, thresholds, NOW)).toMatchObject({ eligible: true });
  });
});

describe('assess (policies never and always)', () => {
  it('never: not eligible whatever the facts', () => {
    const facts = { ...good(), policy: 'never' as const };
    expect(assess(facts, thresholds, NOW)).toEqual({
      policy: 'never', eligible: false, at: NOW,
      reasons: ['policy never: this node stays an ordinary node'],
      checks: [{ name: 'policy', ok: false, detail: 'policy never: this node stays an ordinary node' }],
    });
  });

  it('always: eligible even behind NAT on a busy box', () => {
    const facts = { ...good(), policy: 'always' as const, nat: { type: 'symmetric', publicAddress: '198.51.100.20:1' }, bandwidth: null };
    const a = assess(facts, thresholds, NOW);
    expect(a.eligible).toBe(true);
    expect(a.reasons).toEqual(['policy always: this node acts as a supernode whatever its resources']);
  });
});

describe('ago', () => {
  it.each([[0, 'just now'], [45_000, '45 s ago'], [5 * MIN, '5 min ago'], [3 * 3600_000, '3 h ago'], [2 * 86400_000, '2 d ago'], [-5000, 'just now']])('%d ms → %s', (ms, text) => {
    expect(ago(ms)).toBe(text);
  });
});
