import type { Logger } from 'pino';
import { AttributeType, ERROR_REASONS, ErrorCode, StunMethod } from './constants.js';
import { addressFamily, canonicalIp, isUnspecified } from './address.js';
import type { TransportAddress } from './address.js';
import type { StunAttribute } from './attributes.js';
import { StunError, StunUnknownAttributesError } from './errors.js';
import { decodeStunMessage, encodeStunMessage, getAttribute, isStunPacket, verifyFingerprint } from './message.js';
import type { StunMessage } from './message.js';
import { SourceRateLimiter } from './rate-limit.js';
import type { SourceRateLimitOptions } from './rate-limit.js';

/**
 * The four addresses an RFC 5780 server answers from. Relative to `primary`
 * (Pa:Pp): `alternate-port` is Pa:Cp, `alternate-ip` is Ca:Pp,
 * `alternate-both` is Ca:Cp. The index of each name has bit 0 = "port
 * changed" and bit 1 = "IP changed", so a CHANGE-REQUEST maps the endpoint a
 * request arrived on to the one that must answer by XOR.
 */
export type StunEndpoint = 'primary' | 'alternate-port' | 'alternate-ip' | 'alternate-both';
export const STUN_ENDPOINTS: readonly StunEndpoint[] = ['primary', 'alternate-port', 'alternate-ip', 'alternate-both'];

/** Where a datagram came from (a `dgram.RemoteInfo` fits). */
export interface StunRemoteInfo {
  address: string;
  port: number;
}

/** Send `data` to `to` from the socket of endpoint `via`. */
export type StunSend = (data: Buffer, to: TransportAddress, via: StunEndpoint) => void;

/**
 * What the responder did with a packet. `not-request` (a response or
 * indication) and `unsupported-method` are left for other handlers on a
 * shared socket: the STUN client, a relay.
 */
export type StunHandleOutcome = 'answered' | 'refused' | 'delegated' | 'rate-limited' | 'malformed' | 'not-request' | 'unsupported-method';

/** A change-IP request this responder cannot serve itself, offered to another server (see `delegateChangeIp`). */
export interface DelegatedRequest {
  /** The request as received. */
  packet: Buffer;
  /** The client's address as this server saw it (what XOR-MAPPED-ADDRESS must say). */
  source: TransportAddress;
  changePort: boolean;
}

export interface StunResponderOptions {
  /**
   * The addresses advertised for each endpoint this responder can send from
   * (`primary` is required). Unspecified addresses (0.0.0.0, ::) are never
   * advertised in RESPONSE-ORIGIN or OTHER-ADDRESS.
   */
  endpoints: Partial<Record<StunEndpoint, TransportAddress>> & { primary: TransportAddress };
  /** SOFTWARE in responses (default `partyline`); empty to leave it out. */
  software?: string;
  rateLimit?: Partial<SourceRateLimitOptions>;
  /** How many bytes a response may be larger than its request (default 48). Never below what XOR-MAPPED-ADDRESS needs. */
  amplificationAllowance?: number;
  /**
   * Offered change-IP requests this responder has no alternate IP for. Return
   * true when another server (e.g. supernode B, told over the overlay) will
   * answer with `answerOnBehalf`; false to answer 420 here.
   */
  delegateChangeIp?: (request: DelegatedRequest) => boolean;
  /** Monotonic clock in ms (default `performance.now`). */
  now?: () => number;
  log?: Logger;
}

export const DEFAULT_AMPLIFICATION_ALLOWANCE = 48;

