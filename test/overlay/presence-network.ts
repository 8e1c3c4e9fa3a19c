import { verifyCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import type { Link } from '../../src/link/link.js';
import { dialLink, LinkServer } from '../../src/link/transport.js';
import { MailboxService } from '../../src/overlay/im/mailbox-service.js';
import type { MailboxServiceOptions } from '../../src/overlay/im/mailbox-service.js';
import { IndexService } from '../../src/overlay/index/index-service.js';
import { INDEX_LINK_ROLE } from '../../src/overlay/index/link-pool.js';
import { supernodeId, userKey } from '../../src/overlay/index/node-id.js';
import { PresenceChanged } from '../../src/overlay/presence/messages.js';
import { PresenceService } from '../../src/overlay/presence/presence-service.js';
import type { PresenceServiceOptions } from '../../src/overlay/presence/presence-service.js';
import { signPresence } from '../../src/overlay/presence/update.js';
import type { DevicePresenceUpdate, PresenceUpdate } from '../../src/overlay/presence/update.js';
import type { PresenceState } from '../../src/overlay/presence/state.js';
import { RouteDeliver, RouteForward } from '../../src/overlay/route/messages.js';
import type { RouteEndpoint } from '../../src/overlay/route/messages.js';
import { Router } from '../../src/overlay/route/router.js';
import { silentLogger } from '../../src/system/logging.js';
import { loginServer, makeDevice, NETWORK, T0 } from './index/fixtures.js';
import type { Device } from './index/fixtures.js';

/**
 * Supernodes in one process on loopback, each with what app/node.ts gives
 * a supernode for presence and messages: a LinkServer, an IndexService,
 * a Router, a PresenceService and a MailboxService, wired the same way
 * (node links: credential from the handshake; index links by role). Phones
 * are plain links attached with a credential. A shared clock (from T0)
 * drives records, credentials and expiry; timers run in real time.
 */
export const K = 3;
export const log = silentLogger();
export const clock = { now: T0 + 120_000 };

export interface Supernode {
  name: string;
  identity: Identity;
  server: LinkServer;
  address: string;
  index: IndexService;
  presence: PresenceService;
  mailbox: MailboxService;
  router: Router;
  attached: Map<string, { link: Link; user: string }>;
}

export interface SupernodeOptions {
  identity?: Identity;
  presence?: Partial<PresenceServiceOptions>;
  mailbox?: Partial<MailboxServiceOptions>;
}

export async function startSupernode(name: string, options: SupernodeOptions = {}): Promise<Supernode> {
  const identity = options.identity ?? generateIdentity();
  const { credential } = makeDevice(name, { identity });
  const attached = new Map<string, { link: Link; user: string }>();
  const holder: { sn?: Supernode } = {};
  const server = new LinkServer({
    identity, network: NETWORK, role: 'supernode', log, host: '127.0.0.1', port: 0,
    onLink: ({ link, peer }) => {
      const sn = holder.sn!;
      if (peer.role === INDEX_LINK_ROLE) return sn.index.accept({ link, peer });
      let node: Credential;
      try {
        node = verifyCredential(peer.credential, { loginServerKey: loginServer.publicKey, network: NETWORK, now: clock.now, noiseKey: link.channel.remoteStaticKey });
      } catch (err) {
        link.close(err as Error);
        return;
      }
      attached.set(node.deviceId, { link, user: node.user });
      link.once('close', () => attached.get(node.deviceId)?.link === link && attached.delete(node.deviceId));
      sn.index.serveNode(link, node);
      sn.router.serveNode(link, node);
      sn.presence.serveNode(link, node);
      sn.mailbox.serveNode(link, node);
    },
  });
  await server.start();
  const address = `127.0.0.1:${server.port}`;
  const index = new IndexService({
    identity, network: NETWORK, address, loginServerKey: loginServer.publicKey, credential: () => credential, log,
    k: K, now: () => clock.now, maintenanceIntervalMs: 3_600_000,
    serveLink: (link) => {
      holder.sn!.router.serveSupernode(link);
      holder.sn!.presence.serveSupernode(link);
      holder.sn!.mailbox.serveSupernode(link);
    },
    presence: (user, holders) => holder.sn!.presence.presenceOf(user, holders),
  });
  const presence = new PresenceService({ index, network: NETWORK, loginServerKey: loginServer.publicKey, self: () => address, log, now: () => clock.now, ...options.presence });
  const mailbox = new MailboxService({ index, presence, self: () => address, attached: (id) => attached.get(id), log, now: () => clock.now, ...options.mailbox });
  const router = new Router({
    log, self: () => address, attached: (id) => attached.get(id),
    toSupernode: (to, body) => index.requestSupernode(to, RouteForward, body, { timeoutMs: 3_000 }),
  });
  const sn: Supernode = { name, identity, server, address, index, presence, mailbox, router, attached };
  holder.sn = sn;
  index.start();
  presence.start();
  mailbox.start();
  return sn;
}

export async function startNetwork(n: number, options: SupernodeOptions = {}): Promise<Supernode[]> {
  const nodes: Supernode[] = [];
  for (let i = 0; i < n; i++) {
    const sn = await startSupernode(`sn${i}`, options);
    if (i > 0) await sn.index.join([nodes[i - 1]!.index.self]);
    nodes.push(sn);
  }
  return nodes;
}

export async function stopSupernode(sn: Supernode): Promise<void> {
  sn.mailbox.stop();
  sn.presence.stop();
  sn.index.stop();
  await sn.server.stop();
}

/** The supernodes by distance of their id to `user`'s key, closest first. */
export function byDistance(nodes: readonly Supernode[], user: string): Supernode[] {
  const key = userKey(user);
  return [...nodes].sort((a, b) => ((a.index.id ^ key) < (b.index.id ^ key) ? -1 : 1));
}

/** An identity whose supernode id is closer to `user`'s key than every one of `nodes`. */
export function closerIdentity(nodes: readonly Supernode[], user: string): Identity {
  const key = userKey(user);
  const best = byDistance(nodes, user)[0]!.index.id ^ key;
  for (;;) {
    const identity = generateIdentity();
    if ((supernodeId(identity.noise.publicKey) ^ key) < best) return identity;
  }
}

/** A phone: a link attached to a supernode with a credential, collecting what the supernode pushes. */
export interface Phone {
  user: string;
  device: Device;
  link: Link;
  supernode: Supernode;
  changes: PresenceUpdate[];
  delivered: Array<{ from: RouteEndpoint; sealed: string }>;
  seq: number;
}

export async function attachPhone(sn: Supernode, user: string, device: Device = makeDevice(user)): Promise<Phone> {
  const phone: Omit<Phone, 'link'> = { user, device, supernode: sn, changes: [], delivered: [], seq: clock.now };
  const { link } = await dialLink({
    identity: device.identity, network: NETWORK, role: 'node', credential: () => device.credential, log, host: '127.0.0.1', port: sn.server.port,
    setup: (l) => {
      l.onNotice(PresenceChanged, (body) => phone.changes.push(...body.updates));
      l.handle(RouteDeliver, (body) => {
        phone.delivered.push(body);
        return { delivered: true as const };
      });
    },
  });
  // The supernode serves the link once its onLink ran; a ping round trip makes sure it has.
  await link.ping();
  return { ...phone, link };
}

/** The phone's next signed presence update (a higher seq each time), naming its supernode. */
export function presenceOf(phone: Phone, state: PresenceState, fields: Partial<{ supernode: string; seq: number }> = {}): DevicePresenceUpdate {
  phone.seq = fields.seq ?? Math.max(phone.seq + 1, clock.now);
  return signPresence(
    { user: phone.user, deviceId: phone.device.identity.deviceId, state, supernode: fields.supernode ?? phone.supernode.address, seq: phone.seq, issued: clock.now },
    phone.device.credential,
    phone.device.identity.signing,
  );
}

export function closed(link: Link): Promise<void> {
  return link.closed ? Promise.resolve() : new Promise((resolve) => link.once('close', () => resolve()));
}
