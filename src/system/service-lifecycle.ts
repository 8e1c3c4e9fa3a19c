/**
 * A daemon's life under systemd: readiness when the service is really up,
 * watchdog pings from the event loop, and the stop sequence.
 *
 * - Readiness: `whenReady(probe)` asks the probe every `pollMs` and sends
 *   `READY=1` once it says ready (before that, `STATUS=` follows what the
 *   service is waiting for). `Type=notify` units start their dependants, and
 *   `systemctl start` returns, only then.
 * - Watchdog: with `$WATCHDOG_USEC` set (by `WatchdogSec=`; `$WATCHDOG_PID`,
 *   when set, must be this process) a timer on the main event loop sends
 *   `WATCHDOG=1` every half period, as sd_watchdog_enabled(3) advises. A
 *   stalled loop sends nothing, systemd kills the process (SIGABRT) and
 *   `Restart=on-failure` starts it again.
 * - Stop: `stopping()` sends `STOPPING=1`; `close()` ends both timers.
 *
 * Timers are unref'd: they never keep a stopped process alive.
 */
import type { Logger } from './logging.js';
import type { ServiceNotifier } from './sd-notify.js';

/**
 * A stop (SIGTERM) that has not finished by then ends the process; systemd's
 * TimeoutStopSec=30s in systemd/partyline*.service would SIGKILL it a little later.
 */
export const STOP_DEADLINE_MS = 25_000;
/** After a clean stop the process should exit by itself; a handle still open keeps it no longer than this. */
export const EXIT_GRACE_MS = 3_000;

export interface Readiness {
  ready: boolean;
  /** One line for `systemctl status`. */
  status: string;
}

export type ReadinessProbe = () => Readiness;

/** The watchdog ping period in ms (half of WatchdogSec), or undefined when systemd expects none from this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usecText = env.WATCHDOG_USEC;
  if (!usecText || !/^\d+$/.test(usecText)) return undefined;
  const usec = Number(usecText);
  if (!(usec > 0)) return undefined;
  const pidText = env.WATCHDOG_PID;
  if (pidText && Number(pidText) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

/**
 * What a Partyline node counts as "up" (the fields of `ctl status` it
 * needs): a supernode once it serves; a phone once it is attached with a
 * credential; a phone without an account once it waits for provisioning
 * (there is nothing to log in to — provisioning is how it goes on).
 */
export interface NodeReadinessView {
  role: string;
  loggedIn: boolean;
  user: string | null;
  port: number;
  supernode: { address: string } | null;
  overlay: { state: string; lastError: string | null };
}

export function nodeReadiness(view: NodeReadinessView): Readiness {
  if (view.role === 'supernode') return { ready: true, status: `supernode serving on port ${view.port}` };
  if (view.overlay.state === 'awaiting-provisioning') return { ready: true, status: 'waiting for provisioning (no account configured)' };
  if (view.loggedIn) return { ready: true, status: `logged in as ${view.user ?? '?'} via supernode ${view.supernode?.address ?? '?'}` };
  return { ready: false, status: `logging in: ${view.overlay.state}${view.overlay.lastError ? ` (${view.overlay.lastError})` : ''}` };
}

export interface ServiceLifecycleOptions {
  notifier: ServiceNotifier;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  pid?: number;
  /** How often the readiness probe is asked (default 250 ms). */
  pollMs?: number;
}

export class ServiceLifecycle {
  readonly #notifier: ServiceNotifier;
  readonly #log: Logger;
  readonly #watchdogMs: number | undefined;
  readonly #pollMs: number;
  #watchdogTimer: NodeJS.Timeout | undefined;
  #readyTimer: NodeJS.Timeout | undefined;
  #ready = false;
  #closed = false;
  #lastStatus = '';
  #lastPing = 0;

  constructor(options: ServiceLifecycleOptions) {
    this.#notifier = options.notifier;
    this.#log = options.log;
    this.#watchdogMs = this.#notifier.enabled ? watchdogIntervalMs(options.env ?? process.env, options.pid ?? process.pid) : undefined;
    this.#pollMs = options.pollMs ?? 250;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Ping period in ms, undefined without a watchdog. */
  get watchdogMs(): number | undefined {
    return this.#watchdogMs;
  }

  /** Start the watchdog pings (at once, then every half period). */
  startWatchdog(): void {
    if (this.#watchdogMs === undefined || this.#watchdogTimer || this.#closed) return;
    const period = this.#watchdogMs;
    this.#log.info({ periodMs: period }, 'watchdog pings started');
    this.#lastPing = Date.now();
    this.#ping();
    this.#watchdogTimer = setInterval(() => {
      const now = Date.now();
      // A tick far behind its time means the loop was blocked; systemd may already have given up.
      if (now - this.#lastPing > period * 1.5) this.#log.warn({ lateMs: now - this.#lastPing - period, periodMs: period }, 'event loop stalled: watchdog ping late');
      this.#lastPing = now;
      this.#ping();
    }, period);
    this.#watchdogTimer.unref();
  }

  /** Send READY=1 as soon as the probe says the service is up; STATUS= meanwhile. */
  whenReady(probe: ReadinessProbe): void {
    if (this.#ready || this.#readyTimer || this.#closed) return;
    const check = (): void => {
      let readiness: Readiness;
      try {
        readiness = probe();
      } catch (err) {
        readiness = { ready: false, status: `starting: ${(err as Error).message}` };
      }
      if (readiness.ready) {
        clearInterval(this.#readyTimer);
        this.#readyTimer = undefined;
        this.#ready = true;
        this.#lastStatus = readiness.status;
        this.#log.info({ status: readiness.status }, 'service ready');
        void this.#notifier.ready(readiness.status);
      } else if (readiness.status !== this.#lastStatus) {
        this.#lastStatus = readiness.status;
        void this.#notifier.status(readiness.status);
      }
    };
    this.#readyTimer = setInterval(check, this.#pollMs);
    this.#readyTimer.unref();
    check();
  }

  /** Shutdown has begun: no more readiness, STOPPING=1 (watchdog pings go on until close). */
  async stopping(status = 'stopping'): Promise<void> {
    clearInterval(this.#readyTimer);
    this.#readyTimer = undefined;
    await this.#notifier.stopping(status);
  }

  /** End every timer. Closing twice is harmless. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#readyTimer);
    clearInterval(this.#watchdogTimer);
    this.#readyTimer = undefined;
    this.#watchdogTimer = undefined;
  }

  #ping(): void {
    // Never rejects: the notifier logs its own failures.
    void this.#notifier.watchdog();
  }
}
