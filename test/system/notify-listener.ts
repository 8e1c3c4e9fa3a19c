import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * systemd's side of sd_notify for tests: a Unix datagram socket bound at a
 * path (what the manager passes as $NOTIFY_SOCKET), recording each
 * notification with the time it arrived.
 */
export interface Notification {
  at: number;
  fields: Record<string, string>;
}

interface UnixDgramSocket {
  bind(path: string): void;
  close(): void;
  on(event: 'message', listener: (buf: Buffer) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
}

export class NotifyListener {
  readonly path: string;
  readonly received: Notification[] = [];
  readonly #socket: UnixDgramSocket;
  readonly #dir: string;
  #waiters: Array<{ match: (n: Notification) => boolean; resolve: (n: Notification) => void }> = [];

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = join(dir, 'notify');
    const unix = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
    this.#socket = unix.createSocket('unix_dgram');
    this.#socket.on('error', (err) => {
      throw err;
    });
    this.#socket.on('message', (buf) => {
      const fields: Record<string, string> = {};
      for (const line of buf.toString('utf8').split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
      }
      const n = { at: Date.now(), fields };
      this.received.push(n);
      for (const w of [...this.#waiters]) {
        if (w.match(n)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(n);
        }
      }
    });
    this.#socket.bind(this.path);
  }

  /** Bound in a new folder under `parent` (default: the temp folder). */
  static async create(parent = tmpdir()): Promise<NotifyListener> {
    return new NotifyListener(await mkdtemp(join(parent, 'pl-notify-')));
  }

  /** Notifications carrying `key` (e.g. 'WATCHDOG'), in order. */
  with(key: string): Notification[] {
    return this.received.filter((n) => key in n.fields);
  }

  waitFor(match: (n: Notification) => boolean, timeoutMs = 10_000): Promise<Notification> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching notification within ${timeoutMs} ms; got ${JSON.stringify(this.received.slice(-5).map((n) => n.fields))}`)), timeoutMs);
      this.#waiters.push({ match, resolve: (n) => { clearTimeout(timer); resolve(n); } });
    });
  }

  async close(): Promise<void> {
    this.#socket.close();
    await rm(this.#dir, { recursive: true, force: true });
  }
}
