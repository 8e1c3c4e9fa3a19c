import { join } from 'node:path';
import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { errorMessage } from '../../errors.js';
import type { PartylineError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { MessageHistory, MESSAGES_FILE } from '../im/history.js';
import type { ImEntry } from '../im/history.js';
import { InstantMessages } from '../im/instant-messages.js';
import type { SendResult } from '../im/instant-messages.js';
import { MailboxFetch } from '../im/mailbox-messages.js';
import { ACTION_MAX_AGE_MS } from '../route/messenger.js';
import type { Messenger } from '../route/messenger.js';
import { BuddyList } from './buddies.js';
import type { Buddy } from './buddies.js';
import { openLoginLink } from '../login-link.js';
import { PresenceClient } from './presence-client.js';
import type { BuddyPresence } from './presence-client.js';
import type { SettablePresence } from './state.js';

/**
 * Buddies, presence and instant messages on a phone, as one manager the
 * node wires in (app/node.ts): the buddy list (login server), this
 * device's presence and its buddies' (presence-client.ts), and the message
 * history (im/). On every attach it announces its presence, sends the
 * watch list, then fetches what was held for it while it was away.
 *
 * The buddy list is read from the login server on every attach, when
 * asked for and older than `BUDDY_LIST_MAX_AGE_MS`, and when another device
 * of the user changed it: a buddy added or removed on one device reaches
 * the user's other online devices at once (it tells them with a sealed
 * `buddies.changed`, and they read the list again). Presence needs no
 * login server: what is shown is the last list read (saved in the state
 * directory) with the presence the supernodes pushed.
 */
export interface PhoneSocialOptions {
  identity: Identity;
  network: string;
  loginServerKey: Uint8Array;
  loginServer: { host: string; port: number } | undefined;
  stateDir: string;
  /** The configured account (normalised by the caller or not). */
  user: string | undefined;
  credential: () => Credential | undefined;
  /** The supernode link and its address while attached. */
  attachment: () => { link: Link; supernode: string } | undefined;
  messenger: Messenger;
  log: Logger;
}

const BUDDIES_CHANGED = 'buddies.changed';
/** `buddyList()` reads the list from the login server again when the last read is older than this. */
export const BUDDY_LIST_MAX_AGE_MS = 30_000;

export class PhoneSocial {
  readonly presence: PresenceClient;
  readonly buddies: BuddyList;
  readonly history: MessageHistory;
  readonly messages: InstantMessages;
  #options: PhoneSocialOptions;
  #log: Logger;
  /** When the list was last read from the login server (0: not since start). */
  #readAt = 0;

  constructor(options: PhoneSocialOptions) {
    this.#options = options;
    this.#log = options.log;
    this.presence = new PresenceClient({
      identity: options.identity,
      network: options.network,
      loginServerKey: options.loginServerKey,
      credential: options.credential,
      attachment: options.attachment,
      log: options.log,
    });
    this.buddies = new BuddyList({
      stateDir: options.stateDir,
      log: options.log,
      open: () => openLoginLink({
        identity: options.identity,
        network: options.network,
        loginServer: options.loginServer,
        loginServerKey: options.loginServerKey,
        credential: options.credential,
        via: () => options.attachment()?.link,
        log: options.log,
      }),
      // Watching the new list before answering: what `buddy add` shows includes the new buddy's presence.
      onChange: (list) => this.presence.watch(list.map((b) => b.user)),
    });
    this.history = new MessageHistory({ path: join(options.stateDir, MESSAGES_FILE), log: options.log });
    this.messages = new InstantMessages({
      messenger: options.messenger,
      history: this.history,
      self: () => {
        const credential = options.credential();
        return credential ? { user: normaliseUserName(credential.user), deviceId: options.identity.deviceId } : undefined;
      },
      log: options.log,
    });
    options.messenger.on(BUDDIES_CHANGED, (incoming) => {
      const own = options.credential()?.user;
      if (!own || incoming.from.user !== normaliseUserName(own)) return;
      this.#refreshBuddies().catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'cannot read the buddy list'));
    }, { maxAgeMs: ACTION_MAX_AGE_MS });
  }

  /** Load the saved buddy list and message history. */
  async start(): Promise<void> {
    if (this.#options.user) await this.buddies.load(this.#options.user);
    await this.presence.watch(this.buddies.list.map((b) => b.user));
    await this.history.load();
  }

  /** Attached (again): presence out, watch list out, then what was held for this device. Never throws (logs). */
  async attached(link: Link): Promise<void> {
    this.presence.serve(link);
    await this.presence.announce();
    try {
      const { delivered } = await link.request(MailboxFetch, {}, { timeoutMs: 30_000 });
      if (delivered > 0) this.#log.info({ delivered }, 'messages held while offline were delivered');
    } catch (err) {
      this.#log.warn({ code: (err as PartylineError).code, err: errorMessage(err) }, 'cannot fetch held messages');
    }
    // The list may have changed on another device meanwhile; a change re-sends the watch list.
    this.#refreshBuddies().catch((err: unknown) => this.#log.info({ err: errorMessage(err) }, 'cannot read the buddy list now; keeping the saved one'));
  }

  /** Logging out: say offline (signed) while the link is up, and save the history. */
  async stop(): Promise<void> {
    await this.presence.goodbye();
    await this.history.flush();
  }

  /** The buddy list with presence (read again from the login server when old; the saved list when it cannot be reached). */
  async buddyList(): Promise<BuddyPresence[]> {
    if (Date.now() - this.#readAt > BUDDY_LIST_MAX_AGE_MS) {
      try {
        await this.#refreshBuddies();
      } catch (err) {
        this.#log.warn({ code: (err as PartylineError).code, err: errorMessage(err) }, 'buddy list: login server unreachable, showing the saved list');
      }
    }
    return this.#view(this.buddies.list);
  }

  async addBuddy(user: string): Promise<BuddyPresence[]> {
    const list = await this.buddies.add(user);
    this.#readAt = Date.now();
    this.#tellOwnDevices();
    return this.#view(list);
  }

  async removeBuddy(user: string): Promise<BuddyPresence[]> {
    const list = await this.buddies.remove(user);
    this.#readAt = Date.now();
    this.#tellOwnDevices();
    return this.#view(list);
  }

  async #refreshBuddies(): Promise<void> {
    await this.buddies.refresh();
    this.#readAt = Date.now();
  }

  send(user: string, text: string): Promise<SendResult> {
    return this.messages.send(user, text);
  }

  list(): ImEntry[] {
    return this.messages.list();
  }

  setPresence(state: SettablePresence): Promise<void> {
    return this.presence.set(state);
  }

  #view(list: readonly Buddy[]): BuddyPresence[] {
    return list.map((b) => this.presence.presenceOf(b.user));
  }

  /** The user's other devices read the list again (sealed, so only this user's devices believe it). */
  #tellOwnDevices(): void {
    const own = this.#options.credential()?.user;
    if (!own) return;
    const messenger = this.#options.messenger;
    messenger.resolve(own)
      .then(async ({ devices }) => {
        for (const device of devices) {
          if (device.deviceId === this.#options.identity.deviceId) continue;
          await messenger.send(device, { type: BUDDIES_CHANGED, body: {} }).catch((err: unknown) =>
            this.#log.debug({ deviceId: device.deviceId, err: errorMessage(err) }, 'cannot tell another device of the new buddy list'));
        }
      })
      .catch((err: unknown) => this.#log.debug({ err: errorMessage(err) }, 'cannot look up this user\'s other devices'));
  }
}
