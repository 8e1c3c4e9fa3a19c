import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCredential } from '../crypto/credential.js';
import type { Credential } from '../crypto/credential.js';
import type { Identity } from '../crypto/identity.js';
import { AbortedError, PartylineError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import { establishLink } from '../link/transport.js';
import { LOGIN_SERVER_ROLE, LoginError, dialLoginServer, loginWithPassword } from '../login/client.js';
import { normaliseUserName } from '../login/user-name.js';
import type { Logger } from '../system/logging.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { openLoginTunnel } from './tunnel.js';

export const CREDENTIAL_FILE = 'credential.json';

export interface CredentialKeeperOptions {
  identity: Identity;
  network: string;
  stateDir: string;
  log: Logger;
  user: string | undefined;
  /** Reads the password when needed (config value or password file); never kept in logs. */
  password: () => Promise<string | undefined>;
  loginServer: { host: string; port: number } | undefined;
  /** The login server's Ed25519 key (`network.loginServer.publicKey`). */
  loginServerKey: Buffer | undefined;
  now?: () => number;
}

/** How a login got through: straight to the login server, or tunnelled through a supernode. */
export type LoginPath = 'direct' | 'tunnel';

/** Refusals that another attempt with the same password cannot fix. */
const FINAL_LOGIN_ERRORS = new Set(['ERR_LOGIN_UNKNOWN_USER', 'ERR_LOGIN_BAD_PASSWORD', 'ERR_LOGIN_SERVER_KEY', 'ERR_LOGIN_BAD_CREDENTIAL']);

export function isFinalLoginError(err: unknown): boolean {
  return err instanceof PartylineError && FINAL_LOGIN_ERRORS.has(err.code);
}

/**
 * Holds this device's credential: loads the persisted one, logs in when it
 * is missing or getting old (straight to the login server, or through a
 * supernode tunnel when that is unreachable), and persists the new one
 * (mode 0600). A valid credential is what lets the node attach to
 * supernodes while the login server is down.
 */
export class CredentialKeeper {
  #options: CredentialKeeperOptions;
  #credential: Credential | undefined;
  #now: () => number;
  #lastPath: LoginPath | undefined;

  constructor(options: CredentialKeeperOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get user(): string | undefined {
    return this.#options.user === undefined ? undefined : normaliseUserName(this.#options.user);
  }

  get lastPath(): LoginPath | undefined {
    return this.#lastPath;
  }

  get canLogin(): boolean {
    return this.#options.user !== undefined && this.#options.loginServerKey !== undefined;
  }

  /** The credential, when it is still valid. */
  current(): Credential | undefined {
    const c = this.#credential;
    return c && c.expires > this.#now() ? c : undefined;
  }

  /** True when the credential is missing or past two thirds of its lifetime. */
  needsRenewal(): boolean {
    const c = this.current();
    if (!c) return true;
    return this.#now() > c.issued + ((c.expires - c.issued) * 2) / 3;
  }

  /** Load the persisted credential, keeping it only if it still verifies for this device, user and network. */
  async load(): Promise<Credential | undefined> {
    const path = join(this.#options.stateDir, CREDENTIAL_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#options.log.warn({ path, err: errorMessage(err) }, 'cannot read the saved credential');
      return undefined;
    }
    const key = this.#options.loginServerKey;
    if (!key) return undefined;
    try {
      const credential = verifyCredential(JSON.parse(text), { loginServerKey: key, network: this.#options.network, now: this.#now(), noiseKey: this.#options.identity.noise.publicKey });
      if (credential.user !== this.user || credential.deviceId !== this.#options.identity.deviceId) return undefined;
      this.#credential = credential;
      return credential;
    } catch (err) {
      this.#options.log.info({ reason: errorMessage(err) }, 'saved credential not usable; will log in');
      return undefined;
    }
  }

  /**
   * Log in. Tries the login server directly; when `via` (a supernode link)
   * is given and the direct way does not connect quickly, a tunnel through
   * the supernode races it. The first link to complete its handshake
   * carries the one login request.
   */
  async login(options: { via?: Link; supernode?: string; signal?: AbortSignal } = {}): Promise<Credential> {
    const { user, loginServerKey } = { user: this.#options.user, loginServerKey: this.#options.loginServerKey };
    if (!user) throw new LoginError('ERR_LOGIN_NO_ACCOUNT', 'no account configured (account.user): waiting for provisioning');
    if (!loginServerKey) throw new LoginError('ERR_LOGIN_NO_KEY', 'network.loginServer.publicKey is not configured');
    const password = await this.#options.password();
    if (!password) throw new LoginError('ERR_LOGIN_NO_PASSWORD', `no password configured for ${user} (account.password or account.passwordFile)`);
    const { link, path } = await this.#loginLink(options.via, options.signal);
    try {
      const credential = await loginWithPassword({
        link,
        user,
        password,
        loginServerKey,
        network: this.#options.network,
        identity: this.#options.identity,
        now: this.#now,
        ...(options.supernode ? { supernode: options.supernode } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      this.#credential = credential;
      this.#lastPath = path;
      await writeFileAtomic(join(this.#options.stateDir, CREDENTIAL_FILE), `${JSON.stringify(credential)}\n`, { mode: 0o600 });
      this.#options.log.info({ user: credential.user, path, expires: new Date(credential.expires).toISOString() }, 'logged in');
      return credential;
    } finally {
      link.close();
    }
  }

  async #loginLink(via: Link | undefined, signal: AbortSignal | undefined): Promise<{ link: Link; path: LoginPath }> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const attempts: Array<Promise<{ link: Link; path: LoginPath }>> = [];
    const server = this.#options.loginServer;
    let directFailed: () => void = () => undefined;
    const directGaveUp = new Promise<void>((resolve) => (directFailed = resolve));
    if (server) {
      const direct = dialLoginServer({
        host: server.host,
        port: server.port,
        identity: this.#options.identity,
        network: this.#options.network,
        loginServerKey: this.#options.loginServerKey!,
        log: this.#options.log,
        signal: controller.signal,
        connectTimeoutMs: 3000,
      }).then((link) => ({ link, path: 'direct' as const }));
      direct.catch(() => directFailed());
      attempts.push(direct);
    }
    if (via) {
      // Give the direct way a head start (a firewalled node loses at most this much), unless it fails sooner.
      const headStart = server ? Promise.race([sleep(300, controller.signal), directGaveUp]) : Promise.resolve();
      attempts.push(headStart.then(() => this.#tunnelLink(via, controller.signal)).then((link) => ({ link, path: 'tunnel' as const })));
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
      const final = errors.find(isFinalLoginError);
      if (final) throw final;
      throw new LoginError('ERR_LOGIN_UNREACHABLE', `cannot reach the login server: ${errors.map(errorMessage).join('; ')}`, { cause: err });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async #tunnelLink(via: Link, signal: AbortSignal): Promise<Link> {
    const stream = await openLoginTunnel(via, { timeoutMs: 5000, signal });
    const { link, peer } = await establishLink(stream, {
      identity: this.#options.identity,
      network: this.#options.network,
      role: 'node',
      log: this.#options.log,
      pattern: 'XX',
      signal,
    });
    if (!peer.identityKey.equals(this.#options.loginServerKey!) || peer.role !== LOGIN_SERVER_ROLE) {
      link.close();
      // The supernode's fault, not ours: another supernode may do better, so this is not a final refusal.
      throw new LoginError('ERR_LOGIN_TUNNEL_WRONG_SERVER', 'the login server reached through the supernode is not the one in network.loginServer.publicKey');
    }
    return link;
  }
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
