import { z } from 'zod';
import { EventEmitter } from 'node:events';
import type { SecureChannel } from '../crypto/secure-channel.js';
import { AbortedError, PartylineError, TimeoutError, WireError } from '../errors.js';
import type { Logger } from '../system/logging.js';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION } from '../wire/envelope.js';
import type { Envelope } from '../wire/envelope.js';
import { defineRequest, formatIssues } from '../wire/messages.js';

import type { NoticeDef, RequestDef } from '../wire/messages.js';

/**
 * Request and notice handlers by message type. A service builds one table
 * and hands it to every link it accepts (LinkOptions.handlers), so ten
 * thousand attached nodes cost one table, not ten thousand.
 */
export class LinkHandlers {
  readonly requests = new Map<string, { def: RequestDef<unknown, unknown>; handler: RequestHandler }>();
  readonly notices = new Map<string, { def: NoticeDef<unknown>; handler: NoticeHandler }>();

  handle<Req, Res>(def: RequestDef<Req, Res>, handler: (body: Req, link: Link) => Res | Promise<Res>): this {
    this.requests.set(def.type, { def: def as RequestDef<unknown, unknown>, handler: handler as RequestHandler });
    return this;
  }

  onNotice<Body>(def: NoticeDef<Body>, handler: (body: Body, link: Link) => void): this {
    this.notices.set(def.type, { def: def as NoticeDef<unknown>, handler: handler as NoticeHandler });
    return this;
  }
}

/** The peer answered a request with an error. `code` is the peer's stable code. */
export class RemoteError extends PartylineError {
  readonly remoteCode: string;

  constructor(remoteCode: string, message: string) {
    super(remoteCode.startsWith('ERR_') ? remoteCode : `ERR_REMOTE_${remoteCode}`, message);
    this.remoteCode = remoteCode;
  }
}

export interface LinkOptions {
  log: Logger;
  /** Default request timeout (ms). */
  requestTimeoutMs?: number;
  /** Token bucket: sustained messages per second the peer may send. */
  maxMessagesPerSecond?: number;
  /** Token bucket depth. */
  burst?: number;
  /** Protocol errors (invalid bodies, unknown requests) tolerated before the link is closed. */
  maxProtocolErrors?: number;
  now?: () => number;
  /** A handler table shared with other links (a service's handlers); this link's own come first. */
  handlers?: LinkHandlers;
}

interface Pending {
  resolve: (body: unknown) => void;
  reject: (err: Error) => void;
  def: RequestDef<unknown, unknown>;
  timer: NodeJS.Timeout;
  cleanup: () => void;
}

type RequestHandler = (body: unknown, link: Link) => unknown;
type NoticeHandler = (body: unknown, link: Link) => void;

interface LinkEvents {
  close: [Error | undefined];
}

const ERROR_TYPE = 'error';

/** Built into every link: answers with the sender's timestamp, for liveness and round-trip time. */
export const LinkPing = defineRequest(
  'link.ping',
  z.object({ t: z.number().int().nonnegative() }).strict(),
  z.object({ t: z.number().int().nonnegative() }).strict(),
);

const BUILT_IN = new LinkHandlers().handle(LinkPing, (body) => ({ t: body.t }));
const MAX_ID = 0xffffffff;

/**
 * A message link over a secure channel: versioned envelopes, requests with
 * timeouts and AbortSignal, notices, and handlers for what the peer sends.
 * A malformed message closes this link with a typed error; the process and
 * other links carry on.
 */
export class Link extends EventEmitter<LinkEvents> {
  readonly channel: SecureChannel;
  #log: Logger;
  /** Handlers registered on this link alone; created on first use. */
  #own: LinkHandlers | undefined;
  /** Handlers shared by every link of a service (one table instead of one per link). */
  readonly #shared: LinkHandlers | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #timeoutMs: number;
  #now: () => number;
  #rate: number;
  #burst: number;
  #tokens: number;
  #tokensAt: number;
  #protocolErrors = 0;
  #maxProtocolErrors: number;
  #closed = false;
  /** Epoch ms of the last message received: keep-alive bookkeeping. */
  lastReceived: number;

