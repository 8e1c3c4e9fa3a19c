import { verifyCredential } from '../../crypto/credential.js';
import type { Credential } from '../../crypto/credential.js';
import type { Identity } from '../../crypto/identity.js';
import { errorMessage } from '../../errors.js';
import type { PartylineError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { dialLink } from '../../link/transport.js';
import type { PeerLink } from '../../link/transport.js';
import type { RequestDef } from '../../wire/messages.js';
import { normaliseUserName } from '../../login/user-name.js';
import type { Logger } from '../../system/logging.js';
import { eachLimit } from '../../util/each-limit.js';
import { normalizeHostPort, parseHostPort } from '../../util/host-port.js';
import type { SupernodeInfo } from '../messages.js';
import { IndexError, RecordError } from './errors.js';
import { IndexNode } from './index-node.js';
import type { Handled, IndexNodeOptions } from './index-node.js';
import { INDEX_LINK_ROLE, IndexHello, LinkPool } from './link-pool.js';
import type { LinkPoolOptions } from './link-pool.js';
import type { Lookup, LookupResponse } from './lookup.js';
import { FindNode, FindValue, IndexPing, Store } from './messages.js';
import type { StoreResponse } from './messages.js';
import { idToHex, supernodeId, userKey } from './node-id.js';
import type { NodeId } from './node-id.js';
import { NodeIndexHandlers } from './node-index-handlers.js';
import type { NodeIndexHandlersOptions } from './node-index-handlers.js';
import type { DirectoryAnswer, NodeIndexSearchResponse } from './node-messages.js';
import { recordVerifier, sameRecord } from './record.js';
import type { LocationRecord } from './record.js';
import type { IndexAction } from './replication.js';
import type { ContactInfo } from './routing-table.js';

/**
 * The global index over real links (DESIGN.md "Supernode tier and global
 * index"): drives this supernode's IndexNode (pure core) with requests over
 * a LinkPool, serves the four index RPCs on incoming index links, and the
 * two node messages (node-messages.ts) on links of attached nodes.
 *
 * Index links are their own kind, not supernode peer links: the dialler
 * shows its supernode credential in the Noise handshake with the role
 * INDEX_LINK_ROLE and sends no Attach; `accept()` checks that credential
 * (login server signature, network, expiry, bound to the link's Noise key)
 * and serves the link, and `index.hello` tells where the dialler serves
 * (its host must be where the link comes from). Requests on a link whose
 * hello was accepted count as from that supernode (its id is SHA-256 of the
 * link's Noise key) and enter it in the routing table.
 *
 * Everything the core asks for (pings, STOREs, republish and refresh
 * lookups) runs in the background with at most `maxConcurrentActions` at
 * once; answers and failures go back into the routing table. Own-side
 * limits (a full pool, pacing, stopping) are not counted against a contact.
 */
export interface IndexServiceOptions {
  identity: Identity;
  network: string;
  /** `host:port` this supernode serves on (what it advertises to other supernodes). */
  address: string;
  /** The login server's Ed25519 key: records and index links' credentials are checked against it. */
  loginServerKey: Uint8Array;
  /** This supernode's own credential, shown on the index links it opens. */
  credential: () => Credential | undefined;
  log: Logger;
  /** Replicas per user and lookup width (default 8). */
  k?: number;
  /** Parallel requests per lookup (default 3). */
  alpha?: number;
  bucketSize?: number;
  maxFailures?: number;
  searchQuorum?: number;
  /** Deadline of one request to a supernode, dial included (default 2 s). */
  requestTimeoutMs?: number;
  /** Period of maintenance() (default 60 s). */
  maintenanceIntervalMs?: number;
  republishIntervalMs?: number;
  refreshIntervalMs?: number;
  contactCheckMs?: number;
  store?: IndexNodeOptions['store'];
  pool?: Pick<LinkPoolOptions, 'maxLinks' | 'idleMs' | 'connectTimeoutMs' | 'handshakeTimeoutMs' | 'requestsPerSecond' | 'burst' | 'link'>;
  /** Core actions (pings, STOREs, lookups) carried out at once (default 16). */
  maxConcurrentActions?: number;
  /** An attached node may publish at most once in this interval (default 5 s). */
  minPublishIntervalMs?: number;
  /** Searches one attached node may have running at once (default 4). */
  maxSearchesPerNode?: number;
  onlineWindowMs?: number;
  /**
   * Supernodes to (re)join through while the routing table holds fewer than
   * k contacts and this list names some it lacks; checked at start and by
   * every maintenance round (normally `() => supernodePeers.list(20)`:
   * verified peers).
   */
  seeds?: () => readonly SupernodeInfo[];
  /** The login server's directory, asked when the index has nothing (the lead wires DirectoryLookup here). */
  fallback?: (user: string) => Promise<DirectoryAnswer | undefined>;
  /** More handlers for every index link, incoming or outgoing (e.g. the Router's route.forward). */
  serveLink?: (link: Link) => void;
  /**
   * What the responsible supernodes know of a user's devices' presence
   * (presence-service.ts): lets index.search answer `online: false` for a
   * device that logged out or whose supernode reported it gone.
   */
  presence?: NodeIndexHandlersOptions['presence'];
  now?: () => number;
  random?: (n: number) => Uint8Array;
}

export interface IndexSearchResult {
  found: boolean;
  /** The freshest record of each device, oldest login first. */
  records: LocationRecord[];
  /** Supernodes asked (0 when this supernode answered from its own store). */
  contacted: number;
  /** The supernodes whose answers held the records (none when this one answered from its own store). */
  holders: ContactInfo[];
}

export interface IndexPublishResult {
  /** Supernodes holding the record now (this one included when it is a replica). */
  replicas: number;
  /** Replicas that refused it, with their `ERR_RECORD_*` code. */
  refused: Array<{ address: string; code: string }>;
  /** Supernodes asked in the FIND_NODE lookup. */
  contacted: number;
}

export interface IndexJoinResult {
  /** Seeds that answered a ping. */
  answered: number;
  /** Contacts in the routing table afterwards. */
  contacts: number;
}

interface ServedLink {
  /** The supernode at the other end, once known (hello accepted, or dialled by us). */
  from: ContactInfo | undefined;
  /** Expiry of the credential the link was opened with. */
  expires: number;
}

const OWN_SIDE_CODES = new Set(['ERR_INDEX_POOL_FULL', 'ERR_INDEX_BUSY', 'ERR_INDEX_STOPPED', 'ERR_ABORTED']);
/** Index links stay served this long after their credential expired (renewal runs in the background). */
const CREDENTIAL_GRACE_MS = 60_000;
/** One-off links to supernodes not known here, per minute in all (forwarding to a device whose supernode this one has not met). */
export const ONE_OFF_DIALS_PER_MINUTE = 60;
/** An address a one-off link failed to is not dialled again for this long. */
const FAILED_DIAL_HOLD_MS = 10 * 60_000;
const MAX_FAILED_DIALS = 1_000;

export class IndexService {
  readonly id: NodeId;
  /** The pure core (routing table, record store), for status and tests. */
  readonly node: IndexNode;
  #options: IndexServiceOptions;
  #log: Logger;
  #now: () => number;
  /** One-off links to supernodes not in the routing table: a budget (ONE_OFF_DIALS_PER_MINUTE), and addresses that failed lately. */
  #oneOffTokens = ONE_OFF_DIALS_PER_MINUTE;
  #oneOffAt = 0;
  #failedDials = new Map<string, number>();
  /** Addresses that answered a one-off link as supernodes lately (until then they cost no budget). */
  #goodDials = new Map<string, number>();
  #pool: LinkPool;
  #served = new Map<Link, ServedLink>();
  /** Every served index link, incoming or pooled: who is at the other end. */
  #peers = new WeakMap<Link, ServedLink>();
  #nodeHandlers: NodeIndexHandlers;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #maintaining = false;
  #timeoutMs: number;
  #concurrency: number;

  constructor(options: IndexServiceOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.requestTimeoutMs ?? 2_000;
    this.#concurrency = options.maxConcurrentActions ?? 16;
    const publicKey = options.identity.noise.publicKey;
    const self: ContactInfo = { id: supernodeId(publicKey), address: normalizeHostPort(options.address), publicKey: publicKey.toString('base64') };
    this.id = self.id;
    this.node = new IndexNode({
      self,
      verify: recordVerifier({ loginServerKey: options.loginServerKey, network: options.network }),
      requestTimeoutMs: this.#timeoutMs,
      ...pick(options, ['k', 'alpha', 'bucketSize', 'maxFailures', 'searchQuorum', 'republishIntervalMs', 'refreshIntervalMs', 'contactCheckMs', 'store', 'random']),
    });
    this.#pool = new LinkPool({
      ...options.pool,
      identity: options.identity,
      network: options.network,
      log: options.log,
      credential: options.credential,
      announce: self.address,
      setup: (link, contact) => this.#serveIndex(link, { from: contact, expires: Infinity }),
    });
    this.#nodeHandlers = new NodeIndexHandlers({
      index: this,
      log: options.log,
      now: this.#now,
      ...pick(options, ['minPublishIntervalMs', 'maxSearchesPerNode', 'onlineWindowMs', 'fallback', 'presence']),
    });
  }

  get self(): ContactInfo {
    return this.node.self;
  }

  get running(): boolean {
    return this.#running;
  }

  stats(): { contacts: number; users: number; records: number; links: number; servedLinks: number; nodeLinks: number } {
    return { contacts: this.node.table.size, users: this.node.store.size, records: this.node.store.recordCount, links: this.#pool.size, servedLinks: this.#served.size, nodeLinks: this.#nodeHandlers.size };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#pool.start();
    this.#timer = setInterval(() => this.#tick(), this.#options.maintenanceIntervalMs ?? 60_000);
    this.#timer.unref();
    if (this.#options.seeds) this.#tick();
  }

  /**
   * Before this supernode steps down (demotion, shutdown): store every
   * record it holds at the k closest other supernodes it knows, so the
   * index keeps k copies without waiting for the others' repair. Bounded by
   * `timeoutMs`; returns how many users and STOREs it handed over.
   */
  async handOver(timeoutMs: number): Promise<{ users: number; stores: number }> {
    if (!this.#running) return { users: 0, stores: 0 };
    const now = this.#now();
    const actions: IndexAction[] = [];
    let users = 0;
    for (const entry of this.node.store.users()) {
      const records = this.node.store.get(entry.user, now);
      if (records.length === 0) continue;
      users++;
      for (const to of this.node.table.closest(entry.key, this.node.k)) actions.push({ type: 'store', to, user: entry.user, records });
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#exec(actions), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    this.#log.info({ users, stores: actions.length }, 'index records handed over');
    return { users, stores: actions.length };
  }

  /** Close index links and stop maintenance. Node links stay open (the SupernodeService owns them) but are no longer served. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pool.stop();
    for (const link of [...this.#served.keys()]) link.close();
    this.#served.clear();
    this.#nodeHandlers.clear();
  }

  // ---- Links from other supernodes ------------------------------------------------

  /**
   * An incoming index link (handshake role INDEX_LINK_ROLE). Closed at once
   * unless its handshake carried a valid credential for its Noise key.
   */
  accept({ link, peer }: PeerLink): void {
    if (!this.#running) {
      link.close();
      return;
    }
    const loginServerKey = this.#options.loginServerKey;
    let credential: Credential;
    try {
      if (!peer.credential) throw new IndexError('ERR_INDEX_NOT_AUTHENTICATED', 'index link: the handshake carried no credential');
      credential = verifyCredential(peer.credential, { loginServerKey, network: this.#options.network, now: this.#now(), noiseKey: link.channel.remoteStaticKey });
    } catch (err) {
      this.#log.info({ peer: link.remoteAddress, code: (err as PartylineError).code, reason: errorMessage(err) }, 'index link refused');
      link.close(err as Error);
      return;
    }
    const state: ServedLink = { from: undefined, expires: credential.expires };
    this.#served.set(link, state);
    link.once('close', () => this.#served.delete(link));
    link.handle(IndexHello, (body) => this.#hello(link, state, body.address));
    this.#serveIndex(link, state);
  }

  /**
   * Serve the index RPCs on a link whose other end is already authenticated
   * (e.g. a SupernodePeers peer link): `peer` is that supernode, or
   * undefined to serve it without entering it in the routing table.
   */
  serve(link: Link, peer?: ContactInfo): void {
    this.#serveIndex(link, { from: peer, expires: Infinity });
  }

  #serveIndex(link: Link, state: ServedLink): void {
    this.#peers.set(link, state);
    const run = <R>(handle: (from: ContactInfo | undefined, now: number) => Handled<R>): R => {
      const now = this.#now();
      if (!this.#running) throw new IndexError('ERR_INDEX_STOPPED', 'the index service of this supernode is stopped');
      if (now > state.expires + CREDENTIAL_GRACE_MS) {
        link.close(new IndexError('ERR_INDEX_CREDENTIAL_EXPIRED', 'the credential this index link was opened with has expired'));
        throw new IndexError('ERR_INDEX_CREDENTIAL_EXPIRED', 'the credential this index link was opened with has expired');
      }
      const handled = handle(state.from, now);
      this.#background(handled.actions);
      return handled.response;
    };
    link.handle(FindNode, (body) => run((from, now) => this.node.handleFindNode(from, body, now)));
    link.handle(FindValue, (body) => run((from, now) => this.node.handleFindValue(from, body, now)));
    link.handle(Store, (body) => run((from, now) => this.node.handleStore(from, body, now)));
    link.handle(IndexPing, (body) => run((from, now) => this.node.handlePing(from, body as Record<string, never>, now)));
    this.#options.serveLink?.(link);
  }

  /**
   * The supernode at the other end of an index link, once known (its hello
   * was accepted, or this supernode dialled it): handlers of other
   * services (presence, held messages) use it to tell who asks.
   */
  peerOf(link: Link): ContactInfo | undefined {
    return this.#peers.get(link)?.from;
  }

  /**
   * One request to a contact (e.g. from `responsible()`) over its pooled
   * index link; the outcome counts for the contact in the routing table.
   */
  async request<Req, Res>(contact: ContactInfo, def: RequestDef<Req, Res>, body: Req, options: { timeoutMs?: number } = {}): Promise<Res> {
    this.#assertRunning();
    try {
      const answer = await this.#pool.request(contact, def, body, { timeoutMs: options.timeoutMs ?? this.#timeoutMs });
      this.#background(this.node.contactSeen(this.#pool.contact(contact.id) ?? contact, this.#now()));
      return answer;
    } catch (err) {
      this.#failed(contact, err);
      throw err;
    }
  }

  /**
   * The k supernodes closest to a user's key as a FIND_NODE lookup finds
   * them now, this one included when it is among them, closest first:
   * where the user's records live, and where presence and held messages
   * for the user go (presence-service.ts, mailbox-service.ts).
   */
  async responsible(user: string): Promise<ContactInfo[]> {
    this.#assertRunning();
    const key = userKey(normaliseUserName(user));
    const lookup = await this.#findNode(key);
    const near = [...lookup.result.closest.filter((c) => c.id !== this.id), this.self];
    return near.sort((a, b) => ((a.id ^ key) < (b.id ^ key) ? -1 : 1)).slice(0, this.node.k);
  }

  /**
   * A request to the supernode serving at `address` over an index link:
   * pooled when it is a contact (or a verified peer), else over a one-off
   * link (XX: its key is not known, so not pinned — fine for what is sent
   * this way, which is end-to-end sealed).
   */
  async requestSupernode<Req, Res>(address: string, def: RequestDef<Req, Res>, body: Req, options: { timeoutMs?: number; mayDial?: () => Promise<boolean> } = {}): Promise<Res> {
    this.#assertRunning();
    const wanted = normalizeHostPort(address);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let contact: ContactInfo | undefined = this.node.table.contacts().find((c) => c.address === wanted);
    if (!contact) contact = this.contactsFromPeers(this.#options.seeds?.() ?? []).find((c) => c.address === wanted);
    if (contact) return this.#pool.request(contact, def, body, { timeoutMs });
    // Not a supernode we know: dial it only when the caller vouches for the address (e.g. a signed
    // record names it), so that nobody can make this supernode connect wherever they like. Even
    // then sparingly (what vouches may be a device's own word): a budget of one-off dials, checked
    // before the caller's check (itself a lookup), and an address that failed is not dialled again soon.
    const now = this.#now();
    const failedUntil = this.#failedDials.get(wanted);
    if (failedUntil !== undefined && failedUntil > now) throw new IndexError('ERR_INDEX_UNKNOWN_SUPERNODE', `${wanted} did not answer as a supernode a moment ago`);
    if (!options.mayDial) throw new IndexError('ERR_INDEX_UNKNOWN_SUPERNODE', `${wanted} is not a supernode this one knows`);
    // A supernode that answered a one-off link lately costs no budget (the routes of ongoing calls go on).
    if ((this.#goodDials.get(wanted) ?? 0) <= now) this.#spendOneOff(now);
    if (!(await options.mayDial())) {
      throw new IndexError('ERR_INDEX_UNKNOWN_SUPERNODE', `${wanted} is not a supernode this one knows`);
    }
    const { host, port } = parseHostPort(wanted);
    const { link } = await dialLink({
      identity: this.#options.identity,
      network: this.#options.network,
      role: INDEX_LINK_ROLE,
      credential: () => this.#options.credential(),
      log: this.#log,
      host,
      port,
      connectTimeoutMs: timeoutMs,
    }).catch((err: unknown) => {
      this.#failedDials.delete(wanted);
      this.#failedDials.set(wanted, this.#now() + FAILED_DIAL_HOLD_MS);
      if (this.#failedDials.size > MAX_FAILED_DIALS) this.#failedDials.delete(this.#failedDials.keys().next().value!);
      throw err;
    });
    this.#goodDials.delete(wanted);
    this.#goodDials.set(wanted, this.#now() + FAILED_DIAL_HOLD_MS);
    if (this.#goodDials.size > MAX_FAILED_DIALS) this.#goodDials.delete(this.#goodDials.keys().next().value!);
    try {
      return await link.request(def, body, { timeoutMs });
    } finally {
      link.close();
    }
  }

  #spendOneOff(now: number): void {
    this.#oneOffTokens = Math.min(ONE_OFF_DIALS_PER_MINUTE, this.#oneOffTokens + ((now - this.#oneOffAt) / 60_000) * ONE_OFF_DIALS_PER_MINUTE);
    this.#oneOffAt = now;
    if (this.#oneOffTokens < 1) throw new IndexError('ERR_INDEX_BUSY', `more than ${ONE_OFF_DIALS_PER_MINUTE} links a minute to supernodes this one does not know`);
    this.#oneOffTokens -= 1;
  }

  #hello(link: Link, state: ServedLink, address: string): { id: string } {
    const { host } = parseHostPort(address);
    const remote = link.remoteAddress;
    if (!remote || canonicalHost(remote) !== canonicalHost(host)) {
      throw new IndexError('ERR_INDEX_HELLO_ADDRESS', `index.hello: announced ${address}, but the link comes from ${remote ?? 'an unknown address'}`);
    }
    const key = link.channel.remoteStaticKey;
    const contact: ContactInfo = { id: supernodeId(key), address: normalizeHostPort(address), publicKey: key.toString('base64') };
    state.from = contact;
    this.#background(this.node.contactSeen(contact, this.#now()));
    this.#pool.adopt(contact, link);
    return { id: idToHex(this.id) };
  }

  // ---- Links from attached nodes ----------------------------------------------------

  /**
   * Serve index.publish and index.search (node-messages.ts) to a node
   * attached with `credential`, already verified by the SupernodeService.
   * Calling it again on the same link (a renewed credential) only updates
   * the credential.
   */
  serveNode(link: Link, credential: Credential): void {
    this.#nodeHandlers.serve(link, credential);
  }

  /**
   * The answer to a node's index.search: the index's records, else the
   * login server's directory (`fallback`), else "not found".
   */
  answerSearch(user: string, options: { signal?: AbortSignal } = {}): Promise<NodeIndexSearchResponse> {
    return this.#nodeHandlers.answerSearch(user, options);
  }

  // ---- Own operations ---------------------------------------------------------------------

  /**
   * Join the index: ping the seeds (their keys are checked on the link),
   * then look up this supernode's own id and refresh the farther buckets.
   */
  async join(seeds: readonly ContactInfo[]): Promise<IndexJoinResult> {
    this.#assertRunning();
    const others = seeds.filter((s) => s.id !== this.id);
    const answers = await Promise.all(others.map((seed) => this.#ping(seed)));
    if (this.node.table.size > 0) {
      await this.#findNode(this.id);
      await eachLimit(this.node.joinRefreshTargets(), this.node.alpha, (target) => this.#findNode(target), this.#onError);
    }
    const result = { answered: answers.filter(Boolean).length, contacts: this.node.table.size };
    this.#log.info(result, 'joined the index');
    return result;
  }

  /**
   * Contacts for the supernodes of a peer list (SupernodePeers.list(): peers
   * verified by handshake, credential and dial-back), entered in the routing
   * table. Entries without a key, and this supernode, are skipped.
   */
  contactsFromPeers(infos: readonly SupernodeInfo[]): ContactInfo[] {
    const out: ContactInfo[] = [];
    const now = this.#now();
    for (const info of infos) {
      const contact = contactFromSupernodeInfo(info);
      if (!contact || contact.id === this.id || out.some((c) => c.id === contact.id)) continue;
      out.push(contact);
      this.#background(this.node.contactSeen(contact, now));
    }
    return out;
  }

  /**
   * Publish a location record on the k supernodes closest to its user's
   * key. Throws a RecordError for a record that fails verification or is
   * older than what this supernode holds, the replicas' common code when
   * every replica refused it, and `ERR_INDEX_UNREACHABLE` when none answered.
   */
  async publish(record: unknown): Promise<IndexPublishResult> {
    this.#assertRunning();
    const now = this.#now();
    const verified = this.node.validate(record, now);
    this.node.store.check(verified, now);
    return this.#publishVerified(verified);
  }

  async #publishVerified(record: LocationRecord): Promise<IndexPublishResult> {
    const lookup = await this.#findNode(userKey(record.user));
    const stores = this.node.publish([record], lookup.result.closest, this.#now());
    const held = this.node.store.get(record.user, this.#now()).some((r) => sameRecord(r, record));
    const answers = await Promise.all(stores.map(async (action) => (action.type === 'store' ? { to: action.to, response: await this.#store(action.to, action.records) } : undefined)));
    let replicas = held ? 1 : 0;
    const refused: IndexPublishResult['refused'] = [];
    for (const answer of answers) {
      const result = answer?.response?.results.find((r) => r.deviceId === record.device.deviceId);
      if (!answer || !result) continue;
      if (result.status === 'refused') refused.push({ address: answer.to.address, code: result.code ?? 'ERR_RECORD_REFUSED' });
      else replicas++;
    }
    if (replicas === 0) {
      const code = refused[0]?.code;
      if (code !== undefined) {
        throw new RecordError(code.startsWith('ERR_RECORD_') ? (code as `ERR_RECORD_${string}`) : 'ERR_RECORD_REFUSED', `location record of ${record.user}/${record.device.deviceId}: refused by every replica (${refused.map((r) => r.code).join(', ')})`);
      }
      throw new IndexError('ERR_INDEX_UNREACHABLE', `location record of ${record.user}/${record.device.deviceId}: no replica could be reached (${stores.length} tried)`);
    }
    return { replicas, refused, contacted: lookup.result.contacted };
  }

  /**
   * A user's location records: from this supernode's own store when it is a
   * replica, else an iterative FIND_VALUE lookup (α requests in parallel)
   * whose stale holders are repaired in the background. A copy held here
   * outside the replica set is the answer only when the lookup found none.
   */
  async search(user: string, options: { signal?: AbortSignal } = {}): Promise<IndexSearchResult> {
    this.#assertRunning();
    const name = normaliseUserName(user);
    if (name.length === 0 || name.length > 64) throw new IndexError('ERR_INDEX_USER', `search: user name of ${name.length} characters, expected 1..64`);
    const start = this.node.search(name, this.#now());
    if (start.local) return { found: true, records: start.local, contacted: 0, holders: [] };
    const lookup = await this.#drive(start.lookup!, async (to) => {
      const answer = await this.#pool.request(to, FindValue, { user: name }, { timeoutMs: this.#timeoutMs, ...options });
      return this.node.findValueAnswer(name, answer, this.#now());
    });
    const { values, contacted } = lookup.result;
    this.#background(this.node.readRepair(values));
    const records = values.length > 0 ? this.node.searchResult(values) : this.node.store.get(name, this.#now());
    return { found: records.length > 0, records, contacted, holders: values.map((v) => v.from) };
  }

  /**
   * One maintenance round, awaited to its end: expiry, pings of silent and
   * failing contacts, re-replication, republish, bucket refresh, then
   * re-replication once more for contacts the pings removed.
   */
  async maintain(): Promise<void> {
    if (!this.#running) return;
    const seeds = this.#options.seeds;
    if (seeds && this.node.table.size < this.node.k) {
      const known = new Set(this.node.table.contacts().map((c) => c.id));
      const contacts = this.contactsFromPeers(seeds());
      // Only when the peer list brings someone new: a network smaller than k would otherwise rejoin every round.
      if (contacts.some((c) => !known.has(c.id))) await this.join(contacts);
    }
    await this.#exec(this.node.maintenance(this.#now()));
    await this.#exec(this.node.replicate(this.#now()));
    this.#sweepServed();
  }

  #tick(): void {
    if (this.#maintaining) return;
    this.#maintaining = true;
    this.maintain()
      .catch((err: unknown) => this.#log.error({ err }, 'index maintenance failed'))
      .finally(() => {
        this.#maintaining = false;
      });
  }

  /** Incoming index links the pool did not adopt are closed when idle like pooled ones. */
  #sweepServed(): void {
    const now = Date.now();
    for (const link of [...this.#served.keys()]) {
      if (!this.#pool.has(supernodeId(link.channel.remoteStaticKey)) && now - link.lastReceived >= this.#pool.idleMs) link.close();
    }
  }

  // ---- Carrying out the core's actions ---------------------------------------------

  #background(actions: IndexAction[]): void {
    if (actions.length === 0 || !this.#running) return;
    this.#exec(actions).catch((err: unknown) => this.#log.error({ err }, 'index action failed'));
  }

  #exec(actions: IndexAction[]): Promise<void> {
    return eachLimit(actions, this.#concurrency, async (action) => {
      if (!this.#running) return;
      switch (action.type) {
        case 'ping':
          await this.#ping(action.contact);
          break;
        case 'store':
          await this.#store(action.to, action.records);
          break;
        case 'republish': {
          const lookup = await this.#findNode(action.key);
          const now = this.#now();
          await this.#exec(this.node.publish(this.node.store.get(action.user, now), lookup.result.closest, now));
          break;
        }
        case 'refresh':
          await this.#findNode(action.target);
          break;
      }
    }, this.#onError);
  }

  #onError = (err: unknown): void => {
    this.#log.error({ err }, 'index action failed');
  };

  async #ping(contact: ContactInfo): Promise<boolean> {
    try {
      const answer = await this.#pool.request(contact, IndexPing, {}, { timeoutMs: this.#timeoutMs });
      if (answer.id !== idToHex(contact.id)) throw new IndexError('ERR_INDEX_PEER_KEY', `index.ping: ${contact.address} answered with another id`);
      await this.#seen(contact);
      return true;
    } catch (err) {
      this.#failed(contact, err);
      return false;
    }
  }

  async #store(to: ContactInfo, records: LocationRecord[]): Promise<StoreResponse | undefined> {
    try {
      const answer = await this.#pool.request(to, Store, { records }, { timeoutMs: this.#timeoutMs });
      await this.#seen(to);
      for (const r of answer.results) if (r.status === 'refused') this.#log.debug({ peer: to.address, deviceId: r.deviceId, code: r.code }, 'index store refused');
      return answer;
    } catch (err) {
      this.#failed(to, err);
      return undefined;
    }
  }

  #findNode(target: NodeId): Promise<Lookup> {
    const hex = idToHex(target);
    return this.#drive(this.node.findNode(target, this.#now()), async (to) => this.node.findNodeAnswer(await this.#pool.request(to, FindNode, { target: hex }, { timeoutMs: this.#timeoutMs })));
  }

  /** A contact answered: enter it (with the key its link proved) and carry out what that asks for. */
  #seen(contact: ContactInfo): Promise<void> {
    const verified = this.#pool.contact(contact.id) ?? contact;
    return this.#exec(this.node.contactSeen(verified, this.#now()));
  }

  #failed(contact: ContactInfo, err: unknown): void {
    const code = (err as PartylineError).code;
    if (!this.#running || OWN_SIDE_CODES.has(code)) return;
    this.#log.debug({ peer: contact.address, code, err: errorMessage(err) }, 'index request failed');
    this.#background(this.node.contactFailed(contact.id, this.#now()));
  }

  /** Run a lookup to its end: at most α requests in flight, each answer or failure fed back as it comes. */
  #drive<V>(lookup: Lookup<V>, ask: (to: ContactInfo) => Promise<LookupResponse<V>>): Promise<Lookup<V>> {
    return new Promise((resolve) => {
      let settled = false;
      const pump = (): void => {
        if (settled) return;
        if (this.#running && !lookup.done) {
          for (const to of lookup.next(this.#now())) {
            ask(to)
              .then(
                (answer) => {
                  lookup.onResponse(to.id, answer);
                  this.#background(this.node.contactSeen(this.#pool.contact(to.id) ?? to, this.#now()));
                },
                (err: unknown) => {
                  lookup.onFailure(to.id);
                  this.#failed(to, err);
                },
              )
              .catch((err: unknown) => this.#log.error({ err }, 'index lookup step failed'))
              .finally(pump);
          }
        }
        if (!this.#running || lookup.done || lookup.inFlight === 0) {
          settled = true;
          resolve(lookup);
        }
      };
      pump();
    });
  }

  #assertRunning(): void {
    if (!this.#running) throw new IndexError('ERR_INDEX_STOPPED', 'the index service of this supernode is stopped');
  }
}

/** A routing-table contact for a supernode from a peer list or host cache entry (needs its Noise key). */
export function contactFromSupernodeInfo(info: SupernodeInfo): ContactInfo | undefined {
  if (!info.publicKey) return undefined;
  try {
    return { id: supernodeId(info.publicKey), address: normalizeHostPort(info.address), publicKey: info.publicKey };
  } catch {
    // A key or address that does not parse: a hint we cannot use.
    return undefined;
  }
}

function pick<T extends object, K extends keyof T>(options: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (options[key] !== undefined) out[key] = options[key];
  return out;
}

/** An IP as text, with brackets removed and IPv4-mapped IPv6 reduced to IPv4. */
function canonicalHost(host: string): string {
  const h = host.startsWith('[') ? host.slice(1, -1) : host;
  return h.toLowerCase().startsWith('::ffff:') && h.includes('.') ? h.slice(7) : h.toLowerCase();
}
