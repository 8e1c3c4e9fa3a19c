import { z } from 'zod';
import { PartylineError, errorMessage } from '../../errors.js';
import { normaliseUserName, userNameProblem } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import type { Incoming, Messenger, PeerDevice, SendOutcome } from '../route/messenger.js';
import { randomMessageId } from '../route/sealed.js';
import { MAX_TEXT_LENGTH } from './history.js';
import type { ImEntry, MessageHistory } from './history.js';

/**
 * Instant messages on a phone (DESIGN.md "Instant messages go the same way
 * as call signalling"): a text is sealed (route/sealed.ts: encrypted for
 * one device, signed by the sender's certified key) and sent to **every**
 * device of the recipient that the index knows (Messenger.resolve: devices
 * whose signed records verify). A device that cannot be reached gets the
 * same sealed message held by the supernodes responsible for its user, for
 * its next login (Messenger.sendOrHold, mailbox-service.ts).
 *
 * Sealed types:
 *
 * - `im` `{text}`: one message; its id is the same for every recipient
 *   device (the history's id), random per message.
 * - `im.receipt` `{ids}`: the recipient device has it (sent back at once,
 *   held like a message when the sender is offline): the sender's history
 *   marks it `delivered`.
 *
 * A message is shown once: the history remembers `senderDevice/id` of
 * what arrived (history.ts), across restarts. Texts never go to the log.
 */
export const IM_TYPE = 'im';
export const RECEIPT_TYPE = 'im.receipt';

export class ImError extends PartylineError {
  constructor(code: `ERR_IM_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface SendResult {
  id: string;
  to: string;
  /** Devices of the recipient the message went to. */
  devices: number;
  /** Of those, how many took it now. */
  delivered: number;
  /** Of those, how many were offline: their copy is held by the supernodes. */
  held: number;
}

export interface InstantMessagesOptions {
  messenger: Pick<Messenger, 'resolve' | 'sendOrHold' | 'on'>;
  history: MessageHistory;
  /** This device: its user (once logged in) and device id. */
  self: () => { user: string; deviceId: string } | undefined;
  log: Logger;
  now?: () => number;
}

const imBody = z.object({ text: z.string().min(1).max(MAX_TEXT_LENGTH) }).strict();
const receiptBody = z.object({ ids: z.array(z.string().min(1).max(64)).min(1).max(100) }).strict();

export class InstantMessages {
  #options: InstantMessagesOptions;
  #log: Logger;
  #now: () => number;

  constructor(options: InstantMessagesOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    options.messenger.on(IM_TYPE, (incoming) => this.#received(incoming));
    options.messenger.on(RECEIPT_TYPE, (incoming) => this.#receipt(incoming));
  }

  /** Send `text` to every device of `user`. Throws ImError: `ERR_IM_TEXT`, `_USER`, `_UNKNOWN_USER`, `_NO_DEVICE`, `_NOT_SENT`. */
  async send(user: string, text: string): Promise<SendResult> {
    const self = this.#options.self();
    if (!self) throw new PartylineError('ERR_NOT_LOGGED_IN', 'not logged in: cannot send messages');
    if (text.trim().length === 0 || text.length > MAX_TEXT_LENGTH) throw new ImError('ERR_IM_TEXT', `message text: ${text.length} characters, expected 1..${MAX_TEXT_LENGTH} (not only spaces)`);
    const problem = userNameProblem(user);
    if (problem !== undefined) throw new ImError('ERR_IM_USER', `user name ${JSON.stringify(user.slice(0, 40))}: ${problem}`);
    const name = normaliseUserName(user);
    const { answer, devices: found } = await this.#options.messenger.resolve(name);
    if (!answer.found) throw new ImError('ERR_IM_UNKNOWN_USER', `no such user ${JSON.stringify(name)}`);
    // Sealed messages go to device keys: only devices with a live record (logged in within 72 h) can get one.
    const devices = found.filter((d) => d.deviceId !== self.deviceId);
    if (devices.length === 0) throw new ImError('ERR_IM_NO_DEVICE', `${name} has no device that logged in during the last 72 h: nothing to send to`);
    const id = randomMessageId();
    const time = this.#now();
    const outcomes = await Promise.all(devices.map((device) => this.#sendTo(device, id, time, text)));
    const sent = outcomes.filter((o): o is SendOutcome => !(o instanceof Error));
    if (sent.length === 0) {
      const first = outcomes[0] as Error;
      throw new ImError('ERR_IM_NOT_SENT', `message to ${name} could not be sent or held: ${errorMessage(first)}`, { cause: first });
    }
    const delivered = sent.filter((o) => o.delivered).length;
    const held = sent.filter((o) => !o.delivered).length;
    this.#options.history.addOutgoing({ id, direction: 'out', from: self.user, to: name, time, text, delivered: delivered > 0, held: sent.reduce((n, o) => n + o.held, 0) });
    this.#log.info({ to: name, id, devices: devices.length, delivered, held, failed: devices.length - sent.length }, 'message sent');
    return { id, to: name, devices: devices.length, delivered, held };
  }

  /** The history, oldest first. */
  list(): ImEntry[] {
    return this.#options.history.entries();
  }

  async #sendTo(device: PeerDevice, id: string, ts: number, text: string): Promise<SendOutcome | Error> {
    try {
      return await this.#options.messenger.sendOrHold(device, { type: IM_TYPE, id, ts, body: { text } });
    } catch (err) {
      this.#log.warn({ to: `${device.user}/${device.deviceId}`, id, code: (err as PartylineError).code, err: errorMessage(err) }, 'message to one device failed');
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  #received(incoming: Incoming): void {
    const self = this.#options.self();
    const body = imBody.safeParse(incoming.body);
    if (!self || !body.success) {
      this.#log.info({ from: incoming.from.user, id: incoming.id }, 'malformed instant message dropped');
      return;
    }
    const key = `${incoming.from.deviceId}/${incoming.id}`;
    const { history } = this.#options;
    if (history.hasSeen(key)) {
      this.#log.debug({ from: incoming.from.user, id: incoming.id }, 'duplicate instant message dropped');
      return;
    }
    history.addIncoming({ id: incoming.id, direction: 'in', from: incoming.from.user, to: self.user, time: incoming.ts, text: body.data.text, delivered: true, device: incoming.from.deviceId }, key);
    this.#log.info({ from: incoming.from.user, id: incoming.id, chars: body.data.text.length }, 'message received');
    this.#options.messenger.sendOrHold(incoming.reply, { type: RECEIPT_TYPE, body: { ids: [incoming.id] } })
      .catch((err: unknown) => this.#log.debug({ to: incoming.from.user, err: errorMessage(err) }, 'cannot send a message receipt'));
  }

  #receipt(incoming: Incoming): void {
    const body = receiptBody.safeParse(incoming.body);
    if (!body.success) return;
    for (const id of body.data.ids) {
      if (this.#options.history.markDelivered(id, incoming.from.user)) this.#log.debug({ id, by: incoming.from.user }, 'message delivered');
    }
  }
}
