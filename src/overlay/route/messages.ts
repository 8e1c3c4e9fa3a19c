import { z } from 'zod';
import { isHostPort } from '../../util/host-port.js';
import { defineRequest } from '../../wire/messages.js';
import { MAX_SEALED_BYTES } from './sealed.js';

/**
 * Routing sealed messages between devices through supernodes (DESIGN.md
 * "Instant messages go the same way as call signalling"). Three hops at
 * most: the sender's supernode, the recipient's supernode, the recipient.
 *
 * - `route.send` (attached node → its supernode): deliver `sealed` to
 *   device `to.deviceId` of `to.user`, attached to supernode `to.supernode`
 *   (from the recipient's location record). The supernode stamps the sender
 *   (user and device of the credential the link attached with; a node
 *   cannot claim to be someone else) and its own address.
 * - `route.forward` (supernode → supernode, on index links, which carry a
 *   credential of the network): the same, one hop on.
 * - `route.deliver` (supernode → attached node): a sealed message for it.
 *
 * Answers say whether the recipient's link took it: `{delivered: true}`, or
 * an error — `ERR_ROUTE_NOT_HERE` (that device is not attached to that
 * supernode), `ERR_ROUTE_UNREACHABLE` (the supernode could not be reached),
 * `ERR_ROUTE_BUSY` (rate limit). Only the sealed bytes' size and the
 * endpoints are visible to the supernodes.
 */

const userName = z.string().min(1).max(64);
const deviceId = z.string().min(1).max(64);
const hostPort = z.string().max(300).refine(isHostPort, { message: 'expected "host:port"' });
/** Base64 of at most MAX_SEALED_BYTES. */
const sealed = z.string().min(1).max(Math.ceil(MAX_SEALED_BYTES / 3) * 4).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected base64');

export const routeEndpoint = z.object({ user: userName, deviceId, supernode: hostPort }).strict();
export type RouteEndpoint = z.infer<typeof routeEndpoint>;

const delivered = z.object({ delivered: z.literal(true) }).strict();

export const RouteSend = defineRequest('route.send', z.object({ to: routeEndpoint, sealed }).strict(), delivered);
export const RouteForward = defineRequest('route.forward', z.object({ from: routeEndpoint, to: routeEndpoint, sealed }).strict(), delivered);
/** `held`: the message comes from the supernodes' mailbox (it may be up to 72 h old); without it the message is live and must be fresh. */
export const RouteDeliver = defineRequest('route.deliver', z.object({ from: routeEndpoint, sealed, held: z.literal(true).optional() }).strict(), delivered);

/**
 * `direct.deliver` (device → device, on a direct Noise link between two
 * phones, DESIGN.md "Calls": signalling through supernodes only when no
 * direct TCP path exists): the same sealed bytes, no supernode on the way.
 * `from.supernode` is the sender's word, used only to route answers when
 * the direct link is gone (they are sealed to the sender's key anyway).
 */
export const DirectDeliver = defineRequest('direct.deliver', z.object({ from: routeEndpoint, sealed }).strict(), delivered);
