import type { Credential } from '../crypto/credential.js';
import type { Identity } from '../crypto/identity.js';
import { AbortedError, PartylineError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import { establishLink } from '../link/transport.js';
import { LOGIN_SERVER_ROLE, LoginError, dialLoginServer } from '../login/client.js';
import type { Logger } from '../system/logging.js';
import { openLoginTunnel } from './tunnel.js';

/** How a link to the login server got through: straight to it, or tunnelled through a supernode. */
export type LoginPath = 'direct' | 'tunnel';

/**
 * A link to the login server: straight to it, or — when a firewall blocks
 * it — through a login tunnel at the supernode this node is attached to
 * (tunnel.ts). The two ways race: the direct way gets a head start (a
 * firewalled node loses at most that much), the tunnel starts as soon as
 * the direct way fails or the head start is over. Either way it is one
 * Noise session with the login server, whose key is checked; the supernode
 * sees ciphertext only.
 *
 * Used to log in (CredentialKeeper: no credential yet) and for the account
 * requests (buddies.list/add/remove: the credential in the handshake).
 */
export interface LoginLinkOptions {
  identity: Identity;
  network: string;
  /** `network.loginServer.address`, parsed (none: tunnel only). */
  loginServer: { host: string; port: number } | undefined;
  /** The login server's Ed25519 key (`network.loginServer.publicKey`). */
  loginServerKey: Uint8Array;
  /**
   * A credential to show in the handshake, which the account requests need
   * (not needed to log in). When given and there is none yet, the link is
   * not opened: `ERR_NOT_LOGGED_IN`.
   */
  credential?: () => Credential | undefined;
  /** The link to the supernode this node is attached to, when attached. */
  via: () => Link | undefined;
  log: Logger;
  /** How long the direct way has before the tunnel starts too (default 300 ms). */
  headStartMs?: number;
  /**
   * When every way failed: an attempt's error this picks is thrown as it is
   * (a refusal another attempt cannot fix) instead of `ERR_LOGIN_UNREACHABLE`.
   */
  isFinal?: (err: unknown) => boolean;
  signal?: AbortSignal;
}

/**
 * Open a link to the login server, directly or through the supernode, and
 * say which way won. The losing way is aborted; if it completed anyway its
 * link is closed.
 * @throws PartylineError `ERR_NOT_LOGGED_IN` (a credential getter that has none); LoginError
 *   `ERR_LOGIN_UNREACHABLE` (no way to try, or every way failed), or what `isFinal` picks.
 */
export async function openLoginLink(options: LoginLinkOptions): Promise<{ link: Link; path: LoginPath }> {
  if (options.credential && !options.credential()) throw new PartylineError('ERR_NOT_LOGGED_IN', 'no credential yet: log in first');
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
      log: options.log,
      signal: controller.signal,
      connectTimeoutMs: 3_000,
      ...(options.credential ? { credential: options.credential } : {}),
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
    // A loser that completed anyway must not leak its link.
    for (const attempt of attempts) void attempt.then((r) => r.link !== winner.link && r.link.close(), () => undefined);
    return winner;
  } catch (err) {
    const errors = (err as AggregateError).errors ?? [err];
    const final = options.isFinal ? errors.find(options.isFinal) : undefined;
    if (final) throw final;
    throw new LoginError('ERR_LOGIN_UNREACHABLE', `cannot reach the login server: ${errors.map(errorMessage).join('; ')}`, { cause: err });
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
      log: options.log,
      pattern: 'XX',
      signal,
      ...(options.credential ? { credential: options.credential } : {}),
    });
  } catch (err) {
    stream.destroy();
    throw err;
  }
  // No need to destroy the stream when the link closes: a clean close ends it, which lets go of the
  // tunnel at once (TunnelStream's _final); a close on an error destroys it.
  const { link, peer } = established;
  if (!peer.identityKey.equals(Buffer.from(options.loginServerKey)) || peer.role !== LOGIN_SERVER_ROLE) {
    link.close();
    // The supernode's fault, not ours: another supernode may do better, so this is not a final refusal.
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
