import { z } from 'zod';
import { isHostPort } from '../util/host-port.js';
import { defineRequest } from '../wire/messages.js';

/**
 * Messages between a node and the login server, over a Noise link whose
 * responder identity is the login server's key (`network.loginServer.publicKey`).
 * The credential is issued for the identity and Noise keys the node proved
 * in the handshake, never for keys named in the body.
 */
const hostPort = z.string().max(300).refine(isHostPort, { message: 'expected "host:port"' });

export const Login = defineRequest(
  'login',
  z.object({
    user: z.string().min(1).max(64),
    password: z.string().min(1).max(1024),
    /** The supernode the node is attached to (for the last-login directory), when known. */
    supernode: hostPort.optional(),
  }).strict(),
  z.object({
    /** The credential (checked by the node with verifyCredential). */
    credential: z.record(z.string(), z.unknown()),
    /** Login server time, epoch ms: lets a node notice a wrong clock. */
    serverTime: z.number().int().nonnegative(),
  }).strict(),
);

/** Stable error codes a login can fail with (RemoteError.code at the node). */
export const LOGIN_ERRORS = {
  unknownUser: 'ERR_LOGIN_UNKNOWN_USER',
  badPassword: 'ERR_LOGIN_BAD_PASSWORD',
  rateLimited: 'ERR_LOGIN_RATE_LIMITED',
  unavailable: 'ERR_LOGIN_UNAVAILABLE',
} as const;

const userName = z.string().min(1).max(64);

/**
 * The directory fallback (the seeds' "login server answers when the index
 * has nothing"): when did a user last log in, and through which supernode.
 * Asked over a link whose handshake carried a valid credential.
 */
export const DirectoryLookup = defineRequest(
  'directory.lookup',
  z.object({ user: userName }).strict(),
  z.object({
    user: userName,
    exists: z.boolean(),
    lastLogin: z.number().int().nonnegative().nullable(),
    lastSupernode: z.string().max(300).nullable(),
  }).strict(),
);

/** The buddy list lives on the login server, so every device of a user sees the same one. */
const buddyList = z.object({ buddies: z.array(z.object({ user: userName, addedAt: z.number().int().nonnegative() }).strict()).max(10_000) }).strict();

export const BuddiesList = defineRequest('buddies.list', z.object({}).strict(), buddyList);
export const BuddiesAdd = defineRequest('buddies.add', z.object({ user: userName }).strict(), buddyList);
export const BuddiesRemove = defineRequest('buddies.remove', z.object({ user: userName }).strict(), buddyList);
