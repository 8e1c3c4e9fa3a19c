import { z } from 'zod';
import { defineNotice, defineRequest } from '../../wire/messages.js';
import { presenceUpdateSchema } from './update.js';

/**
 * Presence messages (presence-service.ts has the protocol; update.ts the
 * format). A device update is about 700 bytes of JSON (900 at most), so
 * the lists below stay well inside a 64 KiB frame.
 *
 * Between a phone and its supernode (on the attached link):
 *
 * - `presence.set {update}`: the phone's own signed update (for the user
 *   and device of the link's credential, naming this supernode). Answered
 *   once the supernodes responsible for the user have it: `{replicas}`.
 * - `presence.watch {users}`: the users whose presence the phone wants
 *   (its buddies), replacing the previous list. Answered `{watching}` once
 *   the supernode has subscribed for them and sent what it knows.
 * - `presence.changed {updates}` (notice, supernode → phone): news about
 *   watched users.
 *
 * Between supernodes (on index links; the sender is the link's
 * authenticated supernode):
 *
 * - `presence.publish {updates}`: to the supernodes responsible for the
 *   updates' user (the k closest to its key, like its records).
 * - `presence.subscribe {users}`: to the responsible supernodes: tell me
 *   about these users for `ttlMs`; answered with what they know now.
 * - `presence.notify {updates}`: responsible → subscribed supernode; the
 *   answer names users it no longer wants (`unwanted`).
 * - `presence.query {user}`: what a responsible supernode knows of a user
 *   now (for `index.search`'s `online`).
 */
export const MAX_WATCHED_USERS = 1000;
export const MAX_SUBSCRIBE_USERS = 6;
export const MAX_UPDATES_PER_MESSAGE = 48;

const userName = z.string().min(1).max(64);
const updates = z.array(presenceUpdateSchema).max(MAX_UPDATES_PER_MESSAGE);

export const PresenceSet = defineRequest(
  'presence.set',
  z.object({ update: z.record(z.string(), z.unknown()) }).strict(),
  z.object({ replicas: z.number().int().nonnegative().max(64) }).strict(),
);

export const PresenceWatch = defineRequest(
  'presence.watch',
  z.object({ users: z.array(userName).max(MAX_WATCHED_USERS) }).strict(),
  z.object({ watching: z.number().int().nonnegative().max(MAX_WATCHED_USERS) }).strict(),
);

export const PresenceChanged = defineNotice('presence.changed', z.object({ updates }).strict());

export const PresencePublish = defineRequest(
  'presence.publish',
  z.object({ updates: updates.min(1) }).strict(),
  z.object({
    accepted: z.number().int().nonnegative().max(MAX_UPDATES_PER_MESSAGE),
    refused: z.array(z.object({ deviceId: z.string().max(64), code: z.string().max(64) }).strict()).max(MAX_UPDATES_PER_MESSAGE),
  }).strict(),
);

export const PresenceSubscribe = defineRequest(
  'presence.subscribe',
  z.object({ users: z.array(userName).min(1).max(MAX_SUBSCRIBE_USERS) }).strict(),
  z.object({ updates, ttlMs: z.number().int().positive().max(86_400_000) }).strict(),
);

export const PresenceNotify = defineRequest(
  'presence.notify',
  z.object({ updates: updates.min(1) }).strict(),
  z.object({ unwanted: z.array(userName).max(MAX_UPDATES_PER_MESSAGE) }).strict(),
);

export const PresenceQuery = defineRequest(
  'presence.query',
  z.object({ user: userName }).strict(),
  z.object({ updates }).strict(),
);
