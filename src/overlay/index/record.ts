import { z } from 'zod';
import { CLOCK_SKEW_MS, verifyCredential } from '../../crypto/credential.js';
import type { Credential } from '../../crypto/credential.js';
import { signWith, verifySignature } from '../../crypto/identity.js';
import { CredentialError, errorMessage } from '../../errors.js';
import { normaliseUserName } from '../../login/user-name.js';
import { isHostPort } from '../../util/host-port.js';
import { formatIssues } from '../../wire/messages.js';
import { RecordError } from './errors.js';

/**
 * Location records: where a user's devices can be reached (DESIGN.md
 * "Supernode tier and global index", "Trust").
 *
 * ## One signed record per device
 *
 * A user may be logged in on several devices. Each device signs and
 * publishes **its own** record, naming only itself:
 *
 *     {v: 1, user, device: {deviceId, supernode, addresses, since},
 *      seq, issued, credential, signature}
 *
 * and a user's entry in the index is the set of these records, one per
 * `deviceId` (what FIND_VALUE returns). Stores merge per `(user, deviceId)`:
 * a record only ever replaces an older record *of the same device*, so two
 * devices of one user never overwrite each other, and no device can speak
 * for another one (it has no key to sign the other's addresses with).
 *
 * ## What the signature proves
 *
 * `signature` is Ed25519 by the device key that `credential` certifies, over
 * `"partyline/location/v1\n" + JSON([network, user, deviceId, supernode,
 * addresses, since, seq, issued, credential.signature])`. The login server's
 * signature on the credential ties the device key to the user; the record's
 * signature ties the location to the device key; supernodes, which are not
 * trusted, can drop records but not forge, alter or re-attribute them.
 *
 * ## Time
 *
 * Credentials last hours, records must stay storable for 72 h. So the
 * credential is checked **at the record's `issued` time** (valid then, for
 * this network, this user and this device), `issued` must not lie in the
 * future (beyond the credentials' clock skew), and the record expires
 * `RECORD_LIFETIME_MS` (72 h) after `issued`. A device refreshes by signing a
 * new record (new `issued`, higher `seq`) while it is online. Consequence: a
 * device whose credential is no longer renewed can keep its records alive
 * for at most 72 h past the credential's expiry — its key can back-date
 * `issued`, but only into the credential's validity.
 *
 * ## Replay
 *
 * `seq` must grow with every record a device signs (`nextSeq()`: at least
 * the previous + 1, at least the clock). A store refuses a record whose `seq`
 * is lower than, or equal to but different from, the one it holds for that
 * device (`ERR_RECORD_REPLAY`); an identical copy is accepted as `unchanged`.
 */
export const RECORD_LIFETIME_MS = 72 * 3_600_000;
export const MAX_RECORD_ADDRESSES = 8;
/** Longest `host:port` accepted in a record (an IPv6 literal with port is at most 47). */
export const MAX_RECORD_ADDRESS_LENGTH = 100;

const DOMAIN = 'partyline/location/v1\n';

export interface DeviceLocation {
  deviceId: string;
  /** `host:port` of the supernode the device is attached to. */
  supernode: string;
  /** Where the device itself may be reached (`host:port`: local, server-reflexive ...), best first. */
  addresses: string[];
  /** Epoch ms when this device logged in. */
  since: number;
}

export interface LocationRecord {
  v: 1;
  /** Normalised user name (see login/user-name.ts). */
  user: string;
  device: DeviceLocation;
  /** Grows with every record this device signs. */
  seq: number;
  /** Epoch ms when the device signed it; it expires 72 h later. */
  issued: number;
  /** The login server's credential for the signing device. */
  credential: Credential;
  /** Ed25519 by `credential.deviceKey`, base64. */
  signature: string;
}

const b64 = (bytes: 32 | 64): z.ZodString => z.string().regex(bytes === 32 ? /^[A-Za-z0-9+/]{43}=$/ : /^[A-Za-z0-9+/]{86}==$/, `expected base64 of ${bytes} bytes`);

/** A credential inside a record (same fields as crypto/credential.ts; its signature is checked by verifyCredential). Also used by presence updates. */
export const credentialSchema = z.object({
  v: z.literal(1),
  user: z.string().min(1).max(64),
  deviceId: z.string().min(1).max(64),
  deviceKey: b64(32),
  noiseKey: b64(32),
  network: z.string().min(1).max(64),
  issued: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  expires: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  signature: b64(64),
}).strict();

const recordAddress = z.string().max(MAX_RECORD_ADDRESS_LENGTH).refine(isHostPort, { message: 'expected "host:port"' });
const epochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** Shape of a location record on the wire. */
export const locationRecordSchema = z.object({
  v: z.literal(1),
  user: z.string().min(1).max(64),
  device: z.object({
    deviceId: z.string().min(1).max(64),
    supernode: recordAddress,
    addresses: z.array(recordAddress).max(MAX_RECORD_ADDRESSES),
    since: epochMs,
  }).strict(),
  seq: epochMs,
  issued: epochMs,
  credential: credentialSchema,
  signature: b64(64),
}).strict();

export interface UnsignedLocationRecord {
  user: string;
  device: DeviceLocation;
  seq: number;
  issued: number;
}

export function locationSignedBytes(record: UnsignedLocationRecord & { credential: Credential }): Buffer {
  const d = record.device;
  return Buffer.from(
    DOMAIN + JSON.stringify([record.credential.network, record.user, d.deviceId, d.supernode, d.addresses, d.since, record.seq, record.issued, record.credential.signature]),
    'utf8',
  );
}

