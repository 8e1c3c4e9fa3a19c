import { CLOCK_SKEW_MS, verifyCredential } from '../crypto/credential.js';
import type { Credential } from '../crypto/credential.js';
import type { Identity } from '../crypto/identity.js';
import { CredentialError, PartylineError } from '../errors.js';
import type { Link } from '../link/link.js';
import { dialLink } from '../link/transport.js';
import type { Logger } from '../system/logging.js';
import { formatHostPort } from '../util/host-port.js';
import { Login } from './messages.js';
import { normaliseUserName } from './user-name.js';

/**
 * The node side of logging in (DESIGN.md "Joining the network", step 3).
 *
 * Opening the link ({@link dialLoginServer}) is kept apart from the request
 * ({@link loginWithPassword}): the same `Login` request also runs over a
 * link tunnelled through a supernode, for nodes that cannot reach the login
 * server directly.
 */

/**
 * Login failed on the node's side: `ERR_LOGIN_SERVER_KEY` (the server did not
 * prove the configured key) or `ERR_LOGIN_BAD_CREDENTIAL` (what came back does
 * not verify). The server's refusals arrive as `RemoteError` with the codes of
 * `LOGIN_ERRORS` (src/login/messages.ts).
 */
export class LoginError extends PartylineError {
  constructor(code: `ERR_LOGIN_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The role a login server announces in its handshake payload. */
export const LOGIN_SERVER_ROLE = 'login-server';

/** Default port of the login server (`partyline login-server --listen`). */
export const DEFAULT_LOGIN_PORT = 5061;

const DEFAULT_LOGIN_TIMEOUT_MS = 15_000;

export interface DialLoginServerOptions {
  host: string;
  port: number;
  /** This device's identity: proved in the handshake, and what the credential will certify. */
  identity: Identity;
  network: string;
  /** The login server's Ed25519 public key (`network.loginServer.publicKey`, decoded). */
  loginServerKey: Uint8Array;
  log: Logger;
  /**
   * A credential this login server issued, shown in the handshake: what
   * the account requests (directory, buddies) need. Not needed to log in.
   */
  credential?: () => Credential | undefined;
  signal?: AbortSignal;
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
}

/**
 * Open a Noise link (XX) to the login server and check that the peer proved
 * the configured login server key and announced the login-server role.
 * @throws LoginError `ERR_LOGIN_SERVER_KEY`; connect/handshake errors as `dialLink` throws them
 *   (`ERR_CONNECT`, `ERR_TIMEOUT`, `ERR_ABORTED`, `ERR_NOISE_*`).
 */
export async function dialLoginServer(options: DialLoginServerOptions): Promise<Link> {
  const { link, peer } = await dialLink({
    host: options.host,
    port: options.port,
    identity: options.identity,
    network: options.network,
    role: 'node',
    log: options.log,
    pattern: 'XX',
    ...(options.credential ? { credential: options.credential } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
  });
  const expected = Buffer.from(options.loginServerKey);
  if (!peer.identityKey.equals(expected) || peer.role !== LOGIN_SERVER_ROLE) {
    link.close();
    const where = safeHostPort(options.host, options.port);
    const what = peer.identityKey.equals(expected) ? `announced role ${JSON.stringify(peer.role ?? null)}` : 'proved another key';
    throw new LoginError('ERR_LOGIN_SERVER_KEY', `the login server at ${where} is not the one in network.loginServer.publicKey (it ${what})`);
  }
  return link;
}

export interface LoginWithPasswordOptions {
  /** A link to the login server: dialled directly, or tunnelled through a supernode. */
  link: Link;
  user: string;
  password: string;
  /** `host:port` of the supernode this node is attached to, for the login server's last-login record. */
  supernode?: string;
  /** The login server's Ed25519 public key: the credential must be signed by it. */
  loginServerKey: Uint8Array;
  network: string;
  /** This device: the credential must certify its keys. */
  identity: Identity;
  now?: () => number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Send `Login` and verify the credential that comes back: signed by the
 * login server key, for this network, currently valid, for this user, and
 * certifying this device's identity key and Noise key.
 * @throws RemoteError with the server's code (`ERR_LOGIN_UNKNOWN_USER`, `ERR_LOGIN_BAD_PASSWORD`,
 *   `ERR_LOGIN_RATE_LIMITED`, `ERR_LOGIN_UNAVAILABLE`); LoginError `ERR_LOGIN_BAD_CREDENTIAL`
 *   (with the CredentialError as `cause` when it failed verification); `ERR_TIMEOUT`, `ERR_ABORTED`,
 *   `ERR_LINK_CLOSED`.
 */
export async function loginWithPassword(options: LoginWithPasswordOptions): Promise<Credential> {
  const now = options.now ?? Date.now;
  const body = { user: options.user, password: options.password, ...(options.supernode !== undefined ? { supernode: options.supernode } : {}) };
  const answer = await options.link.request(Login, body, {
    timeoutMs: options.timeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const at = now();
  let credential: Credential;
  try {
    credential = verifyCredential(answer.credential, {
      loginServerKey: options.loginServerKey,
      network: options.network,
      now: at,
      noiseKey: options.identity.noise.publicKey,
    });
  } catch (err) {
    throw badCredential(err, at, answer.serverTime);
  }
  const user = normaliseUserName(options.user);
  if (credential.user !== user) {
    throw new LoginError('ERR_LOGIN_BAD_CREDENTIAL', `login server returned a credential for user "${credential.user}", expected "${user}"`);
  }
  if (credential.deviceId !== options.identity.deviceId || credential.deviceKey !== options.identity.signing.publicKey.toString('base64')) {
    throw new LoginError('ERR_LOGIN_BAD_CREDENTIAL', `login server returned a credential for device ${credential.deviceId}, expected ${options.identity.deviceId}`);
  }
  return credential;
}

function badCredential(err: unknown, now: number, serverTime: number): PartylineError {
  if (!(err instanceof CredentialError)) return err instanceof PartylineError ? err : new LoginError('ERR_LOGIN_BAD_CREDENTIAL', 'login server returned an unusable credential', { cause: err });
  const skew = now - serverTime;
  const timing = err.code === 'ERR_CREDENTIAL_NOT_YET_VALID' || err.code === 'ERR_CREDENTIAL_EXPIRED';
  const hint = timing && Math.abs(skew) > CLOCK_SKEW_MS
    ? ` (this device's clock is ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} the login server's: check NTP)`
    : '';
  return new LoginError('ERR_LOGIN_BAD_CREDENTIAL', `login server returned a credential that does not verify: ${err.message}${hint}`, { cause: err });
}

function safeHostPort(host: string, port: number): string {
  try {
    return formatHostPort({ host, port });
  } catch {
    return `${host}:${port}`;
  }
}
