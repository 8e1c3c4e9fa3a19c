/**
 * When a desired configuration is applied, confirmed, reported or rolled
 * back: a pure state machine (STYLE.md 2). It takes events and the current
 * time and returns the new state and the actions to take; the agent
 * (agent.ts) validates payloads, writes files, restarts the node and
 * publishes reports.
 *
 *   steady ──desired (valid)──▶ waiting-idle ──idle──▶ applying ──applied──▶ verifying ──logged in──▶ steady (applied)
 *     │  └──────── (idle already) ────────────────────▲     │   (no account: applied at once)  └──deadline──▶ rolling-back ──▶ steady (rolled-back)
 *     └──desired (invalid)──▶ steady (rejected)             └──apply failed──▶ rolling-back
 *
 * The same version twice does nothing; a newer desired configuration that
 * arrives while one is being applied waits for it to finish.
 */
import type { ConfigVersion, ReportStatus } from './topics.js';

export type ApplyPhase = 'steady' | 'waiting-idle' | 'applying' | 'verifying' | 'rolling-back';

export interface PendingConfig {
  version: ConfigVersion;
  config: unknown;
}

export interface ApplyState {
  phase: ApplyPhase;
  /** Whether the phone is idle (no call, handset down). */
  idle: boolean;
  /** Version in effect and confirmed; null before the first. */
  applied: ConfigVersion | null;
  /** The last version decided on (applied, rejected or rolled back): the same again changes nothing. */
  handled: ConfigVersion | null;
  /** A valid configuration waiting for the phone to be idle, or for the one in progress. */
  pending: PendingConfig | null;
  /** The version being applied or verified; deadline = when it must have logged in. */
  current: { version: ConfigVersion; deadline: number | null } | null;
}

export type ApplyEvent =
  | { type: 'desired'; version: ConfigVersion; config: unknown; errors: readonly string[] }
  | { type: 'idle'; idle: boolean }
  | { type: 'applied'; needsLogin: boolean }
  | { type: 'apply-failed'; reason: string }
  | { type: 'logged-in' }
  | { type: 'rolled-back'; reason: string }
  | { type: 'tick' };

export type ApplyAction =
  | { type: 'apply'; version: ConfigVersion; config: unknown }
  | { type: 'rollback'; version: ConfigVersion; reason: string }
  | { type: 'commit'; version: ConfigVersion }
  | { type: 'report'; version: ConfigVersion; status: ReportStatus; errors: string[] }
  | { type: 'waiting'; version: ConfigVersion }
  | { type: 'unchanged'; version: ConfigVersion };

export interface ApplyOptions {
  /** How long a configuration with an account has to log in. */
  loginTimeoutMs: number;
}

export function initialApplyState(saved: Partial<Pick<ApplyState, 'applied' | 'handled'>> = {}): ApplyState {
  return { phase: 'steady', idle: false, applied: saved.applied ?? null, handled: saved.handled ?? null, pending: null, current: null };
}

/** A phone that stopped while verifying a new configuration starts verifying it again (a fresh deadline). */
export function resumeVerifying(state: ApplyState, version: ConfigVersion, now: number, options: ApplyOptions): ApplyState {
  return { ...state, phase: 'verifying', current: { version, deadline: now + options.loginTimeoutMs } };
}

export interface Step {
  state: ApplyState;
  actions: ApplyAction[];
}

export function applyStep(state: ApplyState, event: ApplyEvent, now: number, options: ApplyOptions): Step {
  switch (event.type) {
    case 'desired': {
      const known = [state.handled, state.current?.version, state.pending?.version];
      if (known.some((v) => v !== null && v !== undefined && v === event.version)) return { state, actions: [{ type: 'unchanged', version: event.version }] };
      if (event.errors.length > 0) {
        return { state: { ...state, handled: event.version }, actions: [{ type: 'report', version: event.version, status: 'rejected', errors: [...event.errors] }] };
      }
      return next({ ...state, pending: { version: event.version, config: event.config } });
    }
    case 'idle':
      return next({ ...state, idle: event.idle });
    case 'applied': {
      if (state.phase !== 'applying' || !state.current) return { state, actions: [] };
      if (event.needsLogin) return { state: { ...state, phase: 'verifying', current: { ...state.current, deadline: now + options.loginTimeoutMs } }, actions: [] };
      return succeed(state, state.current.version);
    }
    case 'logged-in':
      if (state.phase !== 'verifying' || !state.current) return { state, actions: [] };
      return succeed(state, state.current.version);
    case 'tick': {
      const current = state.current;
      if (state.phase !== 'verifying' || !current || current.deadline === null || now < current.deadline) return { state, actions: [] };
      const reason = `did not log in within ${Math.round(options.loginTimeoutMs / 1000)} s`;
      return { state: { ...state, phase: 'rolling-back' }, actions: [{ type: 'rollback', version: current.version, reason }] };
    }
    case 'apply-failed':
      if (state.phase !== 'applying' || !state.current) return { state, actions: [] };
      return { state: { ...state, phase: 'rolling-back' }, actions: [{ type: 'rollback', version: state.current.version, reason: event.reason }] };
    case 'rolled-back': {
      if (state.phase !== 'rolling-back' || !state.current) return { state, actions: [] };
      const version = state.current.version;
      const after = next({ ...state, phase: 'steady', handled: version, current: null });
      return { state: after.state, actions: [{ type: 'report', version, status: 'rolled-back', errors: [event.reason] }, ...after.actions] };
    }
  }
}

function succeed(state: ApplyState, version: ConfigVersion): Step {
  const after = next({ ...state, phase: 'steady', applied: version, handled: version, current: null });
  return { state: after.state, actions: [{ type: 'commit', version }, { type: 'report', version, status: 'applied', errors: [] }, ...after.actions] };
}

/** Start the pending configuration when nothing else is in progress and the phone is idle. */
function next(state: ApplyState): Step {
  const pending = state.pending;
  if (!pending || (state.phase !== 'steady' && state.phase !== 'waiting-idle')) return { state, actions: [] };
  if (!state.idle) {
    if (state.phase === 'waiting-idle') return { state, actions: [] };
    return { state: { ...state, phase: 'waiting-idle' }, actions: [{ type: 'waiting', version: pending.version }] };
  }
  return {
    state: { ...state, phase: 'applying', pending: null, current: { version: pending.version, deadline: null } },
    actions: [{ type: 'apply', version: pending.version, config: pending.config }],
  };
}
