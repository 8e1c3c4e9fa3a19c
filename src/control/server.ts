import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../system/logging.js';
import { ControlConnection } from './connection.js';
import { ControlError } from './errors.js';
import { encodeFailure } from './protocol.js';
import type { ControlRegistry } from './registry.js';
import { checkSocketPath } from './socket-path.js';

/**
 * Mode of the socket file: read/write for the node's user and group,
 * nothing for others. Connecting to a Unix socket needs write permission on
 * it, and whoever can connect can place calls, read the status and change
 * the phone's state, so "others" get nothing. The group is what lets an
 * operator account (a member of the node's group, e.g. `partyline` under the
 * packaged systemd unit) run `partyline ctl` without root or sudo; it also
 * needs search (x) permission on the socket's directory.
 */
export const CONTROL_SOCKET_MODE = 0o660;

/** Mode of the socket's directory when we have to create it: group may reach the socket, others may not. */
const SOCKET_DIR_MODE = 0o750;

/** How long to wait for whatever holds an existing socket file to answer. */
const PROBE_TIMEOUT_MS = 1000;

export interface ControlServerOptions {
  /** Socket path (`node.control`). */
  path: string;
  registry: ControlRegistry;
  log: Logger;
  /** Simultaneous client connections; more are answered `ERR_CONTROL_BUSY` and closed. Default 64. */
  maxConnections?: number;
}

type Probe = 'absent' | 'stale' | 'live';

/**
 * Serves the control registry on a Unix socket. `start()` creates the
 * socket's directory if needed, replaces a stale socket file left by a dead
 * node (but refuses, `ERR_CONTROL_IN_USE`, when something still answers on
 * it), listens and sets the mode to 0660. `stop()` closes every client and
 * removes the socket file. Both are idempotent.
 */
export class ControlServer {
  readonly path: string;
  #registry: ControlRegistry;
  #log: Logger;
  #maxConnections: number;
  #server: Server | undefined;
  #starting: Promise<void> | undefined;
  #connections = new Set<ControlConnection>();
  /** Device and inode of the socket file we created, so stop() never removes somebody else's. */
  #file: { dev: number; ino: number } | undefined;

  constructor(options: ControlServerOptions) {
    this.path = options.path;
    this.#registry = options.registry;
    this.#log = options.log;
    this.#maxConnections = options.maxConnections ?? 64;
  }

  get listening(): boolean {
    return this.#server !== undefined;
  }

  get connections(): number {
    return this.#connections.size;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async stop(): Promise<void> {
    if (this.#starting) {
      try {
        await this.#starting;
      } catch (err) {
        this.#log.debug({ err: errorMessage(err) }, 'control server stopped after a failed start');
      }
    }
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const connection of this.#connections) connection.close();
    this.#connections.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#removeSocketFile();
    this.#log.info({ path: this.path }, 'control socket closed');
  }

  async #start(): Promise<void> {
    const path = this.path;
    checkSocketPath(path);
    try {
      await mkdir(dirname(path), { recursive: true, mode: SOCKET_DIR_MODE });
    } catch (err) {
      throw new ControlError('ERR_CONTROL_LISTEN', `cannot create the directory of the control socket ${path}: ${errorMessage(err)}`, { cause: err });
    }
    await this.#clearStaleSocket();
    // Half-open: a client may send its requests and shut down its side (socat, `nc -N`) and still get the answers.
    const server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    await listen(server, path);
    // Until the chmod the socket has the umask's mode: with the usual 022 only the owner may connect (write), so the
    // short window never lets anyone in who should not be.
    try {
      await chmod(path, CONTROL_SOCKET_MODE);
      const stats = await lstat(path);
      this.#file = { dev: stats.dev, ino: stats.ino };
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw new ControlError('ERR_CONTROL_LISTEN', `cannot set the mode of the control socket ${path}: ${errorMessage(err)}`, { cause: err });
    }
    server.on('error', (err) => this.#log.error({ err: err.message, path }, 'control socket error'));
    this.#server = server;
    this.#log.info({ path, mode: CONTROL_SOCKET_MODE.toString(8) }, 'control socket listening');
  }

  /** A socket file is there: take it over only if nothing answers on it. */
  async #clearStaleSocket(): Promise<void> {
    const path = this.path;
    let isSocket: boolean;
    try {
      isSocket = (await lstat(path)).isSocket();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new ControlError('ERR_CONTROL_LISTEN', `cannot check the control socket ${path}: ${errorMessage(err)}`, { cause: err });
    }
    if (!isSocket) {
      throw new ControlError('ERR_CONTROL_NOT_SOCKET', `${path} exists and is not a socket; refusing to replace it (remove it, or set node.control to another path)`);
    }
    const probe = await probeSocket(path);
    if (probe === 'live') throw new ControlError('ERR_CONTROL_IN_USE', `another partyline node is serving ${path}`);
    if (probe === 'absent') return;
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ControlError('ERR_CONTROL_LISTEN', `cannot remove the stale control socket ${path}: ${errorMessage(err)}`, { cause: err });
      }
    }
    this.#log.warn({ path }, 'removed a stale control socket left by a node that did not stop cleanly');
  }

  #accept(socket: Socket): void {
    if (!this.#server) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= this.#maxConnections) {
      this.#log.warn({ connections: this.#connections.size }, 'control connection refused: limit reached');
      socket.on('error', (err) => this.#log.debug({ err: err.message }, 'refused control connection error'));
      const message = `too many control connections (${this.#maxConnections}); try again`;
      socket.end(encodeFailure(null, { code: 'ERR_CONTROL_BUSY', message }), () => socket.destroy());
      return;
    }
    const connection = new ControlConnection({ socket, registry: this.#registry, log: this.#log });
    this.#connections.add(connection);
    socket.once('close', () => this.#connections.delete(connection));
  }

  /** Remove the socket file if it is still the one we created (the runtime may have removed it already). */
  async #removeSocketFile(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    if (!file) return;
    try {
      const stats = await lstat(this.path);
      if (stats.dev === file.dev && stats.ino === file.ino) await unlink(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#log.warn({ path: this.path, err: errorMessage(err) }, 'cannot remove the control socket');
      }
    }
  }
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE') {
        reject(new ControlError('ERR_CONTROL_IN_USE', `another partyline node is serving ${path}`, { cause: err }));
      } else {
        reject(new ControlError('ERR_CONTROL_LISTEN', `cannot create the control socket ${path}: ${err.message}`, { cause: err }));
      }
    };
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Does anything answer on the socket file at `path`? */
function probeSocket(path: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    const done = (outcome: Probe | Error): void => {
      clearTimeout(timer);
      socket.removeAllListeners('connect');
      socket.removeAllListeners('error');
      socket.on('error', () => {
        /* the probe is over; a late reset of this throw-away socket is expected */
      });
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    // A hung node still holds the socket: the kernel accepts for it, or keeps us waiting.
    const timer = setTimeout(() => done('live'), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done('live'));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('stale');
      else if (err.code === 'ENOENT') done('absent');
      else if (err.code === 'EAGAIN') done('live'); // backlog full: busy, not dead
      else done(new ControlError('ERR_CONTROL_LISTEN', `cannot check whether ${path} is in use: ${err.message}`, { cause: err }));
    });
  });
}
