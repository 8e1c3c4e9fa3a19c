import { describe, expect, it } from 'vitest';
import { PromotionManager } from '../../src/app/promotion-manager.js';
import { configSchema } from '../../src/config/schema.js';
import type { SupernodeConfig } from '../../src/config/schema.js';
import type { BandwidthMeasurement, ReachbackResult } from '../../src/overlay/promotion/assessment.js';
import type { Capabilities } from '../../src/overlay/promotion/capabilities.js';
import { memoryLogger } from '../helpers/log.js';

/**
 * The promotion loop on a fake clock with fake facts: when it probes, when
 * it promotes and demotes, what a failure does. The assessment and the
 * hysteresis have their own tests; the real thing runs in the netlab
 * (test/netlab/promotion.test.ts).
 */
const T0 = Date.parse('2026-03-01T12:00:00Z');
const PUBLIC = '198.51.100.7';
const caps: Capabilities = {
  cores: 2,
  load1: 0.1,
  cpuBusyPercent: 5,
  freeMemoryMb: 1024,
  totalMemoryMb: 2048,
  interfaces: [{ name: 'eth0', addresses: [PUBLIC], internal: false, speedMbps: 1000, operstate: 'up' }],
};

function setup(options: { nat?: string | null; probe?: 'ok' | 'slow' | 'throws' | 'unattached'; policy?: SupernodeConfig['policy']; fixed?: boolean; promoteFails?: number } = {}) {
  let t = T0;
  const settings: SupernodeConfig = { ...configSchema.parse({}).supernode, policy: options.policy ?? 'auto', minUptimeS: 0, promoteAfterS: 60, demoteAfterS: 60, checkIntervalS: 30 };
  const calls = { probe: 0, promote: 0, demote: [] as string[] };
  let failures = options.promoteFails ?? 0;
  const manager = new PromotionManager({
    settings: () => settings,
    log: memoryLogger('silent').log,
    capabilities: { read: () => Promise.resolve(caps) },
    nat: () => ({ type: 'open', publicAddress: options.nat === undefined ? `${PUBLIC}:5000` : options.nat }),
    uptimeS: () => (t - T0) / 1000 + 3600,
    fixedSupernode: options.fixed ?? false,
    probe: () => {
      if (options.probe === 'unattached') return undefined;
      calls.probe++;
      if (options.probe === 'throws') return Promise.reject(new Error('ERR_PROBE_RATE'));
      const up = options.probe === 'slow' ? 400 : 50_000;
      const reachback: ReachbackResult = { address: `${PUBLIC}:5001`, tcp: true, udp: true, by: 'sn1:4000', at: t };
      const bandwidth: BandwidthMeasurement = { upKbps: up, downKbps: 50_000, with: 'sn1:4000', at: t };
      return Promise.resolve({ reachback, bandwidth });
    },
    promote: () => {
      calls.promote++;
      if (failures-- > 0) return Promise.reject(new Error('cannot bind 5001'));
      return Promise.resolve();
    },
    demote: (reason) => {
      calls.demote.push(reason);
      return Promise.resolve();
    },
    now: () => t,
  });
  return { manager, calls, settings, advance: (s: number) => { t += s * 1000; } };
}

describe('PromotionManager', () => {
  it('a public node: probes once, promotes after the window, and does not probe again while serving', async () => {
    const { manager, calls, advance } = setup();
    await manager.checkNow();
    expect(calls.probe).toBe(1);
    expect(manager.status()).toMatchObject({ eligible: true, role: 'ordinary', reachback: { tcp: true, udp: true } });
    advance(30);
    await manager.checkNow();
    expect(calls.promote).toBe(0);
    advance(30);
    await manager.checkNow();
    expect(calls.promote).toBe(1);
    expect(manager.role).toBe('supernode');
    // A day later the measurements would be stale for a candidate; a serving supernode keeps them.
    advance(2 * 86400);
    await manager.checkNow();
    expect(calls.probe).toBe(1);
    expect(manager.role).toBe('supernode');
    expect(calls.demote).toEqual([]);
    await manager.stop();
  });

  it('behind NAT: never asks a supernode to probe it, never promotes', async () => {
    const { manager, calls, advance } = setup({ nat: '203.0.113.9:40000' });
    for (let i = 0; i < 5; i++) {
      await manager.checkNow();
      advance(60);
    }
    expect(calls.probe).toBe(0);
    expect(calls.promote).toBe(0);
    expect(manager.status().reasons.join('\n')).toMatch(/behind NAT/);
  });

  it('too slow: the measured bandwidth keeps it ordinary, and it is not measured again before the measurement is stale', async () => {
    const { manager, calls, advance } = setup({ probe: 'slow' });
    for (let i = 0; i < 5; i++) {
      await manager.checkNow();
      advance(120);
    }
    expect(calls.probe).toBe(1);
    expect(calls.promote).toBe(0);
    expect(manager.status().reasons.join('\n')).toMatch(/bandwidth 400 kbit\/s up < 1000 kbit\/s needed/);
  });

  it('a refused or failed probe is retried ten minutes later at the soonest', async () => {
    const { manager, calls, advance } = setup({ probe: 'throws' });
    await manager.checkNow();
    advance(300);
    await manager.checkNow();
    expect(calls.probe).toBe(1);
    advance(301);
    await manager.checkNow();
    expect(calls.probe).toBe(2);
  });

  it('a promotion that fails leaves the node ordinary and is tried again at a later check', async () => {
    const { manager, calls, advance } = setup({ promoteFails: 1 });
    await manager.checkNow();
    advance(60);
    await manager.checkNow();
    expect(calls.promote).toBe(1);
    expect(manager.role).toBe('ordinary');
    advance(30);
    await manager.checkNow();
    expect(calls.promote).toBe(2);
    expect(manager.role).toBe('supernode');
  });

  it('policy never at run time demotes a promoted node at once, with the reason', async () => {
    const { manager, calls, advance } = setup();
    await manager.checkNow();
    advance(60);
    await manager.checkNow();
    expect(manager.role).toBe('supernode');
    const status = await manager.setPolicy('never');
    expect(status).toMatchObject({ policy: 'never', role: 'ordinary' });
    expect(calls.demote).toEqual(['policy never: this node stays an ordinary node']);
  });

  it('always at run time promotes at once, without a probe', async () => {
    const { manager, calls } = setup({ policy: 'never' });
    await manager.checkNow();
    expect(calls.promote).toBe(0);
    await manager.setPolicy('always');
    expect(calls).toMatchObject({ probe: 0, promote: 1 });
    expect(manager.role).toBe('supernode');
  });

  it('a supernode by configuration cannot be made ordinary at run time', async () => {
    const { manager } = setup({ policy: 'always', fixed: true });
    await expect(manager.setPolicy('never')).rejects.toMatchObject({ code: 'ERR_POLICY_FIXED' });
    expect(manager.role).toBe('supernode');
  });
});
