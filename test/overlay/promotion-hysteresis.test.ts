import { describe, expect, it } from 'vitest';
import type { SupernodePolicy } from '../../src/config/schema.js';
import type { Assessment } from '../../src/overlay/promotion/assessment.js';
import { PromotionDecider } from '../../src/overlay/promotion/hysteresis.js';
import type { PromotionAction } from '../../src/overlay/promotion/hysteresis.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const S = 1000;

function clock() {
  let t = T0;
  return { now: () => t, set: (s: number) => { t = T0 + s * S; } };
}

function verdict(eligible: boolean, policy: SupernodePolicy = 'auto'): Assessment {
  return { policy, eligible, reasons: [eligible ? 'all checks pass' : 'uptime 120 s < 600 s'], checks: [], at: 0 };
}

/** Feed [seconds since T0, eligible] and collect the actions with their times. */
function run(decider: PromotionDecider, c: ReturnType<typeof clock>, steps: [number, boolean][], policy: SupernodePolicy = 'auto'): [number, PromotionAction][] {
  const out: [number, PromotionAction][] = [];
  for (const [s, eligible] of steps) {
    c.set(s);
    const action = decider.update(verdict(eligible, policy));
    if (action !== 'none') out.push([s, action]);
  }
  return out;
}

const windows = { promoteAfterS: 300, demoteAfterS: 600 };

describe('PromotionDecider (auto)', () => {
  it('promotes only after eligibility held for promoteAfterS', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'auto', now: c.now });
    expect(run(d, c, [[0, true], [60, true], [299, true]])).toEqual([]);
    expect(d.role).toBe('ordinary');
    expect(d.status()).toMatchObject({ eligible: true, since: new Date(T0).toISOString(), next: { action: 'promote', at: new Date(T0 + 300 * S).toISOString() } });
    expect(run(d, c, [[300, true]])).toEqual([[300, 'promote']]);
    expect(d.role).toBe('supernode');
    expect(run(d, c, [[360, true], [1000, true]])).toEqual([]);
    expect(d.status().next).toBeNull();
  });

  it('a flap restarts the promotion timer', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'auto', now: c.now });
    const actions = run(d, c, [[0, true], [200, true], [250, false], [260, true], [500, true], [559, true], [560, true]]);
    expect(actions).toEqual([[560, 'promote']]);
  });

  it('demotes only after ineligibility held for demoteAfterS; a flap restarts that timer too', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'auto', now: c.now });
    expect(run(d, c, [[0, true], [300, true]])).toEqual([[300, 'promote']]);
    expect(run(d, c, [[400, false], [900, false], [950, true], [1000, false], [1599, false]])).toEqual([]);
    expect(d.status()).toMatchObject({ role: 'supernode', eligible: false, since: new Date(T0 + 1000 * S).toISOString(), reasons: ['uptime 120 s < 600 s'] });
    expect(run(d, c, [[1600, false]])).toEqual([[1600, 'demote']]);
    expect(d.role).toBe('ordinary');
    // Back to ordinary: eligibility must hold a full window again.
    expect(run(d, c, [[1700, true], [1999, true], [2000, true]])).toEqual([[2000, 'promote']]);
  });

  it('zero windows act at the first check', () => {
    const c = clock();
    const d = new PromotionDecider({ promoteAfterS: 0, demoteAfterS: 0, policy: 'auto', now: c.now });
    expect(run(d, c, [[0, true], [1, false], [2, false]])).toEqual([[0, 'promote'], [1, 'demote']]);
  });

  it('reports status before and after the first check', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'auto', now: c.now });
    expect(d.status()).toEqual({ policy: 'auto', role: 'ordinary', eligible: false, reasons: ['not checked yet'], lastCheck: null, since: null, next: null });
    c.set(10);
    d.update(verdict(false));
    expect(d.status()).toEqual({
      policy: 'auto', role: 'ordinary', eligible: false, reasons: ['uptime 120 s < 600 s'],
      lastCheck: new Date(T0 + 10 * S).toISOString(), since: new Date(T0 + 10 * S).toISOString(), next: null,
    });
    c.set(70);
    d.update(verdict(false));
    expect(d.status()).toMatchObject({ lastCheck: new Date(T0 + 70 * S).toISOString(), since: new Date(T0 + 10 * S).toISOString() });
  });
});

describe('PromotionDecider (never, always)', () => {
  it('never: never promotes, however long the node looks eligible', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'never', now: c.now });
    const eligibleForever: [number, boolean][] = [[0, true], [300, true], [10_000, true]];
    expect(run(d, c, eligibleForever, 'never')).toEqual([]);
    expect(d.role).toBe('ordinary');
  });

  it('never: a supernode demotes at once', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'auto', now: c.now, role: 'supernode' });
    expect(run(d, c, [[0, true], [10, true]])).toEqual([]);
    expect(run(d, c, [[11, false]], 'never')).toEqual([[11, 'demote']]);
    expect(d.status()).toMatchObject({ policy: 'never', role: 'ordinary' });
  });

  it('always: promotes at once', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'always', now: c.now });
    expect(run(d, c, [[0, true], [1, true]], 'always')).toEqual([[0, 'promote']]);
    expect(d.role).toBe('supernode');
  });

  it('always → auto on an ineligible node: demotes after demoteAfterS, not at once', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'always', now: c.now });
    expect(run(d, c, [[0, true]], 'always')).toEqual([[0, 'promote']]);
    expect(run(d, c, [[5, false], [604, false], [605, false]])).toEqual([[605, 'demote']]);
  });

  it('setRole records a role change made elsewhere without an action', () => {
    const c = clock();
    const d = new PromotionDecider({ ...windows, policy: 'auto', now: c.now });
    expect(run(d, c, [[0, true], [300, true]])).toEqual([[300, 'promote']]);
    d.setRole('ordinary');
    expect(d.role).toBe('ordinary');
    // Still eligible since T0: the next check promotes again.
    expect(run(d, c, [[301, true]])).toEqual([[301, 'promote']]);
  });
});
