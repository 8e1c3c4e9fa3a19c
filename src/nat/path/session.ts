import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../system/logging.js';
import { errorMessage } from '../../errors.js';
import { StunMethod } from '../stun/constants.js';
import { shortTermKey } from '../stun/credentials.js';
import { createTransactionId, decodeStunMessage, encodeStunMessage, getAttribute, isStunPacket, verifyIntegrity } from '../stun/message.js';
import type { StunAttribute } from '../stun/attributes.js';
import type { TransportAddress } from '../stun/address.js';
import { canonicalIp, formatTransportAddress } from '../stun/address.js';

/**
 * One media path negotiation between two devices (DESIGN.md "Calls" →
 * media path): ICE's ideas (RFC 8445) cut to what Partyline needs.
 *
 * - **Paths**: `direct-udp` (to a host or server-reflexive address of the
 *   peer, or a peer-reflexive one learnt from its checks), `relay-udp` and
 *   `relay-tcp` (through a supernode relay leg; src/relay/). A path is a
 *   transport that can send a datagram; everything that arrives on it is
 *   fed back through `receiveDirect()` / `receiveRelay()`.
 * - **Checks**: STUN Binding requests with short-term credentials — USERNAME
 *   `remoteUfrag:localUfrag`, MESSAGE-INTEGRITY keyed with the remote
 *   password, FINGERPRINT — sent on every path at once, retransmitted on a
 *   fast schedule. Ufrags and passwords travel end to end sealed (the offer
 *   and answer), so only the two devices can make or answer a check. Both
 *   sides check at the same time: each outgoing check opens the sender's
 *   NAT towards the peer, which is the hole punching. A check that arrives
 *   from an address with no path yet makes a peer-reflexive path and gets a
 *   triggered check back.
 * - **Choice**: `direct-udp` before `relay-udp` before `relay-tcp`. A direct
 *   path is taken as soon as it is validated; a relay is taken once every
 *   direct check has failed or `relayGraceMs` has passed without one, and
 *   the session keeps checking direct paths and moves up if one validates.
 *   The controlling side (the caller) nominates with USE-CANDIDATE; the
 *   controlled side sends on what was nominated.
 * - **Liveness**: every validated path is re-checked each `consentMs`
 *   (keeps NAT bindings and relay legs open, too); a selected path with no
 *   answer for `deadAfterMs` is dropped and the best remaining one takes
 *   over (`switched` event).
 *
 * Data (anything that is not STUN) is handed to the `data` listener with
 * the path it came on; `send()` uses the selected path.
 */

export type PathKind = 'direct-udp' | 'relay-udp' | 'relay-tcp';
export const PATH_PREFERENCE: Readonly<Record<PathKind, number>> = { 'direct-udp': 3, 'relay-udp': 2, 'relay-tcp': 1 };

export type PathOrigin = 'host' | 'srflx' | 'prflx' | 'relay';

export interface PathTransport {
  kind: PathKind;
  origin: PathOrigin;
  /** What the report shows: the remote address, or the relay's. */
  label: string;
  send(packet: Buffer): void;
}

export type PathStateName = 'checking' | 'validated' | 'failed' | 'dead';

export interface PathState {
  readonly id: number;
  readonly transport: PathTransport;
  state: PathStateName;
  /** Check round trip, ms (last answered check). */
  rttMs: number | null;
  lastAnswer: number;
  checksSent: number;
  /** The direct peer address, for direct paths. */
  remote?: TransportAddress;
}

export interface SessionTimings {
  /** Give up on a path whose checks found no answer after this long (default 2500 ms). */
  checkTimeoutMs: number;
  /** Take a validated relay when no direct path validated this long after start (default 600 ms). */
  relayGraceMs: number;
  /** Re-check validated paths this often (default 500 ms); the selected one every 250 ms. */
  consentMs: number;
  /** The selected path without an answer for this long is dead (default 1500 ms: six checks in a row lost); a standby path after 4 × consentMs. */
  deadAfterMs: number;
  /** Re-check failed and dead paths this often, to move back up when one recovers (default 5000 ms). */
  recheckMs: number;
}

export const DEFAULT_TIMINGS: SessionTimings = { checkTimeoutMs: 2500, relayGraceMs: 600, consentMs: 500, deadAfterMs: 1500, recheckMs: 5000 };

/** When checks go out on a path that has not answered yet: fast first, then every 200 ms. */
const CHECK_SCHEDULE_MS = [0, 50, 100, 200, 350, 500, 700, 900, 1100, 1300, 1500, 1700, 1900, 2100, 2300];

export interface SessionOptions {
  localUfrag: string;
  localPwd: string;
  remoteUfrag: string;
  remotePwd: string;
  controlling: boolean;
  log: Logger;
  timings?: Partial<SessionTimings>;
  now?: () => number;
}

