/**
 * What the `status` control command returns (`partyline ctl status --json`,
 * the MQTT `status`/`telemetry` topics and the terminal UI show the same).
 *
 * The fields up to `uptimeS` are there from the first overlay stage; the
 * optional ones come with later stages and are typed loosely on purpose:
 * their owners may add fields, and `ctl status` prints any field it does
 * not know generically (status-format.ts), so adding one never breaks it.
 */
export type NodeRole = 'ordinary' | 'supernode';

export interface SupernodeAttachment {
  /** "host:port" of the supernode this node is attached to. */
  address: string;
  /** Last measured round-trip time; null before the first keep-alive. */
  rttMs: number | null;
  [extra: string]: unknown;
}

export interface NatStatus {
  /** `open`, `full-cone`, `restricted`, `port-restricted`, `symmetric`, `udp-blocked`, or `unknown`. */
  type: string;
  /** Address:port the world sees (server-reflexive), when known. */
  publicAddress?: string | null;
  [extra: string]: unknown;
}

export interface CallStatus {
  /** Call state: `dialing`, `ringing`, `active`, `held` (src/call/call-manager.ts CallView has the rest). */
  state: string;
  /** The other party (user name), when known. */
  peer?: string | null;
  /** Media path (`direct-udp`, `relay-udp`, `relay-tcp`). */
  path?: string | null;
  [extra: string]: unknown;
}

export interface PhoneStatus {
  /** `on` (handset down) or `off` (lifted). */
  hook?: 'on' | 'off';
  /** Digits dialled so far. */
  dialled?: string;
  [extra: string]: unknown;
}

export interface PromotionStatus {
  /** Configured policy: `auto`, `never`, `always`. */
  policy: string;
  /** Whether the node passes the promotion checks now. */
  candidate?: boolean;
  /** Why it does not (or why it did). */
  reason?: string | null;
  [extra: string]: unknown;
}

export interface ProvisioningStatus {
  /** The MQTT broker (password masked), or null when there is none. */
  broker: string | null;
  connected: boolean;
  /** Desired-configuration version in effect; null before the first. */
  applied: string | number | null;
  /** Version waiting for the phone to be idle, or being verified. */
  pending: string | number | null;
  [extra: string]: unknown;
}

export interface StatusReport {
  /** The logged-in (or configured) user; null while waiting for provisioning. */
  user: string | null;
  deviceId: string;
  role: NodeRole;
  loggedIn: boolean;
  /** The supernode this node is attached to; null when detached (or when it is one itself). */
  supernode: SupernodeAttachment | null;
  hostCache: { size: number; [extra: string]: unknown };
  uptimeS: number;
  /** Human label of the device (`node.name`). */
  name?: string | null;
  nat?: NatStatus | null;
  call?: CallStatus | null;
  phone?: PhoneStatus | null;
  /** LED name to its state (`on`, `off`, `blink` ...). */
  leds?: Record<string, string | boolean> | null;
  promotion?: PromotionStatus | null;
  /** Provisioning over MQTT, when the node runs with it. */
  provisioning?: ProvisioningStatus | null;
}
