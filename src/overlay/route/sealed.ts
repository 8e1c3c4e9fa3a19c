import { z } from 'zod';
import { CLOCK_SKEW_MS, verifyCredential } from '../../crypto/credential.js';
import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { signWith, verifySignature } from '../../crypto/identity.js';
import { HandshakeState } from '../../crypto/noise/index.js';
import { CredentialError, PartylineError, errorMessage } from '../../errors.js';
import { normaliseUserName } from '../../login/user-name.js';
import { formatIssues } from '../../wire/messages.js';

/**
 * Sealed messages: what one device says to another through supernodes that
 * are not trusted (DESIGN.md "Trust": "supernodes are untrusted; everything
 * they carry is end-to-end authenticated and encrypted").
 *
 * ## Format
 *
 * A sealed message is one Noise `X` handshake message
 * (`Noise_X_25519_ChaChaPoly_SHA256`: `<- s ... -> e, es, s, ss`): the sender
 * knows the recipient device's Noise static key (from its signed location
 * record, certified by the login server), and the message carries the
 * sender's own static key, encrypted. The prologue is
 * `"partyline/sealed/v1\n" + network + "\n" + recipient deviceId`, so a
 * message cannot be replayed into another network or at another device.
 *
 * The encrypted payload is JSON:
 *
 *     {v: 1, cred, to: {user, deviceId}, type, id, ts, re?, body, sig}
 *
 * - `cred`: the sender's credential; the recipient checks it against the
 *   login server's key **at `ts`** (a message held 72 h for an offline user
 *   outlives the credential it was sent under) and checks that it certifies
 *   the Noise static key the handshake proved.
 * - `sig`: Ed25519 by the sender's certified device key over
 *   `"partyline/sealed-sig/v1\n" + JSON([network, to.user, to.deviceId, type,
 *   id, ts, re, body])`: a signature, so the recipient holds proof of who
 *   wrote an instant message, not only a deniable MAC.
 * - `id`: random; with the sender's device id, the key for duplicate
 *   suppression. `ts`: epoch ms; older than `SEALED_LIFETIME_MS` (72 h) or
 *   more than the clock skew in the future is refused.
 *
 * The supernodes see who sends to whom (they route by it), the size and the
 * time; not the type, the body or anything else.
 */

export const SEALED_LIFETIME_MS = 72 * 3_600_000;
/** Largest sealed message (bytes before base64): leaves room in a 64 KiB link frame for the routing envelope. */
export const MAX_SEALED_BYTES = 32 * 1024;
const PROLOGUE = 'partyline/sealed/v1\n';
const SIG_DOMAIN = 'partyline/sealed-sig/v1\n';

