import { verifyCredential } from '../crypto/credential.js';
import type { Credential } from '../crypto/credential.js';
import type { VerifiedPeer } from '../crypto/handshake-payload.js';
import { PartylineError, errorMessage } from '../errors.js';
import type { Link } from '../link/link.js';
import type { Logger } from '../system/logging.js';
import type { AccountStore } from './account-store.js';
import { BuddiesAdd, BuddiesList, BuddiesRemove, DirectoryLookup } from './messages.js';
import { isValidUserName, normaliseUserName } from './user-name.js';

export interface AccountServiceOptions {
  store: AccountStore;
  /** The login server's own Ed25519 public key: credentials it issued verify with it. */
  publicKey: Buffer;
  network: string;
  log: Logger;
  now: () => number;
}

/**
 * What a logged-in device (or a supernode acting for one) may ask the login
 * server besides logging in: the directory fallback and the user's own
 * buddy list. Only on links whose handshake carried a credential this
 * login server issued, for the key that link proved; the buddy list is
 * always the credential's user's own.
 */
export function serveAccountRequests(link: Link, peer: VerifiedPeer, options: AccountServiceOptions): Credential | undefined {
  let credential: Credential | undefined;
  let refusal = 'this link carries no credential: log in first, then connect with the credential';
  if (peer.credential) {
    try {
      credential = verifyCredential(peer.credential, { loginServerKey: options.publicKey, network: options.network, now: options.now(), noiseKey: link.channel.remoteStaticKey });
    } catch (err) {
      refusal = `the credential on this link is not accepted: ${errorMessage(err)}`;
    }
  }
  const { store } = options;
  const owner = (): string => {
    if (!credential) throw new PartylineError('ERR_NOT_AUTHENTICATED', refusal);
    return credential.user;
  };
  const list = () => ({ buddies: store.listBuddies(owner()).map((b) => ({ user: b.name, addedAt: b.addedAt })) });

  link.handle(DirectoryLookup, (body) => {
    owner();
    const user = normaliseUserName(body.user);
    const info = isValidUserName(user) ? store.getUser(user) : undefined;
    return {
      user,
      exists: info !== undefined,
      lastLogin: info?.lastLoginAt ?? null,
      lastSupernode: info?.lastSupernode ?? null,
    };
  });
  link.handle(BuddiesList, () => list());
  link.handle(BuddiesAdd, (body) => {
    store.addBuddy(owner(), body.user);
    options.log.info({ user: owner(), buddy: normaliseUserName(body.user) }, 'buddy added');
    return list();
  });
  link.handle(BuddiesRemove, (body) => {
    store.removeBuddy(owner(), body.user);
    return list();
  });
  return credential;
}