  constructor(channel: SecureChannel, options: LinkOptions) {
    super();
    this.channel = channel;
    this.#log = options.log;
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#rate = options.maxMessagesPerSecond ?? 200;
    this.#burst = options.burst ?? Math.max(50, this.#rate * 2);
    this.#tokens = this.#burst;
    this.#tokensAt = this.#now();
    this.#maxProtocolErrors = options.maxProtocolErrors ?? 10;
    this.lastReceived = this.#now();
    this.#shared = options.handlers;
    channel.on('message', this.#onMessage);
    channel.on('close', this.#onChannelClose);
    if (channel.closed) queueMicrotask(() => this.#onChannelClose(undefined));
  }

  /**
   * Start receiving. Call after registering handlers: messages that arrived
   * meanwhile were held back, not lost. Idempotent.
   */
  start(): this {
    this.channel.start();
    return this;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get remoteAddress(): string | undefined {
    return this.channel.remoteAddress;
  }

  /** The shared handler table this link was created with, if any. */
  get sharedHandlers(): LinkHandlers | undefined {
    return this.#shared;
  }

  handle<Req, Res>(def: RequestDef<Req, Res>, handler: (body: Req, link: Link) => Res | Promise<Res>): this {
    (this.#own ??= new LinkHandlers()).handle(def, handler);
    return this;
  }

  onNotice<Body>(def: NoticeDef<Body>, handler: (body: Body, link: Link) => void): this {
    (this.#own ??= new LinkHandlers()).onNotice(def, handler);
    return this;
  }

  notify<Body>(def: NoticeDef<Body>, body: Body): void {
    this.#send({ v: ENVELOPE_VERSION, type: def.type, body: body as Record<string, unknown> });
  }

  request<Req, Res>(def: RequestDef<Req, Res>, body: Req, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Res> {
    if (this.#closed) return Promise.reject(new PartylineError('ERR_LINK_CLOSED', `${def.type}: link is closed`));
    if (options.signal?.aborted) return Promise.reject(new AbortedError(`${def.type}: aborted`));
    const id = this.#nextId;
    this.#nextId = this.#nextId >= MAX_ID ? 1 : this.#nextId + 1;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => {
        this.#settle(id)?.reject(new AbortedError(`${def.type}: aborted`));
      };
      const timer = setTimeout(() => {
        this.#settle(id)?.reject(new TimeoutError(`${def.type}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: resolve as (body: unknown) => void,
        reject,
        def: def as RequestDef<unknown, unknown>,
        timer,
        cleanup: () => options.signal?.removeEventListener('abort', onAbort),
      });
      try {
        this.#send({ v: ENVELOPE_VERSION, type: def.type, id, body: body as Record<string, unknown> });
      } catch (err) {
        this.#settle(id)?.reject(err as Error);
      }
    });
  }

  /** Round-trip time to the peer in ms (rejects on timeout or a closed link). */
  async ping(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<number> {
    const sent = performance.now();
    await this.request(LinkPing, { t: Math.floor(this.#now()) }, options);
    return performance.now() - sent;
  }

  /** Close the link (and its channel). Pending requests fail. Idempotent. */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.channel.off('message', this.#onMessage);
    this.channel.off('close', this.#onChannelClose);
    this.channel.close(error);
    const reason = new PartylineError('ERR_LINK_CLOSED', error ? `link closed: ${error.message}` : 'link closed', { cause: error });
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(reason);
    this.emit('close', error);
  }

  #settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.cleanup();
    return pending;
  }

  #send(envelope: Envelope): void {
    if (this.#closed) throw new PartylineError('ERR_LINK_CLOSED', `${envelope.type}: link is closed`);
    this.channel.send(encodeEnvelope(envelope));
  }

  #sendError(re: number | undefined, code: string, message: string): void {
    if (this.#closed) return;
    const envelope: Envelope = { v: ENVELOPE_VERSION, type: ERROR_TYPE, body: { code, message } };
    if (re !== undefined) envelope.re = re;
    this.#send(envelope);
  }

  #onChannelClose = (error: Error | undefined): void => {
    if (error) this.#log.warn({ code: (error as PartylineError).code, err: error.message, peer: this.remoteAddress }, 'link closed on error');
    this.close(error);
  };

  #takeToken(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#tokensAt) / 1000) * this.#rate);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #protocolError(re: number | undefined, code: string, message: string): void {
    this.#log.debug({ code, message, peer: this.remoteAddress }, 'protocol error from peer');
    this.#sendError(re, code, message);
    if (++this.#protocolErrors > this.#maxProtocolErrors) {
      this.close(new WireError('ERR_WIRE_TOO_MANY_ERRORS', `peer sent more than ${this.#maxProtocolErrors} invalid messages`));
    }
  }

  #onMessage = (bytes: Buffer): void => {
    if (this.#closed) return;
    this.lastReceived = this.#now();
    if (!this.#takeToken()) {
      this.close(new PartylineError('ERR_LINK_RATE', `peer exceeded ${this.#rate} messages per second`));
      return;
    }
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(bytes);
    } catch (err) {
      // A frame that decrypted but is not a valid envelope: the peer is broken or hostile.
      this.close(err as Error);
      return;
    }
    try {
      if (envelope.re !== undefined) this.#onAnswer(envelope);
      else if (envelope.type === ERROR_TYPE) this.#log.debug({ body: envelope.body }, 'peer reported an error');
      else if (envelope.id !== undefined) this.#onRequest(envelope, envelope.id);
      else this.#onNotice(envelope);
    } catch (err) {
      this.#log.error({ err, type: envelope.type }, 'message handler failed');
    }
  };

  #onAnswer(envelope: Envelope): void {
    const pending = this.#settle(envelope.re!);
    if (!pending) {
      this.#log.debug({ type: envelope.type, re: envelope.re }, 'answer to no pending request (late or duplicate)');
      return;
    }
    if (envelope.type === ERROR_TYPE) {
      const code = typeof envelope.body.code === 'string' ? envelope.body.code.slice(0, 64) : 'ERR_REMOTE';
      const message = typeof envelope.body.message === 'string' ? envelope.body.message.slice(0, 512) : 'peer reported an error';
      pending.reject(new RemoteError(code, message));
      return;
    }
    if (envelope.type !== pending.def.type) {
      pending.reject(new WireError('ERR_WIRE_TYPE', `answer to ${pending.def.type} has type ${envelope.type}`));
      return;
    }
    const parsed = pending.def.response.safeParse(envelope.body);
    if (!parsed.success) {
      pending.reject(new WireError('ERR_WIRE_BODY', formatIssues(parsed.error, `${envelope.type} response`).join('; ')));
      return;
    }
    pending.resolve(parsed.data);
  }

  #onRequest(envelope: Envelope, id: number): void {
    const entry = this.#own?.requests.get(envelope.type) ?? this.#shared?.requests.get(envelope.type) ?? BUILT_IN.requests.get(envelope.type);
    if (!entry) {
      this.#protocolError(id, 'ERR_WIRE_UNKNOWN_TYPE', `unknown request type ${envelope.type}`);
      return;
    }
    const parsed = entry.def.request.safeParse(envelope.body);
    if (!parsed.success) {
      this.#protocolError(id, 'ERR_WIRE_BODY', formatIssues(parsed.error, envelope.type).join('; '));
      return;
    }
    Promise.resolve()
      .then(() => entry.handler(parsed.data, this))
      .then(
        (result) => {
          if (!this.#closed) this.#send({ v: ENVELOPE_VERSION, type: envelope.type, re: id, body: result as Record<string, unknown> });
        },
        (err: unknown) => {
          if (err instanceof PartylineError) {
            this.#sendError(id, err.code, err.message);
          } else {
            this.#log.error({ err, type: envelope.type }, 'request handler failed');
            this.#sendError(id, 'ERR_INTERNAL', `${envelope.type}: internal error`);
          }
        },
      )
      .catch((err: unknown) => this.#log.error({ err, type: envelope.type }, 'cannot send answer'));
  }

  #onNotice(envelope: Envelope): void {
    const entry = this.#own?.notices.get(envelope.type) ?? this.#shared?.notices.get(envelope.type);
    if (!entry) {
      this.#protocolError(undefined, 'ERR_WIRE_UNKNOWN_TYPE', `unknown message type ${envelope.type}`);
      return;
    }
    const parsed = entry.def.body.safeParse(envelope.body);
    if (!parsed.success) {
      this.#protocolError(undefined, 'ERR_WIRE_BODY', formatIssues(parsed.error, envelope.type).join('; '));
      return;
    }
    entry.handler(parsed.data, this);
  }
}