/**
 * Answers STUN Binding requests (RFC 8489) with the RFC 5780 extensions, for
 * a socket it does not own: the owner calls `handleStunPacket` for every
 * datagram where `isStunPacket` is true — on a dedicated STUN socket (see
 * `StunServer`) or on the phone's media socket shared with RTP and relay
 * traffic.
 *
 * - Success responses carry XOR-MAPPED-ADDRESS, MAPPED-ADDRESS (for
 *   pre-RFC 5389 clients), RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE and
 *   FINGERPRINT, minus whatever does not fit the amplification budget.
 * - CHANGE-REQUEST is honoured by answering from the changed endpoint; when
 *   that endpoint does not exist the answer is 420 (Unknown Attribute) with
 *   CHANGE-REQUEST in UNKNOWN-ATTRIBUTES, as RFC 5780 §6.1 requires — unless
 *   a change-IP request is delegated (`delegateChangeIp`).
 * - OTHER-ADDRESS names the endpoint with both IP and port changed (RFC
 *   5780); a server with only a second port (or only a second IP) names that
 *   one instead — a deviation from RFC 5780, which would send no
 *   OTHER-ADDRESS at all, so that clients can still find the second port.
 *   Clients tell the cases apart by comparing OTHER-ADDRESS with the address
 *   they sent to.
 * - Not a reflection amplifier: a response is at most the request's size
 *   plus `amplificationAllowance` bytes (optional attributes are dropped, in
 *   the order SOFTWARE, MAPPED-ADDRESS, OTHER-ADDRESS, RESPONSE-ORIGIN), and
 *   each source has a token bucket; over-rate requests get no answer.
 * - Malformed requests, requests with a bad FINGERPRINT and indications get
 *   no answer.
 */
