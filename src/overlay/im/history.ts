import { readFile, rename } from 'node:fs/promises';
import { z } from 'zod';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../system/logging.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { SEALED_LIFETIME_MS } from '../route/sealed.js';

/**
 * A phone's instant-message history, kept in `<stateDir>/messages.json`
 * (mode 0600: message texts are private), written atomically a moment
 * after each change, bounded to the newest `maxMessages`.
 *
 * It also remembers which messages were seen — `senderDeviceId/id` of
 * every message received in the last 72 h (older ones are refused as
 * expired anyway, route/sealed.ts) — so that a copy delivered again after
 * a restart (a second holder, a lost delete) is not shown twice.
 */
export const MESSAGES_FILE = 'messages.json';
export const MAX_TEXT_LENGTH = 4000;

export interface ImEntry {
  /** The message id (the same on every device of the recipient). */
  id: string;
  direction: 'in' | 'out';
  from: string;
  to: string;
  /** Epoch ms when it was sent (the sender's signed time). */
  time: number;
  text: string;
  /** In: true. Out: a device of the recipient took it (directly, or later, by receipt). */
  delivered: boolean;
  /** In: the sender's device. */
  device?: string;
  /** Out: supernodes holding it for offline devices of the recipient. */
  held?: number;
}

const entrySchema = z.object({
  id: z.string().min(1).max(64),
  direction: z.enum(['in', 'out']),
  from: z.string().min(1).max(64),
  to: z.string().min(1).max(64),
  time: z.number().int().nonnegative(),
  text: z.string().max(MAX_TEXT_LENGTH),
  delivered: z.boolean(),
  device: z.string().max(64).optional(),
  held: z.number().int().nonnegative().optional(),
}).strict();

const fileSchema = z.object({
  version: z.literal(1),
  messages: z.array(entrySchema),
  /** [senderDeviceId/id, epoch ms seen]. */
  seen: z.array(z.tuple([z.string().max(200), z.number().int().nonnegative()])),
}).strict();

export interface MessageHistoryOptions {
  path: string;
  log: Logger;
  /** Messages kept (default 1000): the oldest go first. */
  maxMessages?: number;
  /** Seen ids kept at most (default 20,000). */
  maxSeen?: number;
  /** Delay before a change is written (default 200 ms). */
  saveDelayMs?: number;
  now?: () => number;
}

export class MessageHistory {
  #options: MessageHistoryOptions;
  #log: Logger;
  #now: () => number;
  #messages: ImEntry[] = [];
  /** Insertion order = age. */
  #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #saving: Promise<void> = Promise.resolve();

  constructor(options: MessageHistoryOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  /** Read the saved history; an unreadable file is set aside (`.corrupt-<ms>`) and the history starts empty. */
  async load(): Promise<void> {
    const { path } = this.#options;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn({ path, err: errorMessage(err) }, 'cannot read the message history');
      return;
    }
    let parsed: z.infer<typeof fileSchema> | undefined;
    try {
      const result = fileSchema.safeParse(JSON.parse(text));
      if (result.success) parsed = result.data;
    } catch {
      parsed = undefined;
    }
    if (!parsed) {
      const aside = `${path}.corrupt-${Math.trunc(this.#now())}`;
      await rename(path, aside).catch((err: unknown) => this.#log.warn({ path, err: errorMessage(err) }, 'cannot set the corrupt message history aside'));
      this.#log.warn({ path, aside }, 'message history unreadable: set aside, starting empty');
      return;
    }
    this.#messages = parsed.messages.map((m) => ({ ...m }) as ImEntry);
    for (const [key, at] of parsed.seen) this.#seen.set(key, at);
    this.#prune();
  }

  /** Every message, oldest first. */
  entries(): ImEntry[] {
    return this.#messages.map((m) => ({ ...m }));
  }

  hasSeen(key: string): boolean {
    return this.#seen.has(key);
  }

  /** A received message (its `senderDeviceId/id` key is remembered). */
  addIncoming(entry: ImEntry, key: string): void {
    this.#seen.set(key, this.#now());
    this.#add(entry);
  }

  addOutgoing(entry: ImEntry): void {
    this.#add(entry);
  }

  /** A receipt came for a sent message. Returns true when the entry changed. */
  markDelivered(id: string, by: string): boolean {
    const entry = this.#messages.find((m) => m.id === id && m.direction === 'out' && m.to === by);
    if (!entry || entry.delivered) return false;
    entry.delivered = true;
    this.#schedule();
    return true;
  }

  /** Write now (pending changes included); resolves when written. */
  async flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#save();
    }
    await this.#saving;
  }

  #add(entry: ImEntry): void {
    this.#messages.push(entry);
    this.#messages.sort((a, b) => a.time - b.time);
    this.#prune();
    this.#schedule();
  }

  #prune(): void {
    const max = this.#options.maxMessages ?? 1000;
    if (this.#messages.length > max) this.#messages.splice(0, this.#messages.length - max);
    const now = this.#now();
    const maxSeen = this.#options.maxSeen ?? 20_000;
    for (const [key, at] of this.#seen) {
      if (this.#seen.size <= maxSeen && at + SEALED_LIFETIME_MS + 3_600_000 > now) break;
      this.#seen.delete(key);
    }
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#save();
    }, this.#options.saveDelayMs ?? 200);
    this.#timer.unref();
  }

  #save(): void {
    const text = `${JSON.stringify({ version: 1, messages: this.#messages, seen: [...this.#seen] })}\n`;
    this.#saving = this.#saving
      .then(() => writeFileAtomic(this.#options.path, text, { mode: 0o600 }))
      .catch((err: unknown) => this.#log.warn({ path: this.#options.path, err: errorMessage(err) }, 'cannot save the message history'));
  }
}
