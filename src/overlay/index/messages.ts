import { z } from 'zod';
import { isHostPort } from '../../util/host-port.js';
import { defineRequest } from '../../wire/messages.js';
import { idFromHex, idToHex } from './node-id.js';
import { locationRecordSchema } from './record.js';
import type { ContactInfo } from './routing-table.js';

/**
 * Messages between supernodes for the global index (Kademlia RPCs). The
 * sender of a request is the authenticated peer of the link it arrives on
 * (its id is SHA-256 of its Noise static key, its address the one it
 * announced when peering), so no request carries a "from" field.
 *
 * Contacts in answers are hints: a node that dials one checks in the Noise
 * handshake that the peer holds `publicKey` and that SHA-256 of that key is
 * `id` before it believes anything the contact says.
 *
 * Sizes (JSON): a contact is about 165 bytes, a record about 660 bytes (at
 * most about 1.5 KB, with 8 addresses of 100 characters); the largest
 * message (8 such records, or 20 contacts) stays far under the 65 535-byte
 * frame limit.
 */
export const MAX_CLOSER = 20;
export const MAX_RECORDS_PER_MESSAGE = 8;

const hexId = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits');
const hostPort = z.string().max(300).refine(isHostPort, { message: 'expected "host:port"' });
const base64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 32-byte key');

export const wireContact = z.object({
  id: hexId,
  address: hostPort,
  /** Noise static key, base64; SHA-256 of it is `id`. */
  publicKey: base64Key.optional(),
}).strict();
export type WireContact = z.infer<typeof wireContact>;

const closerList = z.array(wireContact).max(MAX_CLOSER);

/** FIND_NODE: the contacts the receiver knows closest to `target`. */
export const FindNode = defineRequest(
  'index.find-node',
  z.object({ target: hexId }).strict(),
  z.object({ closer: closerList }).strict(),
);
export type FindNodeRequest = z.infer<typeof FindNode.request>;
export type FindNodeResponse = z.infer<typeof FindNode.response>;

/** FIND_VALUE: a user's device records if the receiver holds any, else closer contacts. */
export const FindValue = defineRequest(
  'index.find-value',
  z.object({ user: z.string().min(1).max(64) }).strict(),
  z.object({ records: z.array(locationRecordSchema).min(1).max(MAX_RECORDS_PER_MESSAGE).optional(), closer: closerList }).strict(),
);
export type FindValueRequest = z.infer<typeof FindValue.request>;
export type FindValueResponse = z.infer<typeof FindValue.response>;

export const STORE_STATUSES = ['stored', 'replaced', 'unchanged', 'refused'] as const;
export type StoreStatus = (typeof STORE_STATUSES)[number];

/** STORE: device records of one user; each is verified and stored on its own. */
export const Store = defineRequest(
  'index.store',
  z.object({ records: z.array(locationRecordSchema).min(1).max(MAX_RECORDS_PER_MESSAGE) }).strict(),
  z.object({
    results: z.array(z.object({
      deviceId: z.string().max(64),
      status: z.enum(STORE_STATUSES),
      /** Why a record was refused: a stable `ERR_RECORD_*` code. */
      code: z.string().max(64).optional(),
    }).strict()).max(MAX_RECORDS_PER_MESSAGE),
  }).strict(),
);
export type StoreRequest = z.infer<typeof Store.request>;
export type StoreResponse = z.infer<typeof Store.response>;

/** PING: liveness (eviction checks, stale contacts). Answers with the receiver's id. */
export const IndexPing = defineRequest(
  'index.ping',
  z.object({}).strict(),
  z.object({ id: hexId }).strict(),
);
export type IndexPingResponse = z.infer<typeof IndexPing.response>;

export function contactToWire(c: ContactInfo): WireContact {
  return c.publicKey === undefined ? { id: idToHex(c.id), address: c.address } : { id: idToHex(c.id), address: c.address, publicKey: c.publicKey };
}

/** A contact from a (schema-checked) answer. Throws `ERR_INDEX_ID` for a bad id. */
export function contactFromWire(w: WireContact): ContactInfo {
  return w.publicKey === undefined ? { id: idFromHex(w.id), address: w.address } : { id: idFromHex(w.id), address: w.address, publicKey: w.publicKey };
}
