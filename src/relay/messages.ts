import { z } from 'zod';
import { isHostPort } from '../util/host-port.js';
import { defineNotice, defineRequest } from '../wire/messages.js';

/**
 * Relay messages on Noise links between a node and a supernode (see
 * `service.ts` for the protocol as a whole).
 */

const hostPort = z.string().max(100).refine(isHostPort, { message: 'expected "host:port"' });
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Allocation ids: 16 base64url characters (12 random bytes). */
export const allocationId = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'expected base64url');
/** Leg usernames: the allocation id, a dot and the leg number. */
export const legUsername = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.-]+$/, 'expected a relay leg username');
/** Leg keys: 16 or more random bytes, base64 (24 characters for the 18 bytes the relay makes). */
export const legKey = z.string().min(22).max(128).regex(BASE64, 'expected base64');

export const legCredentials = z.object({ username: legUsername, key: legKey }).strict();
export type LegCredentials = z.infer<typeof legCredentials>;

/**
 * An attached node asks its supernode for a relay to `peer` (the other
 * party's user name). `session` is the caller's opaque id for the call or
 * probe, kept for logs only. The answer's leg 0 is for the allocator, leg 1
 * for the peer: the allocator passes leg 1's credentials on end to end.
 */
export const RelayAllocate = defineRequest(
  'relay.allocate',
  z.object({
    peer: z.string().min(1).max(64),
    session: z.string().min(1).max(64),
  }).strict(),
  z.object({
    allocation: allocationId,
    /** The supernode's relay UDP address; null when it has no UDP port. */
    udp: hostPort.nullable(),
    /** Where a peer dials (dialLink, role 'node') for a TCP leg. */
    tcp: hostPort,
    legs: z.tuple([legCredentials, legCredentials]),
    /** The allocation is freed after this many seconds without traffic on either leg. */
    idleS: z.number().int().min(1).max(86_400),
  }).strict(),
);
export type RelayAllocation = z.infer<typeof RelayAllocate.response>;

/** The allocator frees its allocation. `released` is false when it was already gone. */
export const RelayRelease = defineRequest(
  'relay.release',
  z.object({ allocation: allocationId }).strict(),
  z.object({ released: z.boolean() }).strict(),
);

/**
 * Bind a TCP leg on this link. `ch` names the leg in `relay.data` both ways
 * (a link may carry several legs); it is the relay's choice, unique per link.
 */
export const RelayBind = defineRequest(
  'relay.bind',
  z.object({ username: legUsername, key: legKey }).strict(),
  z.object({ ok: z.literal(true), ch: z.number().int().min(1).max(0xffff) }).strict(),
);

/** Largest datagram a TCP leg carries (what UDP legs may carry in practice). */
export const MAX_TCP_LEG_PAYLOAD = 1500;

/**
 * Media on a TCP leg, both ways: `d` is the datagram, base64 (envelopes are
 * JSON, so this is the compact choice the Link API offers).
 */
export const RelayData = defineNotice(
  'relay.data',
  z.object({
    ch: z.number().int().min(1).max(0xffff),
    d: z.string().max(Math.ceil(MAX_TCP_LEG_PAYLOAD / 3) * 4).regex(BASE64, 'expected base64'),
  }).strict(),
);

export const RELAY_CLOSE_REASONS = ['idle', 'released', 'owner-gone', 'rebound', 'shutdown'] as const;
export type RelayCloseReason = (typeof RELAY_CLOSE_REASONS)[number];

/**
 * The relay tells the allocator's link (without `ch`) and each TCP leg's link
 * (with its `ch`) that an allocation or a leg binding ended. `rebound`: the
 * leg was bound again elsewhere (another link or UDP).
 */
export const RelayClosed = defineNotice(
  'relay.closed',
  z.object({
    allocation: allocationId,
    ch: z.number().int().min(1).max(0xffff).optional(),
    reason: z.enum(RELAY_CLOSE_REASONS),
  }).strict(),
);