/** Sign a record with the device's Ed25519 key (the one `credential` certifies). */
export function signLocationRecord(fields: UnsignedLocationRecord, credential: Credential, deviceKey: { publicKey: Buffer; privateKey: Buffer }): LocationRecord {
  const unsigned = { ...fields, user: normaliseUserName(fields.user), device: { ...fields.device, addresses: [...fields.device.addresses] }, credential };
  return { v: 1, ...unsigned, signature: signWith(deviceKey, locationSignedBytes(unsigned)).toString('base64') };
}

/** The `seq` for a device's next record: above the previous one and not below the clock. */
export function nextSeq(previous: number | undefined, now: number): number {
  return Math.max((previous ?? 0) + 1, Math.floor(now));
}

export function recordExpires(record: Pick<LocationRecord, 'issued'>, lifetimeMs = RECORD_LIFETIME_MS): number {
  return record.issued + lifetimeMs;
}

/** Shape only: returns the value typed or throws `ERR_RECORD_MALFORMED` naming the field. */
export function parseLocationRecord(value: unknown): LocationRecord {
  const parsed = locationRecordSchema.safeParse(value);
  if (!parsed.success) {
    throw new RecordError('ERR_RECORD_MALFORMED', formatIssues(parsed.error, 'location record').slice(0, 3).join('; '));
  }
  const record: LocationRecord = parsed.data;
  if (normaliseUserName(record.user) !== record.user) {
    throw new RecordError('ERR_RECORD_MALFORMED', `location record.user: ${JSON.stringify(record.user)} is not a normalised user name`);
  }
  return record;
}

export interface RecordVerifyOptions {
  /** The login server's Ed25519 public key (the network's trust anchor). */
  loginServerKey: Uint8Array;
  network: string;
  now: number;
  lifetimeMs?: number;
}

/**
 * Verify an untrusted location record: shape, binding to its credential,
 * lifetime, credential at `issued`, signature — cheap checks first. Throws a
 * RecordError (MALFORMED, CREDENTIAL, NOT_YET_VALID, EXPIRED, SIGNATURE).
 */
export function verifyLocationRecord(value: unknown, options: RecordVerifyOptions): LocationRecord {
  const record = parseLocationRecord(value);
  verifyParsedLocationRecord(record, options);
  return record;
}

/** verifyLocationRecord without the shape check, for a record parseLocationRecord returned. */
export function verifyParsedLocationRecord(record: LocationRecord, options: RecordVerifyOptions): void {
  checkRecordTime(record, options.now, options.lifetimeMs);
  const who = `location record of ${record.user}/${record.device.deviceId}`;
  if (record.credential.user !== record.user) {
    throw new RecordError('ERR_RECORD_CREDENTIAL', `${who}: credential is for user ${JSON.stringify(record.credential.user)}`);
  }
  if (record.credential.deviceId !== record.device.deviceId) {
    throw new RecordError('ERR_RECORD_CREDENTIAL', `${who}: credential is for device ${record.credential.deviceId}`);
  }
  try {
    verifyCredential(record.credential, { loginServerKey: options.loginServerKey, network: options.network, now: record.issued });
  } catch (err) {
    const why = err instanceof CredentialError ? `${err.code}: ${err.message}` : errorMessage(err);
    throw new RecordError('ERR_RECORD_CREDENTIAL', `${who}: credential not valid at the record's issue time (${why})`, { cause: err });
  }
  if (!verifySignature(Buffer.from(record.credential.deviceKey, 'base64'), locationSignedBytes(record), Buffer.from(record.signature, 'base64'))) {
    throw new RecordError('ERR_RECORD_SIGNATURE', `${who}: signature does not verify with the certified device key`);
  }
}

/** `issued` neither in the future nor more than the lifetime ago; `since` not after `issued`. */
export function checkRecordTime(record: LocationRecord, now: number, lifetimeMs = RECORD_LIFETIME_MS): void {
  const who = `location record of ${record.user}/${record.device.deviceId}`;
  if (record.issued > now + CLOCK_SKEW_MS) {
    throw new RecordError('ERR_RECORD_NOT_YET_VALID', `${who}: issued in the future (${new Date(record.issued).toISOString()})`);
  }
  if (record.issued + lifetimeMs <= now) {
    throw new RecordError('ERR_RECORD_EXPIRED', `${who}: expired at ${new Date(record.issued + lifetimeMs).toISOString()}`);
  }
  if (record.device.since > record.issued + CLOCK_SKEW_MS) {
    throw new RecordError('ERR_RECORD_MALFORMED', `${who}: device.since is after issued`);
  }
}

/**
 * Checks a record of valid shape (parseLocationRecord) beyond its shape —
 * credential, signature, time — and throws a RecordError if it fails.
 */
export type RecordVerifier = (record: LocationRecord, now: number) => void;

/** The verifier supernodes use: full verification against the network's login server key. */
export function recordVerifier(options: Omit<RecordVerifyOptions, 'now'>): RecordVerifier {
  return (record, now) => verifyParsedLocationRecord(record, { ...options, now });
}

/** Two records with the same content (and so the same signature). */
export function sameRecord(a: LocationRecord, b: LocationRecord): boolean {
  return a.signature === b.signature && a.seq === b.seq && a.issued === b.issued && a.credential.signature === b.credential.signature
    && locationSignedBytes(a).equals(locationSignedBytes(b));
}
