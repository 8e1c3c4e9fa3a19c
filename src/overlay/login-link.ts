import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { AbortedError, PartylineError, errorMessage } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { establishLink } from '../../link/transport.js';
import { LOGIN_SERVER_ROLE, LoginError, dialLoginServer } from '../../login/client.js';
import type { Logger } from '../../system/logging.js';
import type { LoginPath } from '../credential-keeper.js';
import { openLoginTunnel } from '../tunnel.js';

/**
 * A link to the login server that carries this device's credential in its
 * handshake, for the account requests (buddies.list/add/remove): straight
 * to the login server, or — when a firewall blocks it — through a login
 * tunnel at the supernode this node is attached to (tunnel.ts), raced the
 * way CredentialKeeper races its login: the direct way gets a head start,
 * the tunnel starts as soon as the direct way fails or the head start is
 * over. Either way it is one Noise session with the login server, whose
 * key is checked; the supernode sees ciphertext only.
 */
export interface LoginLinkOptions {
  identity: Identity;
  network: string;
  /** `network.loginServer.address`, parsed (none: tunnel only). */
  loginServer: { host: string; port: number } | undefined;
  loginServerKey: Uint8Array;
  credential: () => Credential | undefined;
  /** The link to the supernode this node is attached to, when attached. */
  via: () => Link | undefined;
  log: Logger;
  /** How long the direct way has before the tunnel starts too (default 300 ms). */
  headStartMs?: number;
  signal?: AbortSignal;
}

export async function openLoginLink(options: LoginLinkOptions): Promise<{ link: Link; path: LoginPath }> {
  if (!options.credential()) throw new PartylineError('ERR_NOT_LOGGED_IN', 'no credential yet: log in first');
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const attempts: Array<Promise<{ link: Link; path: LoginPath }>> = [];
  let directFailed: () => void = () => undefined;
  const directGaveUp = new Promise<void>((resolve) => (directFailed = resolve));
  const server = options.loginServer;
  if (server) {
    const direct = dialLoginServer({
      host: server.host,
      port: server.port,
      identity: options.identity,
      network: options.network,
      loginServerKey: options.loginServerKey,
      credential: options.credential,
      log: options.log,
      signal: controller.signal,
      connectTimeoutMs: 3_000,
    }).then((link) => ({ link, path: 'direct' as const }));
    direct.catch(() => directFailed());
    attempts.push(direct);
  }
  const via = options.via();
  if (via && !via.closed) {
    const headStart = server ? Promise.race([sleep(options.headStartMs ?? 300, controller.signal), directGaveUp]) : Promise.resolve();
    attempts.push(headStart.then(() => tunnelLink(via, options, controller.signal)).then((link) => ({ link, path: 'tunnel' as const })));
  }
  if (attempts.length === 0) throw new LoginError('ERR_LOGIN_UNREACHABLE', 'no login server address (network.loginServer.address) and no supernode to tunnel through');
  try {
    const winner = await Promise.any(attempts);
    controller.abort();
    for (const attempt of attempts) void attempt.then((r) => r.link !== winner.link && r.link.close(), () => undefined);
    return winner;
  } catch (err) {
    const errors = (err as AggregateError).errors ?? [err];
    throw new LoginError('ERR_LOGIN_UNREACHABLE', `cannot reach the login server directly or through the supernode: ${errors.map(errorMessage).join('; ')}`, { cause: err });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

async function tunnelLink(via: Link, options: LoginLinkOptions, signal: AbortSignal): Promise<Link> {
  const stream = await openLoginTunnel(via, { timeoutMs: 5_000, signal });
  let established: Awaited<ReturnType<typeof establishLink>>;
  try {
    established = await establishLink(stream, {
      identity: options.identity,
      network: options.network,
      role: 'node',
      credential: options.credential,
      log: options.log,
      pattern: 'XX',
      signal,
    });
  } catch (err) {
    stream.destroy();
    throw err;
  }
  const { link, peer } = established;
  // Closing a link only ends its stream, and a tunnel has no half-close: destroy it, which tells
  // the supernode (tunnel.close) to let go of the tunnel and of its connection to the login server.
  link.once('close', () => stream.destroy());
  if (!peer.identityKey.equals(Buffer.from(options.loginServerKey)) || peer.role !== LOGIN_SERVER_ROLE) {
    link.close();
    throw new LoginError('ERR_LOGIN_TUNNEL_WRONG_SERVER', 'the login server reached through the supernode is not the one in network.loginServer.publicKey');
  }
  return link;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AbortedError());
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new AbortedError());
    }, { once: true });
  });
}
