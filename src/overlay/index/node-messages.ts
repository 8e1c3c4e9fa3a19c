import { z } from 'zod';
import { isHostPort } from '../../util/host-port.js';
import { defineRequest } from '../../wire/messages.js';
import { locationRecordSchema, MAX_RECORD_ADDRESSES } from './record.js';
import { MAX_RECORDS_PER_MESSAGE } from './messages.js';
import { PRESENCE_STATES } from '../presence/state.js';

/**
 * Messages between an ordinary node and the supernode it is attached to,
 * for the global index (DESIGN.md "Joining the network" step 5 and
 * "Supernode tier and global index": Search). Served only on links that
 * attached with a valid credential (IndexService.serveNode).
 *
 * ## index.publish
 *
 * After attaching, a node sends its own signed location record (record.ts)
 * and sends a new one (higher `seq`, new `issued`) every
 * `RECORD_REFRESH_MS` while attached and whenever its addresses change. The
 * supernode checks the record like any other (shape, credential at `issued`,
 * signature), checks that it is for the user and device of the link's
 * credential, and stores it on the k supernodes closest to the user's key.
 * Refusals are errors with a stable code:
 *
 * - `ERR_RECORD_MALFORMED`, `ERR_RECORD_CREDENTIAL`, `ERR_RECORD_SIGNATURE`,
 *   `ERR_RECORD_NOT_YET_VALID`, `ERR_RECORD_EXPIRED` (see errors.ts);
 * - `ERR_RECORD_OWNER`: the record is for another user or device than the
 *   credential the link attached with;
 * - `ERR_RECORD_REPLAY`: not newer than a record this link (or this
 *   supernode's store, or every replica) already has;
 * - `ERR_INDEX_BUSY`: the node publishes more often than once per
 *   `minPublishIntervalMs`;
 * - `ERR_INDEX_UNREACHABLE`: no replica could be reached.
 *
 * ## index.search
 *
 * `{user}` → where the user's devices are. `records` carries the signed
 * records themselves: supernodes are not trusted, so a node that is about
 * to call checks them (verifyLocationRecord) instead of believing
 * `devices`. When the index has nothing, the supernode asks the login
 * server (the seeds' fallback), which knows only when the user last logged
 * in and through which supernode (`source: 'login-server'`).
 */

/** How often an attached node signs and sends a fresh record. */
export const RECORD_REFRESH_MS = 30 * 60_000;
/** A user counts as online when one of its records was signed this recently (two refreshes missed, plus skew). */
export const ONLINE_WINDOW_MS = 2 * RECORD_REFRESH_MS + 5 * 60_000;

const userName = z.string().min(1).max(64);
const epochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const hostPort = z.string().max(300).refine(isHostPort, { message: 'expected "host:port"' });

export const NodeIndexPublish = defineRequest(
  'index.publish',
  z.object({
    /** The node's own signed LocationRecord; its fields are checked by parseLocationRecord (ERR_RECORD_MALFORMED). */
    record: z.record(z.string(), z.unknown()),
  }).strict(),
  z.object({
    user: userName,
    deviceId: z.string().min(1).max(64),
    seq: epochMs,
    /** Supernodes that hold the record now (this one included when it is a replica). */
    replicas: z.number().int().nonnegative().max(64),
    /** When the record runs out (72 h after `issued`) unless refreshed. */
    expires: epochMs,
  }).strict(),
);
export type NodeIndexPublishResponse = z.infer<typeof NodeIndexPublish.response>;

export const searchDevice = z.object({
  deviceId: z.string().min(1).max(64),
  /** The supernode the device is attached to. */
  supernode: hostPort,
  /** Where the device itself may be reached, best first. */
  addresses: z.array(hostPort).max(MAX_RECORD_ADDRESSES),
  /** When the device logged in (epoch ms). */
  since: epochMs,
  /**
   * The device's presence: from its newest signed update when that is newer
   * than its record (a device that logged out, or whose supernode reported
   * it gone, is `offline` while its record still lives), else from the
   * record's age (online while signed within ONLINE_WINDOW_MS).
   */
  presence: z.enum(PRESENCE_STATES).optional(),
  /** Epoch ms: the newest record or presence update of this device. */
  lastSeen: epochMs.optional(),
}).strict();
export type SearchDevice = z.infer<typeof searchDevice>;

export const SEARCH_SOURCES = ['index', 'login-server'] as const;
export type SearchSource = (typeof SEARCH_SOURCES)[number];

export const NodeIndexSearch = defineRequest(
  'index.search',
  z.object({ user: userName }).strict(),
  z.object({
    /** The user is known: the index has records, or the login server knows the account. */
    found: z.boolean(),
    /** Normalised name. */
    user: userName,
    /** A device is online or in a call (see searchDevice.presence). */
    online: z.boolean(),
    /** Every device with a live record, oldest login first. */
    devices: z.array(searchDevice).max(MAX_RECORDS_PER_MESSAGE),
    /** The signed records behind `devices`, for the node to verify. */
    records: z.array(locationRecordSchema).max(MAX_RECORDS_PER_MESSAGE),
    /** Epoch ms: newest record's or presence update's `issued` (index), or the last login (login server); null when unknown. */
    lastSeen: epochMs.nullable(),
    /** The supernode of the last login, when the login server answered. */
    lastSupernode: z.string().max(300).optional(),
    source: z.enum(SEARCH_SOURCES),
  }).strict(),
);
export type NodeIndexSearchResponse = z.infer<typeof NodeIndexSearch.response>;

/**
 * What the login server's directory says about a user (the shape of
 * login/messages.ts DirectoryLookup's answer, without the name).
 */
export interface DirectoryAnswer {
  exists: boolean;
  lastLogin: number | null;
  lastSupernode: string | null;
}