export class StunResponder {
  readonly #endpoints: Partial<Record<StunEndpoint, TransportAddress>>;
  readonly #software: string;
  readonly #allowance: number;
  readonly #limiter: SourceRateLimiter;
  readonly #delegate: ((request: DelegatedRequest) => boolean) | undefined;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #counts: Record<StunHandleOutcome, number> = {
    answered: 0, refused: 0, delegated: 0, 'rate-limited': 0, malformed: 0, 'not-request': 0, 'unsupported-method': 0,
  };

  constructor(options: StunResponderOptions) {
    this.#endpoints = { ...options.endpoints };
    this.#software = options.software ?? 'partyline';
    this.#allowance = options.amplificationAllowance ?? DEFAULT_AMPLIFICATION_ALLOWANCE;
    this.#limiter = new SourceRateLimiter(options.rateLimit);
    this.#delegate = options.delegateChangeIp;
    this.#now = options.now ?? (() => performance.now());
    this.#log = options.log;
  }

  /** How many packets ended in each outcome. */
  get counts(): Readonly<Record<StunHandleOutcome, number>> {
    return { ...this.#counts };
  }

  /**
   * Handle one datagram that arrived on endpoint `arrivedOn` (default
   * `primary`) from `rinfo`; answers through `send`. Never throws for bad
   * input.
   */
  handleStunPacket(packet: Buffer, rinfo: StunRemoteInfo, send: StunSend, arrivedOn: StunEndpoint = 'primary'): StunHandleOutcome {
    const outcome = this.#handle(packet, rinfo, send, arrivedOn, false);
    this.#counts[outcome]++;
    return outcome;
  }

  /**
   * Answer a Binding request that another server received from `client`
   * (delegated change-IP, "A, please have B answer me"): the response goes
   * from this responder's primary endpoint to `client`, with
   * XOR-MAPPED-ADDRESS = `client`. The request's CHANGE-REQUEST is ignored.
   * The same rate limit and size budget apply; the overlay that carries the
   * request must only accept it from an authenticated supernode.
   */
  answerOnBehalf(packet: Buffer, client: TransportAddress, send: StunSend): StunHandleOutcome {
    const outcome = this.#handle(packet, client, send, 'primary', true);
    this.#counts[outcome]++;
    return outcome;
  }

  #handle(packet: Buffer, rinfo: StunRemoteInfo, send: StunSend, arrivedOn: StunEndpoint, onBehalf: boolean): StunHandleOutcome {
    if (!isStunPacket(packet)) return 'malformed';
    const source: TransportAddress = { address: canonicalIp(rinfo.address) ?? rinfo.address, port: rinfo.port };
    let request: StunMessage;
    try {
      request = decodeStunMessage(packet);
    } catch (err) {
      if (!(err instanceof StunError)) throw err;
      if (err instanceof StunUnknownAttributesError && err.header.class === 'request' && err.header.method === StunMethod.BINDING) {
        if (!this.#limiter.take(source.address, this.#now())) return 'rate-limited';
        this.#sendError(packet.length, err.header.transactionId, ErrorCode.UNKNOWN_ATTRIBUTE, err.unknown, source, send, arrivedOn);
        return 'refused';
      }
      if (err instanceof StunUnknownAttributesError) {
        // Well-formed, with attributes only another method knows (a relay's ChannelBind carries
        // CHANNEL-NUMBER): not ours to refuse — leave it to the port's other handlers.
        if (err.header.class !== 'request') return 'not-request';
        if (err.header.method !== StunMethod.BINDING) return 'unsupported-method';
      }
      this.#log?.trace({ from: source, code: err.code }, 'stun packet dropped');
      return 'malformed';
    }
    if (request.class !== 'request') return 'not-request';
    if (getAttribute(request, 'fingerprint') && !verifyFingerprint(packet)) return 'malformed';
    if (request.method !== StunMethod.BINDING) return 'unsupported-method';
    if (!this.#limiter.take(source.address, this.#now())) {
      this.#log?.trace({ from: source }, 'stun request over rate');
      return 'rate-limited';
    }

    const change = onBehalf ? undefined : getAttribute(request, 'change-request')?.value;
    const from = STUN_ENDPOINTS[STUN_ENDPOINTS.indexOf(arrivedOn) ^ (change?.changeIp ? 2 : 0) ^ (change?.changePort ? 1 : 0)]!;
    if (this.#endpoints[from] === undefined) {
      if (change?.changeIp && this.#delegate?.({ packet, source, changePort: change.changePort })) return 'delegated';
      this.#sendError(packet.length, request.transactionId, ErrorCode.UNKNOWN_ATTRIBUTE, [AttributeType.CHANGE_REQUEST], source, send, arrivedOn);
      return 'refused';
    }
    const response = this.#successResponse(request.transactionId, packet.length, source, from, arrivedOn);
    send(response, source, from);
    return 'answered';
  }

  #advertised(endpoint: StunEndpoint | undefined): TransportAddress | undefined {
    const value = endpoint === undefined ? undefined : this.#endpoints[endpoint];
    return value === undefined || isUnspecified(value.address) ? undefined : value;
  }

  /** OTHER-ADDRESS relative to the endpoint the request arrived on: both changed, else port, else IP. */
  #otherAddress(arrivedOn: StunEndpoint): TransportAddress | undefined {
    const index = STUN_ENDPOINTS.indexOf(arrivedOn);
    for (const flip of [3, 1, 2]) {
      const other = this.#advertised(STUN_ENDPOINTS[index ^ flip]);
      if (other !== undefined) return other;
    }
    return undefined;
  }

  #successResponse(transactionId: Buffer, requestSize: number, source: TransportAddress, from: StunEndpoint, arrivedOn: StunEndpoint): Buffer {
    const origin = this.#advertised(from);
    const other = this.#otherAddress(arrivedOn);
    const canMap = addressFamily(source.address) !== undefined;
    // In drop order, last dropped first: what must stay comes first.
    const optional: StunAttribute[] = [];
    if (origin) optional.push({ kind: 'response-origin', value: origin });
    if (other) optional.push({ kind: 'other-address', value: other });
    if (canMap) optional.push({ kind: 'mapped-address', value: source });
    if (this.#software) optional.push({ kind: 'software', value: this.#software });
    const required: StunAttribute[] = canMap ? [{ kind: 'xor-mapped-address', value: source }] : [];
    return this.#fit(requestSize, { method: StunMethod.BINDING, class: 'success', transactionId, attributes: required }, optional);
  }

  #sendError(requestSize: number, transactionId: Buffer, code: number, unknown: readonly number[], to: TransportAddress, send: StunSend, via: StunEndpoint): void {
    const attributes: StunAttribute[] = [{ kind: 'error-code', value: { code, reason: ERROR_REASONS.get(code) ?? '' } }];
    // Each unknown type cost the sender at least 4 bytes, so listing them cannot amplify.
    if (unknown.length > 0) attributes.push({ kind: 'unknown-attributes', value: [...unknown] });
    const optional: StunAttribute[] = this.#software ? [{ kind: 'software', value: this.#software }] : [];
    send(this.#fit(requestSize, { method: StunMethod.BINDING, class: 'error', transactionId, attributes }, optional), to, via);
  }

  /** Encode with as many optional attributes (in order) as fit the amplification budget. */
  #fit(requestSize: number, base: StunMessage, optional: StunAttribute[]): Buffer {
    const budget = requestSize + this.#allowance;
    for (let keep = optional.length; keep > 0; keep--) {
      const encoded = encodeStunMessage({ ...base, attributes: [...base.attributes, ...optional.slice(0, keep)] }, { fingerprint: true });
      if (encoded.length <= budget) return encoded;
    }
    return encodeStunMessage(base, { fingerprint: true });
  }
}
