import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { errorMessage } from '../../errors.js';
import type { PartylineError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { nextSeq } from '../index/record.js';
import { MAX_WATCHED_USERS, PresenceChanged, PresenceSet, PresenceWatch } from './messages.js';
import { PresenceTable } from './presence-table.js';
import { userPresence } from './state.js';
import type { PresenceState, SettablePresence } from './state.js';
import { effectiveState, signPresence, verifyPresenceUpdate } from './update.js';
import type { DevicePresenceUpdate, PresenceUpdate } from './update.js';

/**
 * A phone's end of presence (presence-service.ts has the protocol):
 *
 * - its own state — `online` while attached, `in-call` while the call layer
 *   says so (`set()`), `offline` when it logs out (`goodbye()`) — signed
 *   and sent to its supernode on every attach, on every change, and with
 *   every record refresh (`refresh()`);
 * - the presence of its buddies: it tells its supernode whom it watches
 *   and keeps what the supernode passes on (checking the devices'
 *   signatures itself: supernodes are not trusted to make a buddy look
 *   online or in a call).
 *
 * Changes go out one at a time; a change made while one is on its way is
 * sent right after it (only the latest state matters).
 */
export interface PresenceClientOptions {
  identity: Identity;
  network: string;
  loginServerKey: Uint8Array;
  credential: () => Credential | undefined;
  /** The link to the supernode this node is attached to, and its address, when attached. */
  attachment: () => { link: Link; supernode: string } | undefined;
  log: Logger;
  now?: () => number;
  /** Called when a watched user's presence changed. */
  onChange?: (user: string, presence: PresenceState) => void;
}

/** Tries of a watch list the supernode says is too soon (ERR_PRESENCE_BUSY), and the pause between them. */
const WATCH_ATTEMPTS = 8;
const WATCH_RETRY_MS = 1_000;
/** How often what is known of buddies is swept of updates past their 72 h (when news arrives). */
const EXPIRE_INTERVAL_MS = 60_000;

export interface BuddyPresence {
  user: string;
  online: boolean;
  presence: PresenceState;
}

export class PresenceClient {
  #options: PresenceClientOptions;
  #log: Logger;
  #now: () => number;
  #state: SettablePresence = 'online';
  #seq: number | undefined;
  #watching: string[] = [];
  /** What the supernode passed on of watched users: only they (watch() drops the rest), each update until its 72 h are up. */
  #known = new PresenceTable({ maxUsers: MAX_WATCHED_USERS });
  #expiredAt = -Infinity;
  #served = new WeakSet<Link>();
  #sending: Promise<void> | undefined;
  #dirty = false;
  #watchSending: Promise<void> | undefined;
  #watchDirty = false;

  constructor(options: PresenceClientOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  /** This device's own state. */
  get state(): SettablePresence {
    return this.#state;
  }

  /** Take presence news on a (new) supernode link: call on every attach, before `announce()`. */
  serve(link: Link): void {
    if (this.#served.has(link)) return;
    this.#served.add(link);
    link.onNotice(PresenceChanged, (body) => this.#changed(body.updates));
  }

  /** Attached (again): send this device's state and the watch list. Never throws (logs). */
  async announce(): Promise<void> {
    await Promise.all([this.#push(), this.#sendWatch()]);
  }

  /** Set this device's state; it reaches the buddies' phones through the supernodes. */
  async set(state: SettablePresence): Promise<void> {
    if (state === this.#state) return;
    this.#state = state;
    this.#log.info({ presence: state }, 'presence changed');
    await this.#push();
  }

  /** Sign the current state again (with every record refresh: an update lives 65 min). */
  refresh(): Promise<void> {
    return this.#push();
  }

  /** Logging out: say `offline`, signed, while the link is still there (best effort, at most `timeoutMs`). */
  async goodbye(timeoutMs = 1_000): Promise<void> {
    const update = this.#sign('offline');
    const attachment = this.#options.attachment();
    if (!update || !attachment) return;
    try {
      await attachment.link.request(PresenceSet, { update: { ...update } }, { timeoutMs });
      this.#log.info('presence offline sent');
    } catch (err) {
      this.#log.debug({ err: errorMessage(err) }, 'cannot say offline before leaving');
    }
  }

  /** Watch these users (the buddy list): replaces the previous list. */
  async watch(users: readonly string[]): Promise<void> {
    const list = [...new Set(users.map(normaliseUserName))].sort();
    for (const user of [...this.#known.users()]) if (!list.includes(user)) this.#known.delete(user);
    this.#watching = list;
    await this.#sendWatch();
  }

  /** Users something is known of (watched, with an update younger than 72 h). */
  get knownUsers(): number {
    return this.#known.size;
  }

  /** What is known of a watched user now (nothing known = offline). */
  presenceOf(user: string): BuddyPresence {
    const name = normaliseUserName(user);
    const now = this.#now();
    const presence = userPresence(this.#known.get(name).map((u) => effectiveState(u, now)));
    return { user: name, online: presence !== 'offline', presence };
  }

  /** Send the watch list; one send at a time (the supernode takes one at a time), the latest list last. */
  #sendWatch(): Promise<void> {
    if (this.#watchSending) {
      this.#watchDirty = true;
      return this.#watchSending;
    }
    this.#watchSending = (async () => {
      try {
        let busy = 0;
        do {
          this.#watchDirty = false;
          if ((await this.#sendWatchOnce()) === 'busy' && ++busy < WATCH_ATTEMPTS) {
            // Too soon, or more new buddies than the supernode takes at once: the latest list again in a moment.
            await new Promise((r) => setTimeout(r, WATCH_RETRY_MS));
            this.#watchDirty = true;
          }
        } while (this.#watchDirty);
      } finally {
        this.#watchSending = undefined;
      }
    })();
    return this.#watchSending;
  }

  async #sendWatchOnce(): Promise<'sent' | 'busy' | 'failed'> {
    const attachment = this.#options.attachment();
    if (!attachment) return 'failed';
    try {
      const answer = await attachment.link.request(PresenceWatch, { users: this.#watching }, { timeoutMs: 10_000 });
      this.#log.debug({ watching: answer.watching }, 'presence watch list sent');
      return 'sent';
    } catch (err) {
      const code = (err as PartylineError).code;
      if (code === 'ERR_PRESENCE_BUSY' && !attachment.link.closed) return 'busy';
      this.#log.warn({ code, err: errorMessage(err) }, 'cannot send the presence watch list');
      return 'failed';
    }
  }

  /** Send the current state; one send at a time, the latest state last. */
  #push(): Promise<void> {
    if (this.#sending) {
      this.#dirty = true;
      return this.#sending;
    }
    this.#sending = (async () => {
      try {
        do {
          this.#dirty = false;
          await this.#sendOnce();
        } while (this.#dirty);
      } finally {
        this.#sending = undefined;
      }
    })();
    return this.#sending;
  }

  async #sendOnce(): Promise<void> {
    const attachment = this.#options.attachment();
    const update = this.#sign(this.#state);
    if (!attachment || !update) return;
    try {
      const answer = await attachment.link.request(PresenceSet, { update: { ...update } }, { timeoutMs: 8_000 });
      this.#log.debug({ presence: update.state, replicas: answer.replicas }, 'presence published');
    } catch (err) {
      // Too soon after the previous change: wait a moment, then say the latest state (the loop in #push).
      if ((err as PartylineError).code === 'ERR_PRESENCE_BUSY' && !attachment.link.closed) {
        await new Promise((r) => setTimeout(r, 250));
        this.#dirty = true;
        return;
      }
      this.#log.warn({ code: (err as PartylineError).code, err: errorMessage(err) }, 'cannot publish presence');
    }
  }

  #sign(state: PresenceState): DevicePresenceUpdate | undefined {
    const credential = this.#options.credential();
    const attachment = this.#options.attachment();
    if (!credential || !attachment) return undefined;
    const now = this.#now();
    this.#seq = nextSeq(this.#seq, now);
    return signPresence(
      { user: credential.user, deviceId: this.#options.identity.deviceId, state, supernode: attachment.supernode, seq: this.#seq, issued: now },
      credential,
      this.#options.identity.signing,
    );
  }

  #changed(updates: readonly unknown[]): void {
    const now = this.#now();
    if (now - this.#expiredAt >= EXPIRE_INTERVAL_MS) {
      this.#known.expire(now);
      this.#expiredAt = now;
    }
    for (const raw of updates) {
      let update: PresenceUpdate;
      try {
        update = verifyPresenceUpdate(raw, { loginServerKey: this.#options.loginServerKey, network: this.#options.network, now });
      } catch (err) {
        this.#log.info({ code: (err as PartylineError).code, err: errorMessage(err) }, 'presence update refused');
        continue;
      }
      if (!this.#watching.includes(update.user)) continue;
      const before = this.presenceOf(update.user).presence;
      if (!this.#known.merge(update)) continue;
      const after = this.presenceOf(update.user).presence;
      if (after !== before) {
        this.#log.debug({ user: update.user, presence: after }, 'buddy presence changed');
        this.#options.onChange?.(update.user, after);
      }
    }
  }
}