export class SealedError extends PartylineError {
  constructor(code: `ERR_SEALED_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A device someone can send sealed messages to: from a verified location record. */
export interface SealTarget {
  user: string;
  deviceId: string;
  /** The device's certified X25519 Noise static key. */
  noiseKey: Buffer;
}

export interface SealInput {
  type: string;
  body: unknown;
  /** Random when not given. */
  id?: string;
  /** The id of the message this one answers. */
  re?: string;
  ts?: number;
}

export interface OpenedMessage {
  from: { user: string; deviceId: string; noiseKey: Buffer; credential: Credential };
  to: { user: string; deviceId: string };
  type: string;
  id: string;
  re: string | undefined;
  ts: number;
  body: unknown;
}

const payloadSchema = z.object({
  v: z.literal(1),
  cred: z.record(z.string(), z.unknown()),
  to: z.object({ user: z.string().min(1).max(64), deviceId: z.string().min(1).max(64) }).strict(),
  type: z.string().min(1).max(64),
  id: z.string().min(8).max(64),
  ts: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  re: z.string().min(1).max(64).optional(),
  body: z.unknown(),
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected base64 of 64 bytes'),
}).strict();

function prologue(network: string, deviceId: string): Buffer {
  return Buffer.from(`${PROLOGUE}${network}\n${deviceId}`, 'utf8');
}

function signedBytes(network: string, to: { user: string; deviceId: string }, type: string, id: string, ts: number, re: string | undefined, body: unknown): Buffer {
  return Buffer.from(SIG_DOMAIN + JSON.stringify([network, to.user, to.deviceId, type, id, ts, re ?? null, body ?? null]), 'utf8');
}

export function randomMessageId(): string {
  return globalThis.crypto.randomUUID().replace(/-/g, '');
}

/** Seal `message` for `to`, as the device `identity` holding `credential`. Returns the bytes to route. */
export function seal(options: { identity: Identity; credential: Credential; network: string; to: SealTarget }, message: SealInput): Buffer {
  const { identity, credential, network, to } = options;
  const id = message.id ?? randomMessageId();
  const ts = message.ts ?? Date.now();
  const target = { user: normaliseUserName(to.user), deviceId: to.deviceId };
  const sig = signWith(identity.signing, signedBytes(network, target, message.type, id, ts, message.re, message.body)).toString('base64');
  const payload = { v: 1, cred: credential, to: target, type: message.type, id, ts, ...(message.re !== undefined ? { re: message.re } : {}), body: message.body ?? null, sig };
  const bytes = Buffer.from(JSON.stringify(payload), 'utf8');
  const handshake = new HandshakeState({ pattern: 'X', initiator: true, prologue: prologue(network, to.deviceId), staticKeyPair: identity.noise, remoteStaticKey: to.noiseKey });
  const sealed = handshake.writeMessage(bytes);
  if (sealed.length > MAX_SEALED_BYTES) throw new SealedError('ERR_SEALED_TOO_LONG', `sealed ${message.type}: ${sealed.length} bytes, at most ${MAX_SEALED_BYTES}`);
  return sealed;
}

/**
 * Open a sealed message addressed to this device: decrypt, then check the
 * payload, the sender's credential (at the message's time, bound to the key
 * the handshake proved), the signature and the time. Throws SealedError
 * (`ERR_SEALED_DECRYPT`, `_MALFORMED`, `_CREDENTIAL`, `_SIGNATURE`,
 * `_RECIPIENT`, `_EXPIRED`, `_NOT_YET_VALID`).
 */
export function openSealed(options: { identity: Identity; user: string; network: string; loginServerKey: Uint8Array; now?: number }, sealed: Buffer): OpenedMessage {
  const { identity, network } = options;
  const now = options.now ?? Date.now();
  if (sealed.length > MAX_SEALED_BYTES) throw new SealedError('ERR_SEALED_TOO_LONG', `sealed message of ${sealed.length} bytes, at most ${MAX_SEALED_BYTES}`);
  const handshake = new HandshakeState({ pattern: 'X', initiator: false, prologue: prologue(network, identity.deviceId), staticKeyPair: identity.noise });
  let plain: Buffer;
  try {
    plain = handshake.readMessage(sealed);
  } catch (err) {
    throw new SealedError('ERR_SEALED_DECRYPT', `sealed message does not open for this device: ${errorMessage(err)}`, { cause: err });
  }
  const senderKey = handshake.remoteStaticKey!;
  let raw: unknown;
  try {
    raw = JSON.parse(plain.toString('utf8'));
  } catch (err) {
    throw new SealedError('ERR_SEALED_MALFORMED', 'sealed message: payload is not JSON', { cause: err });
  }
  const parsed = payloadSchema.safeParse(raw);
  if (!parsed.success) throw new SealedError('ERR_SEALED_MALFORMED', `sealed message: ${formatIssues(parsed.error, 'payload').join('; ')}`);
  const p = parsed.data;
  if (p.to.deviceId !== identity.deviceId || p.to.user !== normaliseUserName(options.user)) {
    throw new SealedError('ERR_SEALED_RECIPIENT', `sealed message for ${p.to.user}/${p.to.deviceId}, this is ${options.user}/${identity.deviceId}`);
  }
  if (p.ts > now + CLOCK_SKEW_MS) throw new SealedError('ERR_SEALED_NOT_YET_VALID', `sealed ${p.type}: sent in the future (${new Date(p.ts).toISOString()})`);
  if (p.ts + SEALED_LIFETIME_MS <= now) throw new SealedError('ERR_SEALED_EXPIRED', `sealed ${p.type}: older than 72 h`);
  let credential: Credential;
  try {
    credential = verifyCredential(p.cred, { loginServerKey: options.loginServerKey, network, now: p.ts, noiseKey: senderKey });
  } catch (err) {
    const why = err instanceof CredentialError ? `${err.code}: ${err.message}` : errorMessage(err);
    throw new SealedError('ERR_SEALED_CREDENTIAL', `sealed ${p.type}: sender's credential does not hold (${why})`, { cause: err });
  }
  if (!verifySignature(Buffer.from(credential.deviceKey, 'base64'), signedBytes(network, p.to, p.type, p.id, p.ts, p.re, p.body), Buffer.from(p.sig, 'base64'))) {
    throw new SealedError('ERR_SEALED_SIGNATURE', `sealed ${p.type} from ${credential.user}: signature does not verify with the certified device key`);
  }
  return {
    from: { user: normaliseUserName(credential.user), deviceId: credential.deviceId, noiseKey: Buffer.from(senderKey), credential },
    to: p.to,
    type: p.type,
    id: p.id,
    re: p.re,
    ts: p.ts,
    body: p.body,
  };
}
