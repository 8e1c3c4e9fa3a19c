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
