import type { SupernodeConfig, SupernodePolicy } from '../../config/schema.js';
import type { NodeRole, PromotionStatus } from '../../control/status.js';
import type { Assessment } from './assessment.js';

/**
 * When to promote and demote, with hysteresis. PURE state machine: feed it
 * each assessment; the clock is injected; it returns what to do and keeps
 * nothing running (no timers — the caller assesses periodically).
 *
 * - `auto`: `promote` once eligibility has held without a break for
 *   `promoteAfterS`; `demote` once ineligibility has held without a break
 *   for `demoteAfterS`. A change of eligibility restarts the timer, so a
 *   flapping node neither promotes nor demotes.
 * - `never`: never promotes; a supernode demotes at once.
 * - `always`: promotes at once.
 *
 * The policy comes with each assessment, so a config change applies at the
 * next check.
 */

export type PromotionAction = 'promote' | 'demote' | 'none';

export type PromotionWindows = Pick<SupernodeConfig, 'promoteAfterS' | 'demoteAfterS'>;

export interface PromotionDeciderOptions extends PromotionWindows {
  /** Policy shown before the first assessment. */
  policy: SupernodePolicy;
  /** ms since the epoch. */
  now: () => number;
  /** The role the node starts in (default `ordinary`). */
  role?: NodeRole;
}

/** `ctl status` → `promotion`. */
export interface PromotionDecisionStatus extends PromotionStatus {
  policy: SupernodePolicy;
  role: NodeRole;
  eligible: boolean;
  reasons: string[];
  /** ISO time of the last assessment; null before the first. */
  lastCheck: string | null;
  /** ISO time since when `eligible` has had its current value; null before the first assessment. */
  since: string | null;
  /** What happens next, and when, if the condition holds; null when nothing is due. */
  next: { action: 'promote' | 'demote'; at: string } | null;
}

export class PromotionDecider {
  readonly #now: () => number;
  readonly #windows: PromotionWindows;
  #policy: SupernodePolicy;
  #role: NodeRole;
  #eligible: boolean | null = null;
  #since: number | null = null;
  #lastCheck: number | null = null;
  #reasons: string[] = ['not checked yet'];

  constructor(options: PromotionDeciderOptions) {
    this.#now = options.now;
    this.#windows = { promoteAfterS: options.promoteAfterS, demoteAfterS: options.demoteAfterS };
    this.#policy = options.policy;
    this.#role = options.role ?? 'ordinary';
  }

  get role(): NodeRole {
    return this.#role;
  }

  /** Take one assessment; returns the action to carry out now (the role is already updated). */
  update(assessment: Assessment): PromotionAction {
    const now = this.#now();
    this.#policy = assessment.policy;
    if (this.#eligible !== assessment.eligible) {
      this.#eligible = assessment.eligible;
      this.#since = now;
    }
    this.#lastCheck = now;
    this.#reasons = [...assessment.reasons];
    const action = this.#decide(now);
    if (action === 'promote') this.#role = 'supernode';
    if (action === 'demote') this.#role = 'ordinary';
    return action;
  }

  /**
   * The node changed role for another reason (promotion failed to start its
   * services, shutdown): record it without an action. The eligibility timer
   * keeps running.
   */
  setRole(role: NodeRole): void {
    this.#role = role;
  }

  status(): PromotionDecisionStatus {
    const next = this.#next();
    return {
      policy: this.#policy,
      role: this.#role,
      eligible: this.#eligible ?? false,
      reasons: [...this.#reasons],
      lastCheck: iso(this.#lastCheck),
      since: iso(this.#since),
      next: next === null ? null : { action: next.action, at: new Date(next.at).toISOString() },
    };
  }

  #decide(now: number): PromotionAction {
    const next = this.#next();
    return next !== null && now >= next.at ? next.action : 'none';
  }

  /** The transition due if the current condition holds, and from when. */
  #next(): { action: 'promote' | 'demote'; at: number } | null {
    if (this.#since === null || this.#lastCheck === null) return null;
    switch (this.#policy) {
      case 'never':
        return this.#role === 'supernode' ? { action: 'demote', at: this.#lastCheck } : null;
      case 'always':
        return this.#role === 'ordinary' ? { action: 'promote', at: this.#lastCheck } : null;
      case 'auto':
        if (this.#role === 'ordinary' && this.#eligible === true) {
          return { action: 'promote', at: this.#since + this.#windows.promoteAfterS * 1000 };
        }
        if (this.#role === 'supernode' && this.#eligible === false) {
          return { action: 'demote', at: this.#since + this.#windows.demoteAfterS * 1000 };
        }
        return null;
    }
  }
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
