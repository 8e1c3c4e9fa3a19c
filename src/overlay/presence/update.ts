import { z } from 'zod';
import { CLOCK_SKEW_MS, verifyCredential } from '../../crypto/credential.js';
import type { Credential } from '../../crypto/credential.js';
import { signWith, verifySignature } from '../../crypto/identity.js';
import { CredentialError, PartylineError, errorMessage } from '../../errors.js';
import { normaliseUserName } from '../../login/user-name.js';
import { isHostPort, normalizeHostPort } from '../../util/host-port.js';
import { formatIssues } from '../../wire/messages.js';
import { ONLINE_WINDOW_MS } from '../index/node-messages.js';
import { RECORD_LIFETIME_MS, credentialSchema } from '../index/record.js';
import { PRESENCE_STATES } from './state.js';
import type { PresenceState } from './state.js';

/**
 * Presence updates: one device's state, as it travels from the device's
 * supernode to the supernodes responsible for its user and on to the
 * supernodes and phones of the user's buddies (presence-service.ts).
 *
 * ## Two kinds
 *
 * - **Signed by the device** (`by: "device"`): `online`, `in-call`, and the
 *   `offline` a device says when it logs out. Ed25519 by the device key its
 *   credential certifies, over `"partyline/presence/v1\n" + JSON([network,
 *   user, deviceId, state, supernode, seq, issued, credential.signature])`,
 *   checked like a location record (credential valid at `issued`, for this
 *   network, user and device). Supernodes carry these and cannot forge or
 *   alter them; every hop, and the watching phone itself, verifies them.
 * - **Said by the device's supernode** (`by: "supernode"`, always
 *   `offline`): a device that loses power or its network cannot say
 *   goodbye; its supernode notices the dead link (TCP close, keep-alive
 *   sweep) and says so. Nothing to sign with: the supernodes responsible
 *   for the user accept it only over an index link from the supernode the
 *   device itself named — in its newest location record or signed update
 *   (`attestedBy` below). A rogue supernode can thus only say "offline"
 *   about devices attached to it, which it could bring about anyway by
 *   dropping their link.
 *
 * ## Order
 *
 * `seq` grows with every update a device signs (like a record's seq, at
 * least the clock), so an old signed update cannot be replayed over a newer
 * one. A supernode's `offline` carries the `seq` of the last update the
 * device signed on that link: it beats that update (and older ones) but not
 * a newer one — a device that went from supernode A to B has signed a
 * higher seq at B by the time A notices the dead link.
 *
 * ## Lifetime
 *
 * `online` and `in-call` last `ONLINE_WINDOW_MS` (65 min): an attached
 * device signs a fresh update with every record refresh (30 min), so an
 * update that is not refreshed belongs to a device that vanished together
 * with its supernode. `offline` is kept as long as records (72 h): it says
 * when the device was last seen.
 */
export interface DevicePresenceUpdate {
  v: 1;
  by: 'device';
  /** Normalised user name. */
  user: string;
  deviceId: string;
  state: PresenceState;
  /** `host:port` of the supernode the device is attached to (for `offline`: the one it leaves). */
  supernode: string;
  seq: number;
  /** Epoch ms when the device signed it. */
  issued: number;
  credential: Credential;
  signature: string;
}

export interface SupernodePresenceUpdate {
  v: 1;
  by: 'supernode';
  user: string;
  deviceId: string;
  state: 'offline';
  /** The supernode that lost the device's link (and says so). */
  supernode: string;
  /** The seq of the last update the device signed on that link. */
  seq: number;
  /** Epoch ms (the supernode's clock, not before the device's last update). */
  issued: number;
}

export type PresenceUpdate = DevicePresenceUpdate | SupernodePresenceUpdate;

