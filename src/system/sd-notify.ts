/**
 * systemd's service notification protocol (sd_notify(3)): newline-separated
 * `KEY=VALUE` assignments in one Unix datagram sent to the socket named by
 * `$NOTIFY_SOCKET`. The unit's `Type=notify` waits for `READY=1`;
 * `WatchdogSec=` expects `WATCHDOG=1` at least that often; `STOPPING=1`
 * says shutdown has begun; `STATUS=` is the line `systemctl status` shows.
 *
 * Node has no Unix datagram sockets, so the datagram goes through the
 * `unix-dgram` native addon (socket, sendto, close — nothing else). It is
 * sent by this very process, so the kernel's SCM_CREDENTIALS name the main
 * PID and the unit keeps the default `NotifyAccess=main` (spawning
 * `systemd-notify` would need `NotifyAccess=all` and races its own exit).
 * One socket per message: nothing stays open between messages, a restarted
 * service manager (which makes the socket anew) is reached at once, and no
 * handle holds the event loop at shutdown.
 *
 * Without `$NOTIFY_SOCKET` (not run by systemd, or not `Type=notify`) every
 * call does nothing. A failure to send is logged, never thrown: telling
 * systemd is never worth crashing the service for.
 */
import { createRequire } from 'node:module';
import { PartylineError, errorMessage } from '../errors.js';
import type { Logger } from './logging.js';

/** Sends one notification datagram to a Unix socket path. */
export interface NotifyTransport {
  send(path: string, datagram: Buffer): Promise<void>;
}

/** What a service tells its manager. Every method is harmless when nobody listens, and never rejects (failures are logged). */
export interface ServiceNotifier {
  /** True when a service manager listens ($NOTIFY_SOCKET set and usable). */
  readonly enabled: boolean;
  /** Start-up is complete: `READY=1` (with a status line). */
  ready(status?: string): Promise<void>;
  /** The human status line (`STATUS=`). */
  status(text: string): Promise<void>;
  /** Shutdown has begun: `STOPPING=1`. */
  stopping(status?: string): Promise<void>;
  /** Still alive: `WATCHDOG=1`. */
  watchdog(): Promise<void>;
}

/** A notification that cannot be sent as asked. */
export class NotifyError extends PartylineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SD_NOTIFY', message, options);
  }
}

/** Keys and values as sd_notify expects them: one `KEY=VALUE` a line. */
export function formatNotification(fields: Readonly<Record<string, string>>): Buffer {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(key)) throw new NotifyError(`sd_notify key ${JSON.stringify(key)}: expected upper-case letters, digits and "_"`);
    // A status line from a log message or an error: one line, no NUL, bounded.
    const clean = value.replace(/[\r\n\0]+/g, ' ').slice(0, 512);
    lines.push(`${key}=${clean}`);
  }
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

/** Where to send, from `$NOTIFY_SOCKET`; undefined when not usable (the reason is logged by the caller). */
export function notifySocketPath(env: NodeJS.ProcessEnv): { path?: string; problem?: string } {
  const value = env.NOTIFY_SOCKET;
  if (!value) return {};
  if (value.startsWith('@')) return { problem: `abstract socket ${JSON.stringify(value)} is not supported (unix-dgram sends to paths only)` };
  if (!value.startsWith('/')) return { problem: `expected an absolute path, got ${JSON.stringify(value)}` };
  if (Buffer.byteLength(value) > 107) return { problem: `path longer than a Unix socket address (107 bytes): ${JSON.stringify(value)}` };
  return { path: value };
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
}
interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

/** The real transport: a fresh unix-dgram socket per message. */
export function unixDgramTransport(): NotifyTransport {
  const unix = createRequire(import.meta.url)('unix-dgram') as UnixDgramModule;
  return {
    send(path, datagram) {
      return new Promise((resolve, reject) => {
        let socket: UnixDgramSocket;
        try {
          socket = unix.createSocket('unix_dgram');
        } catch (err) {
          reject(new NotifyError(`cannot open a Unix datagram socket: ${errorMessage(err)}`, { cause: err }));
          return;
        }
        socket.on('error', (err) => reject(new NotifyError(`sending to ${path}: ${errorMessage(err)}`, { cause: err })));
        socket.send(datagram, 0, datagram.length, path, (err) => {
          socket.close();
          if (err) reject(new NotifyError(`sending to ${path}: ${errorMessage(err)}`, { cause: err }));
          else resolve();
        });
      });
    },
  };
}

export interface SdNotifierOptions {
  env?: NodeJS.ProcessEnv;
  log: Logger;
  /** Default: unix-dgram, loaded only when $NOTIFY_SOCKET is set. */
  transport?: NotifyTransport;
}

/** sd_notify from this process to the socket in `$NOTIFY_SOCKET`. */
export function createServiceNotifier(options: SdNotifierOptions): ServiceNotifier {
  const { log } = options;
  const { path, problem } = notifySocketPath(options.env ?? process.env);
  if (problem) log.error({ problem }, 'NOTIFY_SOCKET unusable: systemd is not told of readiness or liveness');
  let transport: NotifyTransport | undefined;
  if (path) {
    try {
      transport = options.transport ?? unixDgramTransport();
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'unix-dgram does not load: systemd is not told of readiness or liveness');
    }
  }
  let failures = 0;
  const send = async (fields: Record<string, string>): Promise<void> => {
    if (!transport || !path) return;
    try {
      await transport.send(path, formatNotification(fields));
      failures = 0;
    } catch (err) {
      // Once per run of failures: a dead socket must not flood the journal every watchdog tick.
      if (failures++ === 0) log.warn({ err: errorMessage(err), fields: Object.keys(fields) }, 'sd_notify failed');
    }
  };
  return {
    enabled: transport !== undefined,
    ready: (status) => send(status === undefined ? { READY: '1' } : { READY: '1', STATUS: status }),
    status: (text) => send({ STATUS: text }),
    stopping: (status) => send(status === undefined ? { STOPPING: '1' } : { STOPPING: '1', STATUS: status }),
    watchdog: () => send({ WATCHDOG: '1' }),
  };
}