interface SessionEvents {
  selected: [PathState, PathState | undefined];
  data: [Buffer, PathState];
  failed: [Error];
}

export function randomCredential(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export class ConnectivitySession extends EventEmitter<SessionEvents> {
  readonly options: SessionOptions;
  readonly timings: SessionTimings;
  #log: Logger;
  #now: () => number;
  #paths: PathState[] = [];
  #byAddress = new Map<string, PathState>();
  #pending = new Map<string, { path: PathState; sentAt: number }>();
  #selected: PathState | undefined;
  #nominated: PathState | undefined;
  #startedAt = 0;
  #timers: NodeJS.Timeout[] = [];
  #tick: NodeJS.Timeout | undefined;
  #closed = false;
  #failedReported = false;
  /** The selected path that died, until another takes over (for the switch record). */
  #lost: PathState | undefined;
  #lastRecheck = 0;
  #nextId = 1;
  #remoteKey: Buffer;
  #localKey: Buffer;
  #tiebreaker = randomBytes(8).readBigUInt64BE();
  readonly switches: Array<{ from: PathKind; to: PathKind; atMs: number; reason: string }> = [];
  /** ms from start() to the first selection. */
  setupMs: number | null = null;

  constructor(options: SessionOptions) {
    super();
    this.options = options;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.#log = options.log;
    this.#now = options.now ?? (() => performance.now());
    this.#remoteKey = shortTermKey(options.remotePwd);
    this.#localKey = shortTermKey(options.localPwd);
  }

  get selected(): PathState | undefined {
    return this.#selected;
  }

  get closed(): boolean {
    return this.#closed;
  }

  paths(): readonly PathState[] {
    return this.#paths;
  }

  /** Add a path; checks start on it at once when the session runs. */
  addPath(transport: PathTransport, remote?: TransportAddress): PathState {
    if (remote) {
      const existing = this.#byAddress.get(addressKey(remote));
      if (existing) return existing;
    }
    const path: PathState = { id: this.#nextId++, transport, state: 'checking', rttMs: null, lastAnswer: 0, checksSent: 0, ...(remote ? { remote } : {}) };
    this.#paths.push(path);
    if (remote) this.#byAddress.set(addressKey(remote), path);
    if (this.#startedAt > 0) this.#schedule(path);
    return path;
  }

  /** The direct path to this address, if any. */
  pathTo(remote: TransportAddress): PathState | undefined {
    return this.#byAddress.get(addressKey(remote));
  }

  start(): void {
    if (this.#startedAt > 0) return;
    this.#startedAt = this.#now();
    for (const path of this.#paths) this.#schedule(path);
    this.#tick = setInterval(() => this.#maintain(), Math.min(250, this.timings.consentMs / 2));
    this.#tick.unref();
  }

  /** Send data on the selected path. False when there is none. */
  send(data: Buffer): boolean {
    const path = this.#selected;
    if (!path || this.#closed) return false;
    return this.#transmit(path, data);
  }

  /**
   * Mark a path unusable now (its relay leg closed, its socket went away):
   * the next best validated path takes over at once.
   */
  pathDown(path: PathState, reason: string): void {
    if (this.#closed || path.state === 'dead' || path.state === 'failed') return;
    path.state = 'dead';
    this.#log.info({ kind: path.transport.kind, path: path.transport.label, reason }, 'media path down');
    if (this.#selected === path) {
      this.#selected = undefined;
      this.#lost = path;
      this.#consider(`${path.transport.kind} path down: ${reason}`);
    }
  }

  /** Send on a path; a transport that throws (a closed relay leg) takes its path down instead of the caller. */
  #transmit(path: PathState, packet: Buffer): boolean {
    try {
      path.transport.send(packet);
      return true;
    } catch (err) {
      this.pathDown(path, errorMessage(err));
      return false;
    }
  }

  /**
   * A datagram from `from` on the node's UDP port that belongs to this
   * session (its STUN USERNAME or transaction, or a known peer address).
   * `makeDirect` builds the transport for a peer-reflexive address.
   */
  receiveDirect(packet: Buffer, from: TransportAddress, makeDirect: (to: TransportAddress) => PathTransport): void {
    let path = this.#byAddress.get(addressKey(from));
    if (!path) {
      // Only an authenticated check may create a path (peer-reflexive), and only a few of them:
      // anything else from a stranger is dropped. (The USERNAME travels in clear; the password does not.)
      if (!isStunPacket(packet) || !this.#isOurRequest(packet) || !safeVerify(packet, this.#localKey)) return;
      if (this.#paths.filter((p) => p.transport.origin === 'prflx').length >= MAX_PRFLX_PATHS) {
        this.#log.debug({ remote: formatTransportAddress(from) }, 'too many peer-reflexive paths: check ignored');
        return;
      }
      path = this.addPath({ ...makeDirect(from), origin: 'prflx' }, from);
      this.#log.debug({ remote: formatTransportAddress(from) }, 'peer-reflexive path');
    }
    this.#receive(packet, path);
  }

  /** A packet that arrived on a relay path. */
  receiveRelay(packet: Buffer, path: PathState): void {
    this.#receive(packet, path);
  }

  /** True when this STUN packet is a check for this session or an answer to one of ours. */
  claims(packet: Buffer): boolean {
    if (packet.length < 20) return false;
    if (this.#pending.has(packet.subarray(8, 20).toString('hex'))) return true;
    return this.#isOurRequest(packet);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tick);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    this.#pending.clear();
  }

  #isOurRequest(packet: Buffer): boolean {
    try {
      const message = decodeStunMessage(packet);
      if (message.class !== 'request' || message.method !== StunMethod.BINDING) return false;
      const username = getAttribute(message, 'username')?.value;
      return username === `${this.options.localUfrag}:${this.options.remoteUfrag}`;
    } catch {
      return false;
    }
  }

  #receive(packet: Buffer, path: PathState): void {
    if (this.#closed) return;
    if (!isStunPacket(packet)) {
      this.emit('data', packet, path);
      return;
    }
    let message;
    try {
      message = decodeStunMessage(packet);
    } catch (err) {
      this.#log.debug({ err: errorMessage(err) }, 'malformed STUN on a media path');
      return;
    }
    if (message.class === 'request') this.#answer(packet, message, path);
    else if (message.class === 'success') this.#answered(packet, message.transactionId, path);
  }

  #answer(packet: Buffer, message: ReturnType<typeof decodeStunMessage>, path: PathState): void {
    const username = getAttribute(message, 'username')?.value;
    if (username !== `${this.options.localUfrag}:${this.options.remoteUfrag}`) return;
    if (!safeVerify(packet, this.#localKey)) {
      this.#log.debug({ path: path.transport.label }, 'check with a bad MESSAGE-INTEGRITY dropped');
      return;
    }
    const mapped: TransportAddress = path.remote ?? { address: '0.0.0.0', port: 0 };
    const response = encodeStunMessage(
      { method: StunMethod.BINDING, class: 'success', transactionId: message.transactionId, attributes: [{ kind: 'xor-mapped-address', value: mapped }] },
      { integrityKey: this.#localKey, fingerprint: true },
    );
    if (!this.#transmit(path, response)) return;
    if (getAttribute(message, 'use-candidate') && !this.options.controlling) {
      this.#nominated = path;
      if (path.state === 'validated' && this.#selected !== path) this.#select(path, 'nominated by the caller');
    }
    // Triggered check: the peer reached us on this path; check it back at once (RFC 8445 §7.3.1.4).
    if (path.state !== 'validated') this.#check(path);
  }

  #answered(packet: Buffer, transactionId: Buffer, via: PathState): void {
    const key = transactionId.toString('hex');
    const pending = this.#pending.get(key);
    // An answer counts only on the path its check went out on: a relay that forwards a check
    // elsewhere and replays the answer must not make its own address look like a working path.
    if (!pending || pending.path !== via) return;
    if (!safeVerify(packet, this.#remoteKey)) {
      this.#log.debug({ path: pending.path.transport.label }, 'check answer with a bad MESSAGE-INTEGRITY dropped');
      return;
    }
    this.#pending.delete(key);
    const { path, sentAt } = pending;
    const now = this.#now();
    path.rttMs = Math.round((now - sentAt) * 100) / 100;
    path.lastAnswer = now;
    if (path.state === 'checking' || path.state === 'failed' || path.state === 'dead') {
      path.state = 'validated';
      this.#log.debug({ kind: path.transport.kind, path: path.transport.label, rttMs: path.rttMs }, 'path validated');
      this.#consider();
    }
  }

  #check(path: PathState, nominate = false): void {
    if (this.#closed) return;
    const transactionId = createTransactionId();
    const attributes: StunAttribute[] = [
      { kind: 'username', value: `${this.options.remoteUfrag}:${this.options.localUfrag}` },
      { kind: 'priority', value: PATH_PREFERENCE[path.transport.kind] << 24 },
      this.options.controlling ? { kind: 'ice-controlling', value: this.#tiebreaker } : { kind: 'ice-controlled', value: this.#tiebreaker },
    ];
    if (nominate) attributes.push({ kind: 'use-candidate' });
    const packet = encodeStunMessage({ method: StunMethod.BINDING, class: 'request', transactionId, attributes }, { integrityKey: this.#remoteKey, fingerprint: true });
    this.#pending.set(transactionId.toString('hex'), { path, sentAt: this.#now() });
    path.checksSent++;
    if (!this.#transmit(path, packet)) return;
    // Forget unanswered transactions after the dead time, so the map stays small.
    const timer = setTimeout(() => this.#pending.delete(transactionId.toString('hex')), this.timings.deadAfterMs + 500);
    timer.unref();
  }

  #schedule(path: PathState): void {
    for (const at of CHECK_SCHEDULE_MS) {
      if (at > this.timings.checkTimeoutMs) break;
      const timer = setTimeout(() => {
        if (path.state === 'checking') this.#check(path);
      }, at);
      timer.unref();
      this.#timers.push(timer);
    }
    const timeout = setTimeout(() => {
      if (path.state !== 'checking') return;
      path.state = 'failed';
      this.#log.debug({ kind: path.transport.kind, path: path.transport.label }, 'path failed: no answer to checks');
      this.#consider();
    }, this.timings.checkTimeoutMs);
    timeout.unref();
    this.#timers.push(timeout);
  }

  /** Periodic: consent checks on validated paths, dead-path detection, the relay grace period. */
  #maintain(): void {
    if (this.#closed) return;
    const now = this.#now();
    const recheck = now - this.#lastRecheck >= this.timings.recheckMs;
    if (recheck) this.#lastRecheck = now;
    for (const path of this.#paths) {
      if (path.state === 'dead' || path.state === 'failed') {
        if (recheck) this.#check(path);
        continue;
      }
      if (path.state !== 'validated') continue;
      const deadAfter = path === this.#selected ? this.timings.deadAfterMs : Math.max(this.timings.deadAfterMs, 4 * this.timings.consentMs);
      if (now - path.lastAnswer > deadAfter) {
        path.state = 'dead';
        this.#log.info({ kind: path.transport.kind, path: path.transport.label }, 'media path died: no answer to consent checks');
        if (this.#selected === path) {
          this.#selected = undefined;
          this.#lost = path;
          this.#consider(`${path.transport.kind} path died`);
        }
        continue;
      }
      if (now - path.lastAnswer >= this.timings.consentMs - 50 || path === this.#selected) {
        this.#check(path, this.options.controlling && path === this.#selected);
      }
    }
    this.#consider();
    if (!this.#selected && !this.#failedReported && this.#paths.length > 0 && this.#paths.every((p) => p.state === 'failed' || p.state === 'dead')) {
      this.#failedReported = true;
      this.emit('failed', new Error('no media path: every check failed'));
    }
  }

  /** Select the best validated path when the rules allow it. */
  #consider(reason = 'better path validated'): void {
    if (this.#closed) return;
    const validated = this.#paths.filter((p) => p.state === 'validated');
    if (validated.length === 0) return;
    const best = validated.reduce((a, b) => (better(b, a) ? b : a));
    const current = this.#selected;
    if (current && !better(best, current)) return;
    if (!this.options.controlling && this.#nominated && this.#nominated.state === 'validated' && current === this.#nominated) return;
    if (best.transport.kind !== 'direct-udp' && !current) {
      const directPending = this.#paths.some((p) => p.transport.kind === 'direct-udp' && p.state === 'checking');
      if (directPending && this.#now() - this.#startedAt < this.timings.relayGraceMs) return;
    }
    this.#select(best, current || this.#lost ? reason : 'first path');
  }

  #select(path: PathState, reason: string): void {
    const previous = this.#selected ?? this.#lost;
    this.#lost = undefined;
    this.#selected = path;
    const at = Math.round(this.#now() - this.#startedAt);
    if (this.setupMs === null) this.setupMs = at;
    if (previous && previous !== path) this.switches.push({ from: previous.transport.kind, to: path.transport.kind, atMs: at, reason });
    this.#log.info({ kind: path.transport.kind, path: path.transport.label, rttMs: path.rttMs, reason }, 'media path selected');
    if (this.options.controlling) this.#check(path, true);
    this.emit('selected', path, previous);
  }
}

function better(a: PathState, b: PathState): boolean {
  const pa = PATH_PREFERENCE[a.transport.kind];
  const pb = PATH_PREFERENCE[b.transport.kind];
  if (pa !== pb) return pa > pb;
  return (a.rttMs ?? Infinity) + 2 < (b.rttMs ?? Infinity);
}

/** Peer-reflexive paths one session keeps at most (a peer has one or two addresses the NAT may show). */
export const MAX_PRFLX_PATHS = 4;

function safeVerify(packet: Buffer, key: Buffer): boolean {
  try {
    return verifyIntegrity(packet, key);
  } catch {
    return false;
  }
}

export function addressKey(address: TransportAddress): string {
  return `${canonicalIp(address.address) ?? address.address}|${address.port}`;
}
