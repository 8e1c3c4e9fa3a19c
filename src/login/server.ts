import { issueCredential } from '../crypto/credential.js';
import type { Credential } from '../crypto/credential.js';
import type { VerifiedPeer } from '../crypto/handshake-payload.js';
import type { Identity } from '../crypto/identity.js';
import { AccountError, ConfigError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import { LinkServer } from '../link/transport.js';
import type { PeerLink } from '../link/transport.js';
import type { Logger } from '../system/logging.js';
import { formatHostPort } from '../util/host-port.js';
import { serveAccountRequests } from './account-service.js';
import { AccountStore } from './account-store.js';
import { LOGIN_SERVER_ROLE, LoginError } from './client.js';
import { formatLoginServerKey, loadOrCreateLoginKey } from './login-key.js';
import { Login, LOGIN_ERRORS } from './messages.js';
import { addressKey, LoginRateLimiter, userKey } from './rate-limit.js';
import type { RateLimitDecision, RateLimitOptions } from './rate-limit.js';
import { isValidUserName, normaliseUserName } from './user-name.js';

export const DEFAULT_CREDENTIAL_TTL_MS = 8 * 60 * 60_000;
export const DEFAULT_LOGIN_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ATTEMPTS_PER_LINK = 5;
export const DEFAULT_MAX_CONCURRENT_PER_ADDRESS = 4;

export interface LoginServerOptions {
  /** Holds `accounts.db` and `login-key.json`; created (0700) when missing. */
  dataDir: string;
  /** Bind address, e.g. `0.0.0.0`, `::`, `127.0.0.1`. */
  host: string;
  /** TCP port; 0 picks a free one (see {@link LoginServer.port}). */
  port: number;
  /** Network name: in the Noise prologue and in every credential. */
  network: string;
  log: Logger;
  /** Epoch ms; default `Date.now`. Used for credentials, the rate limiter and last-login times. */
  now?: () => number;
  /** How long a credential is valid. Default 8 h. */
  credentialTtlMs?: number;
  /** Failed-login limits per user and per source address (see LoginRateLimiter). */
  rateLimit?: Partial<RateLimitOptions>;
  /** A link with no message for this long is closed. Default 30 s. */
  idleTimeoutMs?: number;
  /** Login requests one link may make; the link is closed after the last answer. Default 5. */
  maxAttemptsPerLink?: number;
  /** Password checks running at once for one source address; more wait their turn. Default 4. */
  maxConcurrentPerAddress?: number;
  /** Connections in total / from one address (handshaking or established). */
  maxConnections?: number;
  maxPerAddress?: number;
  handshakeTimeoutMs?: number;
}

/** What a login check needs from the running server. */
interface Keys {
  identity: Identity;
  store: AccountStore;
}

interface Running extends Keys {
  links: LinkServer;
}

interface LinkState {
  /** Login requests received on this link. */
  attempts: number;
  /** Login requests not answered yet. */
  pending: number;
  idle: NodeJS.Timeout;
  closing: NodeJS.Immediate | undefined;
}

type LoginRequest = { user: string; password: string; supernode?: string | undefined };
type LoginAnswer = { credential: Record<string, unknown>; serverTime: number };

/**
 * The login server (DESIGN.md "Roles", "Trust"): checks passwords against
 * the account store and certifies the keys a device proved in its Noise
 * handshake with a short-lived signed credential.
 *
 * - The key binding comes from the handshake (`VerifiedPeer`, the channel's
 *   remote static key), never from the request body.
 * - Failed logins are limited per user name and per source address; checks
 *   for one user run one at a time, and at most a few per address, so that
 *   concurrent guesses cannot slip past the limiter while scrypt runs.
 * - A node logs in and goes: a link idle for `idleTimeoutMs` is closed, and
 *   a link gets at most `maxAttemptsPerLink` login requests.
 * - Passwords are never logged.
 */
export class LoginServer {
  readonly #options: LoginServerOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #idleMs: number;
  readonly #maxAttempts: number;
  readonly #limiter: LoginRateLimiter;
  readonly #userLocks = new KeyedSemaphore(1);
  readonly #addressSlots: KeyedSemaphore;
  readonly #links = new Map<Link, LinkState>();
  readonly #inflight = new Set<Promise<unknown>>();
  #running: Running | undefined;
  #starting: Promise<Running> | undefined;
  #stopping: Promise<void> | undefined;

  /** @throws ConfigError when a limit or period is out of range. */
  constructor(options: LoginServerOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#ttlMs = options.credentialTtlMs ?? DEFAULT_CREDENTIAL_TTL_MS;
    this.#idleMs = options.idleTimeoutMs ?? DEFAULT_LOGIN_IDLE_TIMEOUT_MS;
    this.#maxAttempts = options.maxAttemptsPerLink ?? DEFAULT_MAX_ATTEMPTS_PER_LINK;
    const perAddress = options.maxConcurrentPerAddress ?? DEFAULT_MAX_CONCURRENT_PER_ADDRESS;
    const issues: string[] = [];
    if (!Number.isSafeInteger(this.#ttlMs) || this.#ttlMs < 1000) issues.push(`credentialTtlMs: ${this.#ttlMs}, expected an integer >= 1000`);
    if (!Number.isSafeInteger(this.#idleMs) || this.#idleMs < 1) issues.push(`idleTimeoutMs: ${this.#idleMs}, expected an integer >= 1`);
    if (!Number.isInteger(this.#maxAttempts) || this.#maxAttempts < 1) issues.push(`maxAttemptsPerLink: ${this.#maxAttempts}, expected an integer >= 1`);
    if (!Number.isInteger(perAddress) || perAddress < 1) issues.push(`maxConcurrentPerAddress: ${perAddress}, expected an integer >= 1`);
    if (options.network.length === 0 || options.network.length > 64) issues.push(`network: ${JSON.stringify(options.network)}, expected 1 to 64 characters`);
    if (issues.length > 0) throw new ConfigError(`login server: ${issues.join('; ')}`, issues);
    this.#addressSlots = new KeyedSemaphore(perAddress);
    this.#limiter = new LoginRateLimiter(options.rateLimit);
  }

  /** The bound port (0 until started). */
  get port(): number {
    return this.#running?.links.port ?? 0;
  }

  /** The login server's Ed25519 public key, base64: what goes into `network.loginServer.publicKey`. */
  get publicKey(): string {
    return formatLoginServerKey(this.#require().identity);
  }

  /** The account store, for features that need it (buddy lists, directory fallback). Valid while started. */
  get accounts(): AccountStore {
    return this.#require().store;
  }

  /** Open the key and the account store, then listen. Idempotent; a failed start leaves nothing open. */
  async start(): Promise<void> {
    if (this.#stopping) await this.#stopping;
    this.#starting ??= this.#open().then(
      (running) => {
        this.#running = running;
        return running;
      },
      (err: unknown) => {
        this.#starting = undefined;
        throw err;
      },
    );
    await this.#starting;
  }

  /** Stop listening, close every link, let running checks finish, close the store. Idempotent. */
  async stop(): Promise<void> {
    const starting = this.#starting;
    if (!starting) return this.#stopping;
    this.#starting = undefined;
    this.#stopping = starting
      .then((running) => this.#close(running), () => undefined)
      .finally(() => {
        this.#stopping = undefined;
      });
    return this.#stopping;
  }

  #require(): Running {
    if (!this.#running) throw new LoginError('ERR_LOGIN_NOT_STARTED', 'login server is not started');
    return this.#running;
  }

  async #open(): Promise<Running> {
    const { dataDir, host, port, network } = this.#options;
    const { identity, created, path } = await loadOrCreateLoginKey(dataDir);
    if (created) this.#log.info({ path, publicKey: formatLoginServerKey(identity) }, 'login key created');
    const store = AccountStore.open(dataDir, { create: true, now: this.#now });
    const links = new LinkServer({
      identity,
      network,
      role: LOGIN_SERVER_ROLE,
      log: this.#log,
      host,
      port,
      ...(this.#options.maxConnections !== undefined ? { maxConnections: this.#options.maxConnections } : {}),
      ...(this.#options.maxPerAddress !== undefined ? { maxPerAddress: this.#options.maxPerAddress } : {}),
      ...(this.#options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.#options.handshakeTimeoutMs } : {}),
      // A node sends a login or two and a ping: anything chattier is not a phone.
      link: { maxMessagesPerSecond: 5, burst: 10, maxProtocolErrors: 3 },
      onLink: (peerLink) => this.#onLink(peerLink, { identity, store }),
    });
    try {
      await links.start();
    } catch (err) {
      store.close();
      throw new LoginError('ERR_LOGIN_LISTEN', `login server: cannot listen on ${showAddress(host, port)}: ${errorMessage(err)}`, { cause: err });
    }
    this.#log.info({ port: links.port, publicKey: formatLoginServerKey(identity), network }, 'login server started');
    return { identity, store, links };
  }

  async #close(running: Running): Promise<void> {
    this.#running = undefined;
    for (const link of [...this.#links.keys()]) link.close();
    await running.links.stop();
    // Checks already running finish (and find their link closed) before the store goes.
    await Promise.allSettled([...this.#inflight]);
    running.store.close();
    this.#log.info('login server stopped');
  }

  #onLink({ link, peer }: PeerLink, keys: Keys): void {
    if (!this.#running && !this.#starting) {
      link.close();
      return;
    }
    const state: LinkState = {
      attempts: 0,
      pending: 0,
      idle: setTimeout(() => {
        this.#log.debug({ peer: link.remoteAddress, deviceId: peer.deviceId }, 'idle link closed');
        link.close();
      }, this.#idleMs),
      closing: undefined,
    };
    const onMessage = (): void => {
      state.idle.refresh();
    };
    this.#links.set(link, state);
    link.channel.on('message', onMessage);
    link.once('close', () => {
      clearTimeout(state.idle);
      if (state.closing) clearImmediate(state.closing);
      link.channel.off('message', onMessage);
      this.#links.delete(link);
    });
    link.handle(Login, (body) => {
      state.attempts += 1;
      state.pending += 1;
      const attempt = state.attempts > this.#maxAttempts
        ? Promise.reject(new LoginError(LOGIN_ERRORS.rateLimited, `at most ${this.#maxAttempts} login attempts per connection; connect again`))
        : this.#attempt(body, link, peer, keys);
      this.#inflight.add(attempt);
      return attempt.finally(() => {
        this.#inflight.delete(attempt);
        state.pending -= 1;
        // The last allowed attempt is answered: this link has had its turn.
        if (state.attempts >= this.#maxAttempts && state.pending === 0) this.#closeAfterAnswer(link, state);
      });
    });
    serveAccountRequests(link, peer, { store: keys.store, publicKey: keys.identity.signing.publicKey, network: this.#options.network, log: this.#log, now: () => this.#time() });
    this.#log.debug({ peer: link.remoteAddress, deviceId: peer.deviceId, role: peer.role }, 'link accepted');
  }

  /** Close once the answer in progress is written (the link's reply goes out in a microtask). */
  #closeAfterAnswer(link: Link, state: LinkState): void {
    if (state.closing || link.closed) return;
    state.closing = setImmediate(() => {
      state.closing = undefined;
      link.close();
    });
  }

  async #attempt(body: LoginRequest, link: Link, peer: VerifiedPeer, keys: Keys): Promise<LoginAnswer> {
    const user = normaliseUserName(body.user);
    const address = link.remoteAddress ?? 'unknown';
    this.#log.debug({ user, peer: address, deviceId: peer.deviceId }, 'login attempt');
    return this.#userLocks.run(userKey(user), () =>
      this.#addressSlots.run(addressKey(address), () => this.#check(body, user, address, link, peer, keys)));
  }

  /** Rate limit, then the password (one check per user at a time: see #attempt). */
  async #check(body: LoginRequest, user: string, address: string, link: Link, peer: VerifiedPeer, keys: Keys): Promise<LoginAnswer> {
    const { store } = keys;
    if (link.closed || !this.#running) {
      throw new LoginError(LOGIN_ERRORS.unavailable, 'login server is shutting down or the link closed; try again');
    }
    const decision = this.#limiter.check(user, address, this.#time());
    if (!decision.allowed) {
      this.#log.info({ user, peer: address, reason: decision.reason, retryAfterMs: decision.retryAfterMs }, 'login refused: rate limited');
      throw rateLimited(user, decision);
    }
    let ok: boolean;
    try {
      ok = await store.verifyPassword(user, body.password);
    } catch (err) {
      this.#log.error({ user, code: (err as AccountError).code, err: errorMessage(err) }, 'password check failed');
      throw new LoginError(LOGIN_ERRORS.unavailable, 'login server cannot check passwords right now; try again later');
    }
    const now = this.#time();
    if (!ok) {
      this.#limiter.recordFailure(user, address, now);
      const known = isValidUserName(user) && store.getUser(user) !== undefined;
      const code = known ? LOGIN_ERRORS.badPassword : LOGIN_ERRORS.unknownUser;
      this.#log.info({ user, peer: address, deviceId: peer.deviceId, code }, 'login refused');
      throw known
        ? new LoginError(code, `user "${user}": wrong password`)
        : new LoginError(code, `user ${JSON.stringify(user)}: no such user`);
    }
    this.#limiter.recordSuccess(user, address, now);
    return this.#grant(body, user, now, link, peer, keys);
  }

  /** The password was right: record the login and certify the keys proved in the handshake. */
  #grant(body: LoginRequest, user: string, now: number, link: Link, peer: VerifiedPeer, { store, identity }: Keys): LoginAnswer {
    const address = link.remoteAddress ?? 'unknown';
    if (link.closed || !this.#running) {
      // Nobody left to hand the credential to (a failure above is counted all the same).
      throw new LoginError(LOGIN_ERRORS.unavailable, 'login server is shutting down or the link closed; try again');
    }
    try {
      store.recordLogin(user, { at: now, deviceId: peer.deviceId, ...(body.supernode !== undefined ? { supernode: body.supernode } : {}) });
    } catch (err) {
      if (err instanceof AccountError && err.code === 'ERR_ACCOUNT_UNKNOWN') {
        // Deleted while its password was being checked.
        throw new LoginError(LOGIN_ERRORS.unknownUser, `user "${user}": no such user`);
      }
      this.#log.error({ user, code: (err as AccountError).code, err: errorMessage(err) }, 'cannot record login');
      throw new LoginError(LOGIN_ERRORS.unavailable, 'login server cannot record the login right now; try again later');
    }
    const credential: Credential = issueCredential({
      user,
      deviceId: peer.deviceId,
      deviceKey: peer.identityKey.toString('base64'),
      noiseKey: link.channel.remoteStaticKey.toString('base64'),
      network: this.#options.network,
      issued: now,
      expires: now + this.#ttlMs,
    }, identity.signing);
    this.#log.info({ user, deviceId: peer.deviceId, peer: address, expires: credential.expires }, 'login');
    return { credential: { ...credential }, serverTime: now };
  }

  #time(): number {
    return Math.floor(this.#now());
  }
}

function rateLimited(user: string, decision: Extract<RateLimitDecision, { allowed: false }>): LoginError {
  const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
  const what = decision.reason === 'user' ? `for user "${user}"` : 'from this address';
  return new LoginError(LOGIN_ERRORS.rateLimited, `too many failed logins ${what}; retry in ${seconds} s`);
}

function showAddress(host: string, port: number): string {
  try {
    return port === 0 ? `${host}:0` : formatHostPort({ host, port });
  } catch {
    return `${host}:${port}`;
  }
}

/**
 * Runs tasks under a per-key limit of `capacity` at a time; the rest wait in
 * order. Keys with nothing running or waiting are forgotten.
 */
class KeyedSemaphore {
  readonly #capacity: number;
  readonly #entries = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { active: 0, waiting: [] };
      this.#entries.set(key, entry);
    }
    const slot = entry;
    if (slot.active >= this.#capacity) await new Promise<void>((resolve) => slot.waiting.push(resolve));
    else slot.active += 1;
    try {
      return await task();
    } finally {
      const next = slot.waiting.shift();
      if (next) next(); // hand the slot over
      else if (--slot.active === 0) this.#entries.delete(key);
    }
  }
}
