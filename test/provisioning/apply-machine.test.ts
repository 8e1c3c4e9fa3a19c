import { describe, expect, it } from 'vitest';
import { applyStep, initialApplyState, resumeVerifying } from '../../src/provisioning/apply-machine.js';
import type { ApplyAction, ApplyEvent, ApplyState } from '../../src/provisioning/apply-machine.js';

const options = { loginTimeoutMs: 10_000 };
const account = { account: { user: 'alice', password: 'x' } };

/** Run events at the given times (a fake clock) and collect every action. */
function run(events: Array<[number, ApplyEvent]>, start: ApplyState = { ...initialApplyState(), idle: true }): { state: ApplyState; actions: ApplyAction[] } {
  let state = start;
  const actions: ApplyAction[] = [];
  for (const [now, event] of events) {
    const step = applyStep(state, event, now, options);
    state = step.state;
    actions.push(...step.actions);
  }
  return { state, actions };
}

const kinds = (actions: ApplyAction[]): string[] => actions.map((a) => ('status' in a ? `${a.type}:${a.status}:${String(a.version)}` : `${a.type}:${String((a as { version: unknown }).version)}`));

describe('apply state machine', () => {
  it.each<[string, Array<[number, ApplyEvent]>, string[], Partial<ApplyState>]>([
    ['invalid → rejected with the errors, nothing applied', [[0, { type: 'desired', version: 1, config: {}, errors: ['a: expected b'] }]], ['report:rejected:1'], { phase: 'steady', applied: null, handled: 1 }],
    ['valid without an account → applied at once', [[0, { type: 'desired', version: 1, config: {}, errors: [] }], [5, { type: 'applied', needsLogin: false }]], ['apply:1', 'commit:1', 'report:applied:1'], { phase: 'steady', applied: 1, handled: 1 }],
    ['with an account → applied once logged in', [[0, { type: 'desired', version: 2, config: account, errors: [] }], [100, { type: 'applied', needsLogin: true }], [9_000, { type: 'tick' }], [9_500, { type: 'logged-in' }]], ['apply:2', 'commit:2', 'report:applied:2'], { phase: 'steady', applied: 2 }],
    ['no login by the deadline → rollback → rolled-back', [[0, { type: 'desired', version: 3, config: account, errors: [] }], [100, { type: 'applied', needsLogin: true }], [10_099, { type: 'tick' }], [10_100, { type: 'tick' }], [10_200, { type: 'rolled-back', reason: 'did not log in within 10 s' }]], ['apply:3', 'rollback:3', 'report:rolled-back:3'], { phase: 'steady', applied: null, handled: 3 }],
    ['the write or restart fails → rollback', [[0, { type: 'desired', version: 4, config: {}, errors: [] }], [1, { type: 'apply-failed', reason: 'EACCES' }], [2, { type: 'rolled-back', reason: 'EACCES' }]], ['apply:4', 'rollback:4', 'report:rolled-back:4'], { handled: 4 }],
    ['the same version twice → nothing the second time', [[0, { type: 'desired', version: 'v1', config: {}, errors: [] }], [1, { type: 'applied', needsLogin: false }], [2, { type: 'desired', version: 'v1', config: {}, errors: [] }]], ['apply:v1', 'commit:v1', 'report:applied:v1', 'unchanged:v1'], { applied: 'v1' }],
    ['a rejected version sent again is not reported again', [[0, { type: 'desired', version: 5, config: {}, errors: ['x'] }], [1, { type: 'desired', version: 5, config: {}, errors: ['x'] }]], ['report:rejected:5', 'unchanged:5'], { handled: 5 }],
    ['1 and "1" are different versions', [[0, { type: 'desired', version: 1, config: {}, errors: ['x'] }], [1, { type: 'desired', version: '1', config: {}, errors: ['y'] }]], ['report:rejected:1', 'report:rejected:1'], { handled: '1' }],
  ])('%s', (_name, events, expected, state) => {
    const result = run(events);
    expect(kinds(result.actions)).toEqual(expected);
    expect(result.state).toMatchObject(state);
  });

  it('waits while the phone is busy and applies the newest pending version once it is idle', () => {
    const busy = { ...initialApplyState(), idle: false };
    const result = run([
      [0, { type: 'desired', version: 1, config: { a: 1 }, errors: [] }],
      [1, { type: 'desired', version: 2, config: { a: 2 }, errors: [] }],
      [2, { type: 'idle', idle: false }],
    ], busy);
    expect(kinds(result.actions)).toEqual(['waiting:1']);
    expect(result.state).toMatchObject({ phase: 'waiting-idle', pending: { version: 2 } });
    const idle = applyStep(result.state, { type: 'idle', idle: true }, 3, options);
    expect(idle.actions).toEqual([{ type: 'apply', version: 2, config: { a: 2 } }]);
    expect(idle.state).toMatchObject({ phase: 'applying', pending: null, current: { version: 2 } });
  });

  it('a version arriving during verification waits for it, then goes', () => {
    const result = run([
      [0, { type: 'desired', version: 1, config: account, errors: [] }],
      [1, { type: 'applied', needsLogin: true }],
      [2, { type: 'desired', version: 2, config: {}, errors: [] }],
      [3, { type: 'desired', version: 1, config: account, errors: [] }],
    ]);
    expect(kinds(result.actions)).toEqual(['apply:1', 'unchanged:1']);
    const done = applyStep(result.state, { type: 'logged-in' }, 4, options);
    expect(kinds(done.actions)).toEqual(['commit:1', 'report:applied:1', 'apply:2']);
  });

  it('events out of place change nothing', () => {
    const steady = { ...initialApplyState(), idle: true };
    for (const event of [{ type: 'applied', needsLogin: true }, { type: 'logged-in' }, { type: 'tick' }, { type: 'rolled-back', reason: 'x' }, { type: 'apply-failed', reason: 'x' }] as ApplyEvent[]) {
      expect(applyStep(steady, event, 0, options)).toEqual({ state: steady, actions: [] });
    }
  });

  it('resumes verifying after a process restart with a fresh deadline', () => {
    const state = resumeVerifying(initialApplyState({ applied: 1, handled: 1 }), 2, 1_000, options);
    expect(state).toMatchObject({ phase: 'verifying', current: { version: 2, deadline: 11_000 } });
    expect(applyStep(state, { type: 'tick' }, 10_999, options).actions).toEqual([]);
    expect(applyStep(state, { type: 'tick' }, 11_000, options).actions).toEqual([{ type: 'rollback', version: 2, reason: 'did not log in within 10 s' }]);
  });
});
