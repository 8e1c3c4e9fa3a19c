import type { Credential } from '../../crypto/credential.js';
import { errorMessage } from '../../errors.js';
import type { PartylineError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { IndexError, RecordError } from './errors.js';
import type { IndexNode } from './index-node.js';
import { MAX_RECORDS_PER_MESSAGE } from './messages.js';
import { NodeIndexPublish, NodeIndexSearch, ONLINE_WINDOW_MS } from './node-messages.js';
import type { DirectoryAnswer, NodeIndexPublishResponse, NodeIndexSearchResponse } from './node-messages.js';
import { parseLocationRecord, recordExpires, sameRecord } from './record.js';
import type { LocationRecord } from './record.js';
import type { ContactInfo } from './routing-table.js';
import type { PresenceState } from '../presence/state.js';

/** The newest presence known for a device: its state and when it was said (epoch ms). */
export interface KnownPresence {
  state: PresenceState;
  issued: number;
}

/**
 * What the node handlers need of the index: the IndexService's own
 * operations (publish, search) and the core's record checks.
 */
export interface NodeIndexBackend {
  readonly running: boolean;
  readonly node: Pick<IndexNode, 'validate' | 'store'>;
  publish(record: unknown): Promise<{ replicas: number }>;
  search(user: string, options?: { signal?: AbortSignal }): Promise<{ found: boolean; records: LocationRecord[]; holders?: ContactInfo[] }>;
}

export interface NodeIndexHandlersOptions {
  index: NodeIndexBackend;
  log: Logger;
  now: () => number;
  /** An attached node may publish at most once in this interval (default 5 s). */
  minPublishIntervalMs?: number;
  /** Searches one attached node may have running at once (default 4). */
  maxSearchesPerNode?: number;
  onlineWindowMs?: number;
  fallback?: (user: string) => Promise<DirectoryAnswer | undefined>;
  /**
   * The presence of a user's devices by device id, from the supernodes
   * responsible for the user (`holders`: those whose answers held the
   * records). Without it, or for a device it does not know, a device
   * counts as online while its record was signed within the online window.
   */
  presence?: (user: string, holders: readonly ContactInfo[]) => Promise<ReadonlyMap<string, KnownPresence>>;
}

interface NodeLinkState {
  credential: Credential;
  lastPublishAt: number;
  /** The last record this link published. */
  last: LocationRecord | undefined;
  searches: number;
}

/**
 * index.publish and index.search (node-messages.ts) on the links of
 * attached nodes: a node publishes only its own record (the user and device
 * of the credential it attached with), not more often than
 * `minPublishIntervalMs`, never an older one than it published before;
 * searches fall back to the login server's directory when the index has
 * nothing.
 */
export class NodeIndexHandlers {
  #options: NodeIndexHandlersOptions;
  #index: NodeIndexBackend;
  #links = new Map<Link, NodeLinkState>();

  constructor(options: NodeIndexHandlersOptions) {
    this.#options = options;
    this.#index = options.index;
  }

  /** Node links served. */
  get size(): number {
    return this.#links.size;
  }

  /** Forget the links (the service stopped; their handlers answer `ERR_INDEX_STOPPED`). */
  clear(): void {
    this.#links.clear();
  }

  serve(link: Link, credential: Credential): void {
    const known = this.#links.get(link);
    if (known) {
      known.credential = credential;
      return;
    }
    const state: NodeLinkState = { credential, lastPublishAt: -Infinity, last: undefined, searches: 0 };
    this.#links.set(link, state);
    link.once('close', () => this.#links.delete(link));
    link.handle(NodeIndexPublish, (body) => this.#publish(state, body.record));
    link.handle(NodeIndexSearch, async (body) => {
      this.#assertRunning();
      const max = this.#options.maxSearchesPerNode ?? 4;
      if (state.searches >= max) throw new IndexError('ERR_INDEX_BUSY', `index.search: at most ${max} searches at once per node`);
      state.searches++;
      try {
        return await this.answerSearch(body.user);
      } finally {
        state.searches--;
      }
    });
  }

  async #publish(state: NodeLinkState, raw: unknown): Promise<NodeIndexPublishResponse> {
    this.#assertRunning();
    const now = this.#options.now();
    const { credential } = state;
    const parsed = parseLocationRecord(raw);
    if (parsed.user !== normaliseUserName(credential.user) || parsed.device.deviceId !== credential.deviceId) {
      throw new RecordError('ERR_RECORD_OWNER', `index.publish: record of ${parsed.user}/${parsed.device.deviceId} on a link attached as ${credential.user}/${credential.deviceId}`);
    }
    // Signature before the rate limit: a forged record is told so, whenever it comes.
    const record = this.#index.node.validate(parsed, now);
    const last = state.last;
    if (last && record.seq <= last.seq && !sameRecord(record, last)) {
      throw new RecordError('ERR_RECORD_REPLAY', `index.publish: seq ${record.seq} is not above ${last.seq}, already published on this link`);
    }
    const minMs = this.#options.minPublishIntervalMs ?? 5_000;
    if (now - state.lastPublishAt < minMs) throw new IndexError('ERR_INDEX_BUSY', `index.publish: at most one record every ${minMs} ms`);
    state.lastPublishAt = now;
    const result = await this.#index.publish(record);
    state.last = record;
    this.#options.log.debug({ user: record.user, deviceId: record.device.deviceId, replicas: result.replicas }, 'node record published');
    return { user: record.user, deviceId: record.device.deviceId, seq: record.seq, replicas: result.replicas, expires: recordExpires(record) };
  }

  async answerSearch(user: string, options: { signal?: AbortSignal } = {}): Promise<NodeIndexSearchResponse> {
    const name = normaliseUserName(user);
    const result = await this.#index.search(name, options);
    if (result.found) {
      const records = result.records.slice(-MAX_RECORDS_PER_MESSAGE);
      const known = await this.#presence(name, result.holders ?? []);
      const now = this.#options.now();
      const window = this.#options.onlineWindowMs ?? ONLINE_WINDOW_MS;
      const devices = records.map((r) => {
        // The newer of the two signed statements wins: a presence update said after the record
        // (logged out, went offline, in a call), else the record itself (fresh = online, and then
        // a live online or in-call update says which).
        const p = known.get(r.device.deviceId);
        const live = p !== undefined && p.state !== 'offline' && p.issued >= now - window;
        const presence: PresenceState = p && p.issued >= r.issued
          ? (live ? p.state : 'offline')
          : r.issued >= now - window ? (live ? p.state : 'online') : 'offline';
        const lastSeen = Math.max(r.issued, p?.issued ?? 0);
        return { deviceId: r.device.deviceId, supernode: r.device.supernode, addresses: [...r.device.addresses], since: r.device.since, presence, lastSeen };
      });
      return {
        found: true,
        user: name,
        online: devices.some((d) => d.presence !== 'offline'),
        devices,
        records,
        lastSeen: Math.max(...devices.map((d) => d.lastSeen)),
        source: 'index',
      };
    }
    const directory = await this.#directory(name);
    if (directory) {
      return {
        found: directory.exists,
        user: name,
        online: false,
        devices: [],
        records: [],
        lastSeen: directory.lastLogin,
        ...(directory.lastSupernode !== null ? { lastSupernode: directory.lastSupernode } : {}),
        source: 'login-server',
      };
    }
    return { found: false, user: name, online: false, devices: [], records: [], lastSeen: null, source: 'index' };
  }

  /** What the presence hook knows, or nothing (no hook, or it failed: logged). */
  async #presence(user: string, holders: readonly ContactInfo[]): Promise<ReadonlyMap<string, KnownPresence>> {
    const hook = this.#options.presence;
    if (!hook) return new Map();
    try {
      return await hook(user, holders);
    } catch (err) {
      this.#options.log.debug({ user, err: errorMessage(err) }, 'presence for search unavailable');
      return new Map();
    }
  }

  /** The login server's answer, or undefined (no fallback, nothing known, or it failed: logged). */
  async #directory(user: string): Promise<DirectoryAnswer | undefined> {
    const fallback = this.#options.fallback;
    if (!fallback) return undefined;
    try {
      return await fallback(user);
    } catch (err) {
      this.#options.log.warn({ user, code: (err as PartylineError).code, err: errorMessage(err) }, 'login server fallback failed');
      return undefined;
    }
  }

  #assertRunning(): void {
    if (!this.#index.running) throw new IndexError('ERR_INDEX_STOPPED', 'the index service of this supernode is stopped');
  }
}
