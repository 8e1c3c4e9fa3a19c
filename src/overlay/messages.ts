import { z } from 'zod';
import { isHostPort } from '../util/host-port.js';
import { defineNotice, defineRequest } from '../wire/messages.js';

/**
 * Messages between ordinary nodes and supernodes, and between supernodes.
 * Everything a supernode hands out (addresses of other supernodes) is a
 * hint: nodes verify each supernode's identity in the Noise handshake.
 */
const hostPort = z.string().max(300).refine(isHostPort, { message: 'expected "host:port"' });
const base64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 32-byte key');

export const supernodeInfo = z.object({
  address: hostPort,
  /** The supernode's Noise static key, base64: lets nodes use IK and pin the key. */
  publicKey: base64Key.optional(),
  /** Extra TCP ports (443, 80) for clients behind strict firewalls. */
  altPorts: z.array(z.number().int().min(1).max(65535)).max(8).refine((ports) => new Set(ports).size === ports.length, 'expected distinct ports').optional(),
}).strict();
export type SupernodeInfo = z.infer<typeof supernodeInfo>;

const supernodeList = z.array(supernodeInfo).max(50);

/**
 * Attach to a supernode with a credential issued by the login server. A
 * supernode attaching to another supernode (peering) says so with `supernode`.
 */
export const Attach = defineRequest(
  'attach',
  z.object({
    credential: z.record(z.string(), z.unknown()),
    /** Set by supernodes: the address they serve on. */
    supernode: supernodeInfo.optional(),
  }).strict(),
  z.object({
    /** Interval at which the supernode expects keep-alives. */
    keepAliveS: z.number().int().min(1).max(3600),
    /** The address this link came from, as the supernode sees it. */
    observed: hostPort,
    /** Other live supernodes, for the host cache and the alternate-node table. */
    supernodes: supernodeList,
    /** The user the supernode attached (echo of the credential). */
    user: z.string().max(64),
    /**
     * The address the supernode serves on, as it advertises it: what the node
     * names in presence and relays (it may have dialled another one: a port
     * forward, a NAT in between, a hostname).
     */
    self: supernodeInfo.optional(),
  }).strict(),
);

/** Gossip: supernodes push fresh supernode lists to attached nodes and peers. */
export const Supernodes = defineNotice('supernodes', z.object({ supernodes: supernodeList }).strict());

/**
 * Before it has a credential, a node may open a tunnel through the supernode
 * to the login server (the firewall case from the seeds). The tunnel
 * carries an end-to-end Noise session: the supernode sees only ciphertext.
 */
export const TunnelOpen = defineRequest(
  'tunnel.open',
  z.object({ target: z.literal('login') }).strict(),
  z.object({ tunnel: z.number().int().min(1).max(0xffff) }).strict(),
);

export const TunnelData = defineNotice(
  'tunnel.data',
  z.object({
    tunnel: z.number().int().min(1).max(0xffff),
    data: z.string().max(24_000).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
  }).strict(),
);

export const TunnelClose = defineNotice(
  'tunnel.close',
  z.object({ tunnel: z.number().int().min(1).max(0xffff), reason: z.string().max(200).optional() }).strict(),
);

/** A supernode that is going away tells its nodes where to go instead. */
export const Leaving = defineNotice('leaving', z.object({ supernodes: supernodeList }).strict());

/**
 * RFC 5780 "change IP" with supernodes that have one address each: supernode
 * A hands a node's Binding request (with the node's address as A saw it) to
 * peer supernode B, which answers the node directly from its own address.
 * Accepted only on authenticated supernode peer links.
 */
export const StunDelegate = defineNotice(
  'stun.delegate',
  z.object({
    packet: z.string().max(2800).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
    client: hostPort,
  }).strict(),
);
