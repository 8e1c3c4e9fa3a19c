import type { Credential } from '../../crypto/credential.js';
import { PartylineError, errorMessage } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { normalizeHostPort } from '../../util/host-port.js';
import { RouteDeliver, RouteForward, RouteSend } from './messages.js';
import type { RouteEndpoint } from './messages.js';

export interface RouterOptions {
  log: Logger;
  /** This supernode's advertised `host:port` (undefined: it cannot route). */
  self: () => string | undefined;
  /** The link of a node attached here, by device id. */
  attached: (deviceId: string) => { link: Link; user: string } | undefined;
  /** Send a request to another supernode by its address (IndexService.requestSupernode). */
  toSupernode: (address: string, body: { from: RouteEndpoint; to: RouteEndpoint; sealed: string }) => Promise<{ delivered: true }>;
  /** route.send per attached node per second (default 50; a call's signalling needs a handful). */
  sendsPerSecond?: number;
  now?: () => number;
}

export class RouteError extends PartylineError {
  constructor(code: `ERR_ROUTE_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * A supernode's part in routing sealed messages (messages.ts): takes
 * `route.send` from its attached nodes and `route.forward` from other
 * supernodes, and delivers to its attached nodes with `route.deliver`.
 * It never opens what it carries.
 */
export class Router {
  #options: RouterOptions;
  #log: Logger;
  #now: () => number;
  #buckets = new WeakMap<Link, { tokens: number; at: number }>();
  #credentials = new WeakMap<Link, { credential: Credential }>();
  #stats = { sent: 0, forwarded: 0, delivered: 0, failed: 0 };

  constructor(options: RouterOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  stats(): { sent: number; forwarded: number; delivered: number; failed: number } {
    return { ...this.#stats };
  }

  /** Serve route.send on the link of a node attached with `credential` (again on renewal: only updates it). */
  serveNode(link: Link, credential: Credential): void {
    const state = { credential };
    const known = this.#credentials.get(link);
    if (known) {
      known.credential = credential;
      return;
    }
    this.#credentials.set(link, state);
    link.handle(RouteSend, async (body) => {
      this.#take(link);
      const self = this.#self();
      const from: RouteEndpoint = { user: normaliseUserName(state.credential.user), deviceId: state.credential.deviceId, supernode: self };
      this.#stats.sent++;
      return this.route(from, body.to, body.sealed);
    });
  }

  /** Serve route.forward on a link from another supernode (an index link). */
  serveSupernode(link: Link): void {
    link.handle(RouteForward, async (body) => {
      this.#take(link, 20);
      if (!this.#isSelf(body.to.supernode)) throw new RouteError('ERR_ROUTE_NOT_HERE', `route.forward: ${body.to.supernode} is not this supernode`);
      this.#stats.forwarded++;
      return this.#deliver(body.from, body.to, body.sealed);
    });
  }

  /** Deliver here or forward to the recipient's supernode. */
  async route(from: RouteEndpoint, to: RouteEndpoint, sealed: string): Promise<{ delivered: true }> {
    if (this.#isSelf(to.supernode)) return this.#deliver(from, to, sealed);
    try {
      return await this.#options.toSupernode(to.supernode, { from, to, sealed });
    } catch (err) {
      this.#stats.failed++;
      // The far supernode's own answer (not here, busy) passes through; anything else means we could not reach it.
      if (err instanceof PartylineError && err.code.startsWith('ERR_ROUTE_')) throw err;
      // Why (refused, timed out, unknown) stays in this supernode's log: passed back, it would make
      // route.send a port scanner of whatever the supernode can reach.
      this.#log.debug({ to: to.supernode, code: (err as PartylineError).code, err: errorMessage(err) }, 'cannot forward to supernode');
      throw new RouteError('ERR_ROUTE_UNREACHABLE', `cannot reach ${to.user}/${to.deviceId} through supernode ${to.supernode}`);
    }
  }

  async #deliver(from: RouteEndpoint, to: RouteEndpoint, sealed: string): Promise<{ delivered: true }> {
    const node = this.#options.attached(to.deviceId);
    if (!node || node.link.closed || normaliseUserName(node.user) !== normaliseUserName(to.user)) {
      this.#stats.failed++;
      throw new RouteError('ERR_ROUTE_NOT_HERE', `${to.user}/${to.deviceId} is not attached to this supernode`);
    }
    try {
      await node.link.request(RouteDeliver, { from, sealed }, { timeoutMs: 5_000 });
    } catch (err) {
      this.#stats.failed++;
      this.#log.debug({ to: `${to.user}/${to.deviceId}`, err: errorMessage(err) }, 'delivery to an attached node failed');
      throw new RouteError('ERR_ROUTE_NOT_DELIVERED', `${to.user}/${to.deviceId} did not take the message: ${errorMessage(err)}`, { cause: err });
    }
    this.#stats.delivered++;
    return { delivered: true };
  }

  #self(): string {
    const self = this.#options.self();
    if (!self) throw new RouteError('ERR_ROUTE_NO_ADDRESS', 'this supernode has no advertised address: it cannot route');
    return self;
  }

  #isSelf(address: string): boolean {
    const self = this.#options.self();
    if (!self) return false;
    try {
      return normalizeHostPort(address) === normalizeHostPort(self);
    } catch {
      return false;
    }
  }

  /** Token bucket per link, refilled at `sendsPerSecond` (burst of the same size). */
  #take(link: Link, factor = 1): void {
    const rate = (this.#options.sendsPerSecond ?? 50) * factor;
    const now = this.#now();
    const bucket = this.#buckets.get(link) ?? { tokens: rate, at: now };
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.#buckets.set(link, bucket);
      throw new RouteError('ERR_ROUTE_BUSY', `more than ${rate} routed messages per second`);
    }
    bucket.tokens -= 1;
    this.#buckets.set(link, bucket);
  }
}
