import { PartylineError } from '../../errors.js';
import { SEALED_LIFETIME_MS } from '../route/sealed.js';
import { MAX_HELD_PER_ANSWER_CHARS } from './mailbox-messages.js';
import type { HeldMessage } from './mailbox-messages.js';

/**
 * Held messages on one supernode: by user, then device, then message id
 * (a copy that arrives again, from the sender's supernode or a fellow
 * holder, is `unchanged`). Pure state with the time passed in.
 *
 * A message is kept 72 h after it was sent (never longer than 72 h after
 * it arrived here, whatever `sentAt` claims): the sealed message inside
 * expires then too. Limits keep one sender from filling a supernode:
 * `maxPerDevice` messages per recipient device, `maxBytes` in all, and per
 * sending user `maxPerSenderPerDevice` for one device and `maxPerSender` in
 * all (so one user cannot fill someone's mailbox for everyone else), and
 * `maxBytesPerSupernode` for what one other supernode handed over
 * (`mailbox.store`: the sender stamp is that supernode's word, so a rogue
 * one making up senders is held to its own share).
 */
export class MailboxError extends PartylineError {
  constructor(code: `ERR_MAILBOX_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface MailboxStoreOptions {
  /** Messages held per recipient device (default 200). */
  maxPerDevice?: number;
  /** Sealed bytes (base64 characters) held in all (default 64 MiB). */
  maxBytes?: number;
  /** Messages one sender (user) may have waiting for one recipient device (default 50). */
  maxPerSenderPerDevice?: number;
  /** Messages one sender (user) may have waiting here in all (default 500). */
  maxPerSender?: number;
  /** Sealed bytes held that one other supernode handed over (default 16 MiB, a quarter of `maxBytes`). */
  maxBytesPerSupernode?: number;
  lifetimeMs?: number;
}

interface Held {
  message: HeldMessage;
  expires: number;
  /** The supernode that handed it over (`mailbox.store`); undefined when this supernode took it from its own phone. */
  via: string | undefined;
}

export class MailboxStore {
  readonly maxPerDevice: number;
  readonly maxBytes: number;
  readonly lifetimeMs: number;
  /** user → deviceId → id → held. */
  #users = new Map<string, Map<string, Map<string, Held>>>();
  #bytes = 0;
  #count = 0;
  /** sender user → how many of its messages wait here, in all and per recipient device. */
  #senders = new Map<string, { total: number; perDevice: Map<string, number> }>();
  readonly maxPerSenderPerDevice: number;
  readonly maxPerSender: number;
  readonly maxBytesPerSupernode: number;
  /** Forwarding supernode → sealed bytes held that it handed over. */
  #bySupernode = new Map<string, number>();

  constructor(options: MailboxStoreOptions = {}) {
    this.maxPerDevice = options.maxPerDevice ?? 200;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.lifetimeMs = options.lifetimeMs ?? SEALED_LIFETIME_MS;
    this.maxPerSenderPerDevice = options.maxPerSenderPerDevice ?? 50;
    this.maxPerSender = options.maxPerSender ?? 500;
    this.maxBytesPerSupernode = options.maxBytesPerSupernode ?? Math.floor(this.maxBytes / 4);
  }

  get size(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Keep a message (its `to.user` normalised by the caller); `via`: the
   * supernode that handed it over, if another one. Throws
   * `ERR_MAILBOX_EXPIRED`, `ERR_MAILBOX_FULL` or `ERR_MAILBOX_SENDER_QUOTA`.
   */
  put(message: HeldMessage, now: number, via?: string): 'stored' | 'unchanged' {
    const expires = Math.min(message.sentAt, now) + this.lifetimeMs;
    if (expires <= now) throw new MailboxError('ERR_MAILBOX_EXPIRED', `held message ${message.id}: sent more than 72 h ago`);
    const devices = this.#users.get(message.to.user);
    const held = devices?.get(message.to.deviceId);
    if (held?.has(message.id)) return 'unchanged';
    if ((held?.size ?? 0) >= this.maxPerDevice) {
      throw new MailboxError('ERR_MAILBOX_FULL', `${message.to.user}/${message.to.deviceId} already has ${this.maxPerDevice} messages waiting`);
    }
    if (this.#bytes + message.sealed.length > this.maxBytes) {
      throw new MailboxError('ERR_MAILBOX_FULL', 'this supernode holds as many messages as it can');
    }
    const viaBytes = via === undefined ? 0 : (this.#bySupernode.get(via) ?? 0);
    if (via !== undefined && viaBytes + message.sealed.length > this.maxBytesPerSupernode) {
      throw new MailboxError('ERR_MAILBOX_FULL', `supernode ${via} already handed over ${viaBytes} bytes of held messages, at most ${this.maxBytesPerSupernode}`);
    }
    // Per sender, so that one user cannot fill someone's mailbox (or this supernode) for everyone else.
    const deviceKey = `${message.to.user}/${message.to.deviceId}`;
    const sender = this.#senders.get(message.from.user) ?? { total: 0, perDevice: new Map<string, number>() };
    if ((sender.perDevice.get(deviceKey) ?? 0) >= this.maxPerSenderPerDevice) {
      throw new MailboxError('ERR_MAILBOX_SENDER_QUOTA', `${message.from.user} already has ${this.maxPerSenderPerDevice} messages waiting for ${deviceKey}`);
    }
    if (sender.total >= this.maxPerSender) {
      throw new MailboxError('ERR_MAILBOX_SENDER_QUOTA', `${message.from.user} already has ${this.maxPerSender} messages waiting here`);
    }
    sender.total++;
    sender.perDevice.set(deviceKey, (sender.perDevice.get(deviceKey) ?? 0) + 1);
    this.#senders.set(message.from.user, sender);
    let byDevice = devices;
    if (!byDevice) {
      byDevice = new Map();
      this.#users.set(message.to.user, byDevice);
    }
    let byId = held;
    if (!byId) {
      byId = new Map();
      byDevice.set(message.to.deviceId, byId);
    }
    byId.set(message.id, { message, expires, via });
    if (via !== undefined) this.#bySupernode.set(via, viaBytes + message.sealed.length);
    this.#bytes += message.sealed.length;
    this.#count++;
    return 'stored';
  }

  /**
   * What is held for one device, oldest first, at most `maxChars` of
   * sealed text (always at least one message); `more` when some were left.
   */
  take(user: string, deviceId: string, now: number, maxChars = MAX_HELD_PER_ANSWER_CHARS): { messages: HeldMessage[]; more: boolean } {
    const live = [...(this.#users.get(user)?.get(deviceId)?.values() ?? [])].filter((h) => h.expires > now).map((h) => h.message);
    live.sort((a, b) => a.sentAt - b.sentAt || (a.id < b.id ? -1 : 1));
    const messages: HeldMessage[] = [];
    let chars = 0;
    for (const m of live) {
      if (messages.length > 0 && (chars + m.sealed.length > maxChars || messages.length >= 64)) break;
      messages.push(m);
      chars += m.sealed.length;
    }
    return { messages, more: messages.length < live.length };
  }

  /** Delete delivered messages; returns how many were held. */
  delete(user: string, deviceId: string, ids: Iterable<string>): number {
    const devices = this.#users.get(user);
    const byId = devices?.get(deviceId);
    if (!devices || !byId) return 0;
    let deleted = 0;
    for (const id of ids) {
      const held = byId.get(id);
      if (!held) continue;
      byId.delete(id);
      this.#bytes -= held.message.sealed.length;
      this.#count--;
      this.#forgetSender(held.message);
      this.#forgetVia(held);
      deleted++;
    }
    if (byId.size === 0) devices.delete(deviceId);
    if (devices.size === 0) this.#users.delete(user);
    return deleted;
  }

  /** Users with held messages. */
  users(): string[] {
    return [...this.#users.keys()];
  }

  /** Every live message held for a user (any device). */
  forUser(user: string, now: number): HeldMessage[] {
    const out: HeldMessage[] = [];
    for (const byId of this.#users.get(user)?.values() ?? []) for (const h of byId.values()) if (h.expires > now) out.push(h.message);
    return out;
  }

  #forgetVia(held: Held): void {
    if (held.via === undefined) return;
    const left = (this.#bySupernode.get(held.via) ?? 0) - held.message.sealed.length;
    if (left <= 0) this.#bySupernode.delete(held.via);
    else this.#bySupernode.set(held.via, left);
  }

  #forgetSender(message: HeldMessage): void {
    const sender = this.#senders.get(message.from.user);
    if (!sender) return;
    const deviceKey = `${message.to.user}/${message.to.deviceId}`;
    const n = (sender.perDevice.get(deviceKey) ?? 1) - 1;
    if (n <= 0) sender.perDevice.delete(deviceKey);
    else sender.perDevice.set(deviceKey, n);
    sender.total--;
    if (sender.total <= 0) this.#senders.delete(message.from.user);
  }

  /** Drop what is past its 72 h; returns how many went. */
  expire(now: number): number {
    let removed = 0;
    for (const [user, devices] of this.#users) {
      for (const [deviceId, byId] of devices) {
        const gone = [...byId.values()].filter((h) => h.expires <= now).map((h) => h.message.id);
        removed += this.delete(user, deviceId, gone);
      }
    }
    return removed;
  }
}
