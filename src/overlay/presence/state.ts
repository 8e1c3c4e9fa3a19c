/**
 * What a device says about itself to its user's buddies (DESIGN.md
 * "Supernode tier and global index": Presence). `in-call` is set by the
 * call layer; `offline` by a device that logs out, or by its supernode when
 * the link dies.
 */
export const PRESENCE_STATES = ['online', 'in-call', 'offline'] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];

/** States a device may set for itself while attached (offline is what leaving says). */
export const SETTABLE_PRESENCE_STATES = ['online', 'in-call'] as const;
export type SettablePresence = (typeof SETTABLE_PRESENCE_STATES)[number];

/**
 * One user's presence from its devices' states: `in-call` when any device
 * is in a call, else `online` when any is online, else `offline` (a user
 * with two devices is online while either is).
 */
export function userPresence(states: Iterable<PresenceState>): PresenceState {
  let best: PresenceState = 'offline';
  for (const state of states) {
    if (state === 'in-call') return 'in-call';
    if (state === 'online') best = 'online';
  }
  return best;
}
