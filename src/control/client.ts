import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { AbortedError, errorMessage, PartylineError, TimeoutError } from '../errors.js';
import { ControlError, ControlRemoteError } from './errors.js';
import { encodeRequest, LineDecoder, MAX_REQUEST_LINE_BYTES, MAX_RESPONSE_LINE_BYTES, parseResponseLine } from './protocol.js';
import { checkSocketPath } from './socket-path.js';

export const DEFAULT_CONTROL_TIMEOUT_MS = 5000;

export interface ControlCallOptions {
  /** Time for connecting and the answer together. Default 5000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ControlClientOptions {
  /** Socket path (`node.control`, or `partyline ctl --socket`). */
  path: string;
}

interface Pending {
  command: string;
  settle: (outcome: { result: unknown } | { error: Error }) => void;
}

/**
 * A connection to a node's control socket. Calls may overlap: each carries
 * its own id and waits for its own answer. Rejects with a PartylineError:
 * `ERR_CONTROL_UNREACHABLE` (nothing listens), `ERR_CONTROL_PERMISSION`,
 * `ERR_CONTROL_CONNECT`, `ERR_CONTROL_PATH_TOO_LONG`, `ERR_TIMEOUT`,
 * `ERR_ABORTED`, `ERR_CONTROL_CLOSED`, `ERR_CONTROL_PROTOCOL`, or a
 * ControlRemoteError carrying the node's own code and message.
 */
export class ControlClient {
  readonly path: string;
  #socket: Socket | undefined;
  #connecting: Promise<Socket> | undefined;
  #decoder = new LineDecoder(MAX_RESPONSE_LINE_BYTES, 'response');
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(options: ControlClientOptions) {
    this.path = options.path;
  }

  /** Send one request and wait for its answer; connects first when needed. */
  async call(command: string, args: Record<string, unknown> = {}, options: ControlCallOptions = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
    const id = this.#nextId++;
    const line = encodeRequest(id, command, args);
    const bytes = Buffer.byteLength(line) - 1;
    if (bytes > MAX_REQUEST_LINE_BYTES) {
      throw new ControlError('ERR_CONTROL_REQUEST', `${command}: request is ${bytes} bytes, over the ${MAX_REQUEST_LINE_BYTES}-byte limit`);
    }
    return new Promise<unknown>((resolve, reject) => {
      const signal = options.signal;
      const finish = (outcome: { result: unknown } | { error: Error }): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
        if ('error' in outcome) reject(outcome.error);
        else resolve(outcome.result);
      };
      const onAbort = (): void => finish({ error: new AbortedError(`${command}: aborted`) });
      const timer = setTimeout(
        () => finish({ error: new TimeoutError(`no answer from ${this.path} to "${command}" within ${timeoutMs} ms`) }),
        timeoutMs,
      );
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, { command, settle: finish });
      this.#connect().then(
        (socket) => {
          if (this.#pending.has(id)) socket.write(line);
        },
        (err: unknown) => finish({ error: err instanceof Error ? err : new Error(String(err)) }),
      );
    });
  }

  /** Close the connection; calls still waiting reject with `ERR_CONTROL_CLOSED`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failAll(new ControlError('ERR_CONTROL_CLOSED', `control connection to ${this.path} closed`));
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #connect(): Promise<Socket> {
    if (this.#closed) return Promise.reject(new ControlError('ERR_CONTROL_CLOSED', `control connection to ${this.path} closed`));
    if (this.#socket) return Promise.resolve(this.#socket);
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(): Promise<Socket> {
    const path = this.path;
    checkSocketPath(path);
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({ path });
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.destroy();
        reject(connectError(path, err));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        if (this.#closed) {
          socket.destroy();
          reject(new ControlError('ERR_CONTROL_CLOSED', `control connection to ${path} closed`));
          return;
        }
        this.#attach(socket);
        resolve(socket);
      });
    });
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    let failure: Error | undefined;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const line of this.#decoder.push(chunk)) this.#onResponse(line);
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      failure ??= new ControlError('ERR_CONTROL_CLOSED', `control connection to ${this.path} failed: ${err.message}`, { cause: err });
    });
    socket.once('close', () => {
      if (this.#socket === socket) this.#socket = undefined;
      this.#failAll(failure);
    });
  }

  #onResponse(line: Buffer): void {
    const response = parseResponseLine(line);
    if (!response.ok && response.id === null) {
      // The node could not tell which request this is about: it concerns them all (e.g. ERR_CONTROL_LINE_TOO_LONG).
      for (const pending of [...this.#pending.values()]) {
        pending.settle({ error: new ControlRemoteError(pending.command, response.error.code, response.error.message) });
      }
      return;
    }
    const pending = response.id === null ? undefined : this.#pending.get(response.id);
    if (!pending) return; // an answer to a call that already timed out or was aborted
    if (response.ok) pending.settle({ result: response.result });
    else pending.settle({ error: new ControlRemoteError(pending.command, response.error.code, response.error.message) });
  }

  #failAll(cause: Error | undefined): void {
    for (const pending of [...this.#pending.values()]) {
      const error =
        cause instanceof PartylineError
          ? cause
          : new ControlError('ERR_CONTROL_CLOSED', `the node closed the control connection before answering "${pending.command}"`, cause ? { cause } : {});
      pending.settle({ error });
    }
  }
}

/** One request on a fresh connection, closed afterwards. */
export async function callControl(
  path: string,
  command: string,
  args: Record<string, unknown> = {},
  options: ControlCallOptions = {},
): Promise<unknown> {
  const client = new ControlClient({ path });
  try {
    return await client.call(command, args, options);
  } finally {
    client.close();
  }
}

function connectError(path: string, err: NodeJS.ErrnoException): ControlError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new ControlError(
        'ERR_CONTROL_UNREACHABLE',
        `no partyline node is listening on ${path} (is it running? is node.control / --socket right?)`,
        { cause: err },
      );
    case 'EACCES':
    case 'EPERM':
      return new ControlError(
        'ERR_CONTROL_PERMISSION',
        `permission denied on ${path} (run as the node's user, or as a member of its group)`,
        { cause: err },
      );
    default:
      return new ControlError('ERR_CONTROL_CONNECT', `cannot connect to ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