export class PresenceError extends PartylineError {
  constructor(code: `ERR_PRESENCE_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

const DOMAIN = 'partyline/presence/v1\n';
const epochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const hostPort = z.string().max(100).refine(isHostPort, { message: 'expected "host:port"' });
const userName = z.string().min(1).max(64);
const deviceId = z.string().min(1).max(64);

export const presenceUpdateSchema = z.discriminatedUnion('by', [
  z.object({
    v: z.literal(1),
    by: z.literal('device'),
    user: userName,
    deviceId,
    state: z.enum(PRESENCE_STATES),
    supernode: hostPort,
    seq: epochMs,
    issued: epochMs,
    credential: credentialSchema,
    signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected base64 of 64 bytes'),
  }).strict(),
  z.object({
    v: z.literal(1),
    by: z.literal('supernode'),
    user: userName,
    deviceId,
    state: z.literal('offline'),
    supernode: hostPort,
    seq: epochMs,
    issued: epochMs,
  }).strict(),
]);

function signedBytes(network: string, u: Omit<DevicePresenceUpdate, 'v' | 'by' | 'signature'>): Buffer {
  return Buffer.from(DOMAIN + JSON.stringify([network, u.user, u.deviceId, u.state, u.supernode, u.seq, u.issued, u.credential.signature]), 'utf8');
}

/** Sign this device's state with its Ed25519 key (the one `credential` certifies). */
export function signPresence(
  fields: { user: string; deviceId: string; state: PresenceState; supernode: string; seq: number; issued: number },
  credential: Credential,
  deviceKey: { publicKey: Buffer; privateKey: Buffer },
): DevicePresenceUpdate {
  const unsigned = { ...fields, user: normaliseUserName(fields.user), credential };
  return { v: 1, by: 'device', ...unsigned, signature: signWith(deviceKey, signedBytes(credential.network, unsigned)).toString('base64') };
}

/** Shape only: the value typed, or `ERR_PRESENCE_MALFORMED` naming the field. */
export function parsePresenceUpdate(value: unknown): PresenceUpdate {
  const parsed = presenceUpdateSchema.safeParse(value);
  if (!parsed.success) throw new PresenceError('ERR_PRESENCE_MALFORMED', formatIssues(parsed.error, 'presence update').slice(0, 3).join('; '));
  const update = parsed.data as PresenceUpdate;
  if (normaliseUserName(update.user) !== update.user) {
    throw new PresenceError('ERR_PRESENCE_MALFORMED', `presence update.user: ${JSON.stringify(update.user)} is not a normalised user name`);
  }
  return update;
}

/** When an update stops counting: online and in-call after the online window, offline after the record lifetime. */
export function presenceExpires(update: Pick<PresenceUpdate, 'state' | 'issued'>): number {
  return update.issued + (update.state === 'offline' ? RECORD_LIFETIME_MS : ONLINE_WINDOW_MS);
}

/** The state an update stands for at `now`: an online or in-call update past its lifetime means offline. */
export function effectiveState(update: Pick<PresenceUpdate, 'state' | 'issued'>, now: number): PresenceState {
  return presenceExpires(update) <= now ? 'offline' : update.state;
}

export interface PresenceVerifyOptions {
  loginServerKey: Uint8Array;
  network: string;
  now: number;
}

/**
 * Verify an untrusted update: shape and time for both kinds; for a device's
 * own update also its credential (at `issued`, for this user and device)
 * and signature. Whether a supernode's `offline` comes from the right
 * supernode is the receiver's check (`attestedBy`). Throws PresenceError:
 * `ERR_PRESENCE_MALFORMED`, `_NOT_YET_VALID`, `_EXPIRED`, `_CREDENTIAL`, `_SIGNATURE`.
 */
export function verifyPresenceUpdate(value: unknown, options: PresenceVerifyOptions): PresenceUpdate {
  const update = parsePresenceUpdate(value);
  const who = `presence of ${update.user}/${update.deviceId}`;
  if (update.issued > options.now + CLOCK_SKEW_MS) throw new PresenceError('ERR_PRESENCE_NOT_YET_VALID', `${who}: issued in the future`);
  if (update.issued + RECORD_LIFETIME_MS <= options.now) throw new PresenceError('ERR_PRESENCE_EXPIRED', `${who}: older than 72 h`);
  if (update.by === 'supernode') return update;
  const { credential } = update;
  if (credential.user !== update.user || credential.deviceId !== update.deviceId) {
    throw new PresenceError('ERR_PRESENCE_CREDENTIAL', `${who}: credential is for ${credential.user}/${credential.deviceId}`);
  }
  try {
    verifyCredential(credential, { loginServerKey: options.loginServerKey, network: options.network, now: update.issued });
  } catch (err) {
    const why = err instanceof CredentialError ? `${err.code}: ${err.message}` : errorMessage(err);
    throw new PresenceError('ERR_PRESENCE_CREDENTIAL', `${who}: credential not valid at the update's issue time (${why})`, { cause: err });
  }
  if (!verifySignature(Buffer.from(credential.deviceKey, 'base64'), signedBytes(options.network, update), Buffer.from(update.signature, 'base64'))) {
    throw new PresenceError('ERR_PRESENCE_SIGNATURE', `${who}: signature does not verify with the certified device key`);
  }
  return update;
}

/**
 * Whether `next` replaces `held` (same device). A device's signed update
 * replaces anything with a lower seq. A supernode's `offline` is not signed
 * by the device, so its seq is not trusted: it marks offline the very
 * signed update it refers to (same seq, an online or in-call update held
 * here), or — when nothing is held for the device — is kept as a weak entry
 * with seq 0 (see `storedForm`) that any signed update replaces. Otherwise a
 * supernode could send an offline with a huge seq and keep the device
 * offline against everything it signs afterwards. An identical copy does not
 * replace.
 */
export function supersedes(next: PresenceUpdate, held: PresenceUpdate | undefined): boolean {
  if (next.by === 'supernode') return held === undefined || (held.by === 'device' && held.state !== 'offline' && next.seq === held.seq);
  if (!held) return true;
  if (next.seq !== held.seq) return next.seq > held.seq;
  return false;
}

/** What a table keeps of an update it took over `held`: a supernode's offline over nothing keeps seq 0 (weak). */
export function storedForm(next: PresenceUpdate, held: PresenceUpdate | undefined): PresenceUpdate {
  return next.by === 'supernode' && held === undefined ? { ...next, seq: 0 } : next;
}

/**
 * The supernode a device itself named last, from what the device signed:
 * its newest location record or signed presence update (the newer by
 * `issued`). Only that supernode may say the device went offline, or fetch
 * the messages held for it.
 */
export function namedSupernode(record: { issued: number; device: { supernode: string } } | undefined, presence: PresenceUpdate | undefined): string | undefined {
  const signed = presence?.by === 'device' ? presence : undefined;
  const newest = !signed ? record?.device.supernode : !record || signed.issued >= record.issued ? signed.supernode : record.device.supernode;
  return newest === undefined ? undefined : normalizeSupernode(newest);
}

/** `host:port` in the one spelling used for comparisons (as the Router does). */
export function normalizeSupernode(address: string): string {
  try {
    return normalizeHostPort(address);
  } catch {
    return address;
  }
}
