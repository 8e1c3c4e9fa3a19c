import { z } from 'zod';
import { isHostPort } from '../../util/host-port.js';

/**
 * The media-path offer and answer, carried end to end as sealed messages
 * (src/overlay/route/sealed.ts) of types `path.offer` and `path.answer`:
 * the supernodes on the way see neither the candidates nor the check
 * passwords nor the relay leg key.
 *
 * - `candidates`: where the sender may be reached directly over UDP —
 *   `host` (its interface addresses, for a peer on the same LAN) and `srflx`
 *   (what STUN on its supernode saw).
 * - `relay`: a relay allocation the offerer made on its supernode, with the
 *   credentials of the leg meant for the answerer (src/relay/).
 * - `udp`: false when the sender's network blocks UDP (it will use TCP legs).
 * - `purpose`: what the path is for (`probe` now; calls use the same).
 */

const hostPort = z.string().max(100).refine(isHostPort, { message: 'expected "host:port"' });
const token = z.string().min(4).max(128).regex(/^[A-Za-z0-9+/=_-]+$/, 'expected base64/base64url');

export const candidateSchema = z.object({
  kind: z.enum(['host', 'srflx']),
  address: hostPort,
}).strict();
export type Candidate = z.infer<typeof candidateSchema>;

export const relayOfferSchema = z.object({
  allocation: z.string().min(1).max(64),
  udp: hostPort.nullable(),
  tcp: hostPort,
  username: z.string().min(1).max(128),
  key: token,
}).strict();
export type RelayOffer = z.infer<typeof relayOfferSchema>;

export const PATH_PURPOSES = ['probe', 'call'] as const;

export const pathOfferSchema = z.object({
  session: z.string().min(8).max(64),
  ufrag: token,
  pwd: token,
  candidates: z.array(candidateSchema).max(16),
  relay: relayOfferSchema.nullable(),
  udp: z.boolean(),
  purpose: z.enum(PATH_PURPOSES),
  /** Probe traffic tag: packets of this session carry it. */
  tag: z.string().regex(/^[0-9a-f]{16}$/),
}).strict();
export type PathOffer = z.infer<typeof pathOfferSchema>;

export const pathAnswerSchema = z.object({
  session: z.string().min(8).max(64),
  accepted: z.boolean(),
  reason: z.string().max(200).optional(),
  ufrag: token.optional(),
  pwd: token.optional(),
  candidates: z.array(candidateSchema).max(16),
  udp: z.boolean(),
  /** How the answerer joined the offered relay: 'udp', 'tcp' or not at all. */
  relayLeg: z.enum(['udp', 'tcp', 'none']),
}).strict();
export type PathAnswer = z.infer<typeof pathAnswerSchema>;
