import { z } from 'zod';
import { defineRequest } from '../../wire/messages.js';
import { routeEndpoint } from '../route/messages.js';
import { MAX_SEALED_BYTES } from '../route/sealed.js';

/**
 * Held messages (mailbox-service.ts): a sealed message for a device that
 * is offline waits, still sealed, on the supernodes responsible for the
 * device's user, for up to 72 h.
 *
 * Between a phone and its supernode (attached link):
 *
 * - `mailbox.put {to, id, sealed}`: hold this sealed message for device
 *   `to.deviceId` of `to.user` (it was not reachable). The supernode stamps
 *   the sender (the link's credential) and stores it on the recipient
 *   user's responsible supernodes; answered `{held}` (how many took it).
 * - `mailbox.fetch {}`: deliver (route.deliver on this link) what is held
 *   for this device, then delete it; answered `{delivered}`. A phone asks
 *   after attaching and publishing its presence.
 *
 * Between supernodes (index links; the sender is the link's supernode):
 *
 * - `mailbox.store {message}`: keep one held message (also used to copy
 *   held messages to supernodes that became responsible).
 * - `mailbox.take {user, deviceId}` / `mailbox.delete {user, deviceId, ids}`:
 *   only from the supernode the device itself named last (its newest
 *   signed record or presence update): the one it is attached to.
 * - `mailbox.nudge {user, deviceId}` (responsible → the device's
 *   supernode): a message for an attached device just arrived; fetch it.
 */
export const MAX_HELD_PER_ANSWER_CHARS = 48 * 1024;
export const MAX_DELETE_IDS = 200;

const userName = z.string().min(1).max(64);
const deviceId = z.string().min(1).max(64);
export const heldMessageId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected 8..64 letters, digits, "_" or "-"');
const sealed = z.string().min(1).max(Math.ceil(MAX_SEALED_BYTES / 3) * 4).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected base64');
const epochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const recipient = z.object({ user: userName, deviceId }).strict();

export const heldMessageSchema = z.object({
  id: heldMessageId,
  /** The sender as its supernode stamped it (user and device of its credential). */
  from: routeEndpoint,
  to: recipient,
  sealed,
  /** When the sender's supernode took it (epoch ms). */
  sentAt: epochMs,
}).strict();
export type HeldMessage = z.infer<typeof heldMessageSchema>;

export const MailboxPut = defineRequest(
  'mailbox.put',
  z.object({ to: recipient, id: heldMessageId, sealed }).strict(),
  z.object({ held: z.number().int().nonnegative().max(64) }).strict(),
);

export const MailboxFetch = defineRequest(
  'mailbox.fetch',
  z.object({}).strict(),
  z.object({ delivered: z.number().int().nonnegative() }).strict(),
);

export const MailboxStore = defineRequest(
  'mailbox.store',
  z.object({ message: heldMessageSchema }).strict(),
  z.object({ status: z.enum(['stored', 'unchanged']) }).strict(),
);

export const MailboxTake = defineRequest(
  'mailbox.take',
  recipient,
  z.object({ messages: z.array(heldMessageSchema).max(64), more: z.boolean() }).strict(),
);

export const MailboxDelete = defineRequest(
  'mailbox.delete',
  z.object({ user: userName, deviceId, ids: z.array(heldMessageId).min(1).max(MAX_DELETE_IDS) }).strict(),
  z.object({ deleted: z.number().int().nonnegative().max(MAX_DELETE_IDS) }).strict(),
);

export const MailboxNudge = defineRequest(
  'mailbox.nudge',
  recipient,
  z.object({ fetching: z.boolean() }).strict(),
);
