import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { PartylineError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { allocate, bindTcp, dialTcpLeg, openUdpLeg, release } from '../../relay/client.js';
import type { Logger } from '../../system/logging.js';
import { normalizeHostPort, parseHostPort } from '../../util/host-port.js';
import type { UdpEndpoint } from '../udp-endpoint.js';
import type { RelayAllocation, RelayOps } from './path-service.js';

export interface NodeRelayOptions {
  identity: Identity;
  network: string;
  credential: () => Credential | undefined;
  /** The link to the supernode this node is attached to. */
  link: () => Link | undefined;
  /** That supernode's address. */
  supernode: () => string | undefined;
  udp: UdpEndpoint;
  log: Logger;
}

/**
 * The relay as a phone uses it for media paths (src/relay/client.ts behind
 * the PathService's RelayOps): allocations on its own supernode over its
 * attached link, UDP legs on its one UDP port, TCP legs on its attached
 * link when the relay is its own supernode, else on a link dialled to the
 * relaying supernode with its credential.
 */
export function nodeRelayOps(options: NodeRelayOptions): RelayOps {
  const attachedLink = (): Link => {
    const link = options.link();
    if (!link || link.closed) throw new PartylineError('ERR_NOT_ATTACHED', 'not attached to a supernode: no relay');
    return link;
  };
  const isOwnSupernode = (address: string): boolean => {
    const own = options.supernode();
    try {
      return own !== undefined && normalizeHostPort(own) === normalizeHostPort(address);
    } catch {
      return false;
    }
  };
  return {
    async allocate(peerUser: string, session: string): Promise<RelayAllocation> {
      const answer = await allocate(attachedLink(), peerUser, session, { timeoutMs: 3_000 });
      return { allocation: answer.allocation, udp: answer.udp, tcp: answer.tcp, legs: answer.legs };
    },
    release(allocation: string): void {
      const link = options.link();
      if (!link || link.closed) return;
      release(link, allocation, { timeoutMs: 3_000 }).catch((err: unknown) => options.log.debug({ allocation, err }, 'relay release failed'));
    },
    async bindUdp(server: string, username: string, key: string) {
      const { host, port } = parseHostPort(server);
      return openUdpLeg({ udp: options.udp, server: { address: host, port }, username, key, log: options.log });
    },
    async bindTcp(server: string, username: string, key: string) {
      if (isOwnSupernode(server)) return bindTcp(attachedLink(), username, key, { timeoutMs: 3_000 });
      const { host, port } = parseHostPort(server);
      return dialTcpLeg({ identity: options.identity, network: options.network, credential: options.credential, log: options.log, host, port, connectTimeoutMs: 3_000 }, username, key, { timeoutMs: 3_000 });
    },
  };
}
