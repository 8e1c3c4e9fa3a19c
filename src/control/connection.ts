import type { Socket } from 'node:net';
import { errorMessage, PartylineError } from '../errors.js';
import type { Logger } from '../system/logging.js';
import { ERR_INTERNAL } from './errors.js';
import { encodeFailure, encodeSuccess, LineDecoder, MAX_REQUEST_LINE_BYTES, parseRequestLine } from './protocol.js';
import type { ControlRequest } from './protocol.js';
import type { ControlRegistry } from './registry.js';

export interface ControlConnectionOptions {
  socket: Socket;
  registry: ControlRegistry;
  log: Logger;
  /** Requests of this connection running at once before we stop reading from it. */
  maxInFlight?: number;
}

/**
 * One client of the control socket: splits its lines, answers each request
 * (concurrently, each response tagged with its request's id), and stops
 * reading while too many requests run or its responses are not being read.
 * A line over the limit ends the connection; anything else malformed gets
 * an error response and the connection carries on. When the client shuts
 * down its side, the requests still running are answered, then we close.
 */
export class ControlConnection {
  #socket: Socket;
  #registry: ControlRegistry;
  #log: Logger;
  #decoder = new LineDecoder(MAX_REQUEST_LINE_BYTES, 'request');
  #abort = new AbortController();
  #maxInFlight: number;
  #inFlight = 0;
  #awaitingDrain = false;
  #ending = false;
  /** The client has sent everything (half-close): answer what is running, then close. */
  #clientDone = false;

  constructor(options: ControlConnectionOptions) {
    this.#socket = options.socket;
    this.#registry = options.registry;
    this.#log = options.log;
    this.#maxInFlight = options.maxInFlight ?? 32;
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('drain', () => {
      this.#awaitingDrain = false;
      this.#updateFlow();
    });
    this.#socket.on('end', () => this.#onEnd());
    this.#socket.on('error', (err) => this.#log.debug({ err: err.message }, 'control connection error'));
    this.#socket.once('close', () => this.#abort.abort());
  }

  /** Drop the connection now; handlers still running see their signal aborted. */
  close(): void {
    this.#abort.abort();
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#ending) return;
    let lines: Buffer[];
    try {
      lines = this.#decoder.push(chunk);
    } catch (err) {
      this.#ending = true;
      const code = err instanceof PartylineError ? err.code : ERR_INTERNAL;
      this.#log.warn({ code, limit: MAX_REQUEST_LINE_BYTES }, 'control request line too long; closing the connection');
      this.#socket.end(encodeFailure(null, { code, message: errorMessage(err) }), () => this.#socket.destroy());
      return;
    }
    for (const line of lines) this.#onLine(line);
  }

  /** `printf '{"id":1,"command":"status"}' | socat - UNIX-CONNECT:…` works: the last line needs no newline. */
  #onEnd(): void {
    if (this.#ending) return;
    this.#clientDone = true;
    const last = this.#decoder.end();
    if (last) this.#onLine(last);
    this.#finishIfDone();
  }

  #finishIfDone(): void {
    if (this.#clientDone && this.#inFlight === 0 && !this.#ending) {
      this.#ending = true;
      this.#socket.end();
    }
  }

  #onLine(line: Buffer): void {
    const parsed = parseRequestLine(line);
    if (!parsed.ok) {
      this.#log.debug({ id: parsed.id, code: parsed.error.code, err: parsed.error.message }, 'malformed control request');
      this.#send(encodeFailure(parsed.id, parsed.error));
      return;
    }
    this.#inFlight++;
    this.#updateFlow();
    this.#handle(parsed.request)
      .then((line) => this.#send(line))
      .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'control response failed'))
      .finally(() => {
        this.#inFlight--;
        this.#updateFlow();
        this.#finishIfDone();
      });
  }

  /** Run one request; always resolves with the response line. */
  async #handle(request: ControlRequest): Promise<string> {
    const { id, command, args } = request;
    this.#log.debug({ id, command }, 'control request');
    try {
      const result = await this.#registry.invoke(command, args, { origin: 'socket', signal: this.#abort.signal });
      try {
        return encodeSuccess(id, result);
      } catch (err) {
        this.#log.error({ command, err: errorMessage(err) }, 'control result is not JSON data');
        return encodeFailure(id, { code: ERR_INTERNAL, message: `${command}: internal error: the result cannot be written as JSON (details in the node's log)` });
      }
    } catch (err) {
      const code = err instanceof PartylineError ? err.code : ERR_INTERNAL;
      this.#log.debug({ id, command, code }, 'control request failed');
      return encodeFailure(id, { code, message: errorMessage(err) });
    }
  }

  #send(line: string): void {
    const socket = this.#socket;
    if (this.#ending || socket.destroyed || !socket.writable) return; // the client has gone: nobody to answer
    if (!socket.write(line)) {
      this.#awaitingDrain = true;
      this.#updateFlow();
    }
  }

  /** Read from the client only while it has few requests running and reads its answers. */
  #updateFlow(): void {
    if (this.#ending || this.#socket.destroyed) return;
    const hold = this.#inFlight >= this.#maxInFlight || this.#awaitingDrain;
    if (hold && !this.#socket.isPaused()) this.#socket.pause();
    else if (!hold && this.#socket.isPaused()) this.#socket.resume();
  }
}
