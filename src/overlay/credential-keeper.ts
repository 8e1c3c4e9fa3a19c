import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCredential } from '../crypto/credential.js';
import type { Credential } from '../crypto/credential.js';
import type { Identity } from '../crypto/identity.js';
import { PartylineError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import { LoginError, loginWithPassword } from '../login/client.js';
import { normaliseUserName } from '../login/user-name.js';
import type { Logger } from '../system/logging.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { openLoginLink } from './login-link.js';
import type { LoginPath } from './login-link.js';

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
    const { link, path } = await openLoginLink({
      identity: this.#options.identity,
      network: this.#options.network,
      loginServer: this.#options.loginServer,
      loginServerKey,
      via: () => options.via,
      log: this.#options.log,
      isFinal: isFinalLoginError,
      ...(options.signal ? { signal: options.signal } : {}),
    });
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

}
