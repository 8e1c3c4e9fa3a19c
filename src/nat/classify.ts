import { sameIp, sameTransportAddress } from './stun/address.js';
import type { TransportAddress } from './stun/address.js';

/**
 * NAT classification from the outcomes of RFC 5780-style tests. PURE: no
 * sockets, no clock — `classifyNat` (nat-probe.ts) runs the tests.
 *
 * Behaviours (RFC 4787 §4.1 mapping, §5 filtering):
 * - mapping: does the NAT reuse the public address:port it gave a local
 *   socket when that socket talks to another destination? For every
 *   destination (endpoint-independent, EIM), only for the same destination
 *   IP (address-dependent, ADM), or only for the same IP and port
 *   (address-and-port-dependent, APDM).
 * - filtering: which senders may reach a mapping? Anyone (EIF), any port of
 *   an IP the socket has sent to (ADF), only the exact IP:port sent to (APDF).
 *
 * Classic (RFC 3489) names, as Partyline and Skype-era literature use them:
 *
 * | type            | mapping        | filtering                      |
 * |-----------------|----------------|--------------------------------|
 * | open            | none (mapped address = local address) | not proven restrictive |
 * | full-cone       | EIM            | EIF                            |
 * | restricted      | EIM            | ADF                            |
 * | port-restricted | EIM            | APDF                           |
 * | symmetric       | ADM or APDM    | any                            |
 * | udp-blocked     | no STUN answer at all                           |
 * | unknown         | answers, but the tests cannot tell the mapping  |
 *
 * A host without NAT whose firewall is proven to filter (a change-request
 * answer did not arrive) is reported as `restricted`/`port-restricted`, like
 * the cone NAT it behaves as (RFC 3489's "symmetric UDP firewall").
 *
 * When a test could not be run (the server has no alternate IP, no second
 * server B), the possibilities are narrowed as far as the other tests allow:
 * - filtering undecided → the most restrictive possibility (assuming too
 *   little only costs a hole-punching attempt that would have worked
 *   anyway); for a host without NAT → `open` unless filtering is proven;
 * - mapping undecided between EIM and a dependent mapping → `unknown`
 *   (guessing `symmetric` would send every call through a relay).
 * The `mapping` and `filtering` fields report only what was determined
 * (`unknown` otherwise); `reason` says what could not be told apart.
 */
export type NatType = 'open' | 'full-cone' | 'restricted' | 'port-restricted' | 'symmetric' | 'udp-blocked' | 'unknown';
export type NatBehaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/** The outcome of one Binding test. */
export type ProbeOutcome =
  | { status: 'ok'; mapped: TransportAddress }
  /** No answer within the deadline. */
  | { status: 'no-response' }
  /** The server cannot do it (420 to CHANGE-REQUEST, answered from the wrong address ...). */
  | { status: 'unsupported' };

/**
 * Test outcomes; a test left out (undefined) was not run. All tests are
 * sent from the same local socket.
 */
export interface NatProbeResults {
  /** The socket's own addresses (interface IP, local port). */
  localAddresses: readonly TransportAddress[];
  /** Test I: Binding to server A's primary address. */
  primary: ProbeOutcome;
  /** Filtering: A asked to answer from its other IP and port (RFC 5780 §4.4 test II). */
  changeIpAndPort?: ProbeOutcome;
  /** Filtering: A asked to answer from its other port (RFC 5780 §4.4 test III). */
  changePort?: ProbeOutcome;
  /** Mapping: Binding sent to another IP — server B, or A's alternate IP (RFC 5780 §4.3 test II). */
  otherIp?: ProbeOutcome;
  /** Mapping: Binding sent to A's IP on its other port. */
  otherPort?: ProbeOutcome;
}

export interface NatVerdict {
  type: NatType;
  /** The address A saw (for `symmetric`, valid towards A only). */
  publicAddress?: TransportAddress;
  mapping: NatBehaviour | 'unknown';
  filtering: NatBehaviour | 'unknown';
  reason: string;
}

const EI: NatBehaviour = 'endpoint-independent';
const AD: NatBehaviour = 'address-dependent';
const APD: NatBehaviour = 'address-and-port-dependent';
const ORDER: readonly NatBehaviour[] = [EI, AD, APD];

type Outcome = ProbeOutcome | undefined;
const ok = (o: Outcome): o is { status: 'ok'; mapped: TransportAddress } => o?.status === 'ok';
const silent = (o: Outcome): boolean => o?.status === 'no-response';

/** Filtering behaviours consistent with the change-request tests (most open first). A received answer outweighs a lost one. */
export function possibleFiltering(changeIpAndPort: Outcome, changePort: Outcome): { possible: NatBehaviour[]; why: string } {
  if (ok(changeIpAndPort)) return { possible: [EI], why: 'an answer from the other IP and port got through' };
  if (silent(changeIpAndPort)) {
    if (ok(changePort)) return { possible: [AD], why: 'an answer from the other port got through, one from the other IP did not' };
    if (silent(changePort)) return { possible: [APD], why: 'answers from the other port and from the other IP did not get through' };
    return { possible: [AD, APD], why: 'an answer from the other IP did not get through; the change-port test was not possible' };
  }
  if (ok(changePort)) return { possible: [EI, AD], why: 'an answer from the other port got through; the change-IP test was not possible' };
  if (silent(changePort)) return { possible: [APD], why: 'an answer from the other port did not get through' };
  return { possible: [EI, AD, APD], why: 'no change-request test was possible' };
}

/** Mapping behaviours consistent with the mapped addresses seen from different destinations. */
export function possibleMapping(natted: boolean, mapped: TransportAddress, otherIp: Outcome, otherPort: Outcome): { possible: NatBehaviour[]; why: string } {
  if (!natted) return { possible: [EI], why: 'no NAT: the mapped address is a local address' };
  if (ok(otherPort) && !sameTransportAddress(otherPort.mapped, mapped)) {
    return { possible: [APD], why: 'another port of the same server saw another mapping' };
  }
  if (ok(otherIp) && !sameTransportAddress(otherIp.mapped, mapped)) {
    if (ok(otherPort)) return { possible: [AD], why: 'another IP saw another mapping, another port of the same IP the same' };
    return { possible: [AD, APD], why: 'another IP saw another mapping; no other-port test to tell address- from address-and-port-dependent' };
  }
  if (ok(otherIp)) return { possible: [EI], why: 'another IP saw the same mapping' };
  if (ok(otherPort)) return { possible: [EI, AD], why: 'another port saw the same mapping; no other-IP test (need server B or an alternate IP)' };
  return { possible: [EI, AD, APD], why: 'no mapping test was possible (need server B or an alternate address on A)' };
}

const exact = (possible: readonly NatBehaviour[]): NatBehaviour | 'unknown' => (possible.length === 1 ? possible[0]! : 'unknown');
const strictest = (possible: readonly NatBehaviour[]): NatBehaviour => possible.reduce((a, b) => (ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a));
const CONE: Readonly<Record<NatBehaviour, NatType>> = { 'endpoint-independent': 'full-cone', 'address-dependent': 'restricted', 'address-and-port-dependent': 'port-restricted' };

/** The classic NAT type from the test outcomes. Pure. */
export function classifyNatResults(results: NatProbeResults): NatVerdict {
  const { primary } = results;
  if (!ok(primary)) {
    const answered = [results.otherIp, results.changeIpAndPort, results.changePort, results.otherPort].find(ok);
    if (answered) {
      return { type: 'unknown', publicAddress: answered.mapped, mapping: 'unknown', filtering: 'unknown', reason: 'server A did not answer, another test did' };
    }
    return { type: 'udp-blocked', mapping: 'unknown', filtering: 'unknown', reason: 'no STUN server answered over UDP' };
  }
  const publicAddress = primary.mapped;
  const natted = !results.localAddresses.some((local) => sameTransportAddress(local, publicAddress));
  const filtering = possibleFiltering(results.changeIpAndPort, results.changePort);
  const mapping = possibleMapping(natted, publicAddress, results.otherIp, results.otherPort);
  const fields = { publicAddress, mapping: exact(mapping.possible), filtering: exact(filtering.possible) };
  const why = `mapping: ${mapping.why}; filtering: ${filtering.why}`;

  if (!natted) {
    if (filtering.possible.includes(EI)) return { type: 'open', ...fields, reason: `no NAT: mapped address is local; ${why}` };
    return { type: CONE[strictest(filtering.possible)], ...fields, reason: `no NAT, but a firewall filters; ${why}` };
  }
  if (!mapping.possible.includes(EI)) return { type: 'symmetric', ...fields, reason: why };
  if (mapping.possible.length > 1) return { type: 'unknown', ...fields, reason: `NAT with undetermined mapping; ${why}` };
  const type = CONE[strictest(filtering.possible)];
  const assumed = filtering.possible.length > 1 ? ` (assuming the most restrictive of ${filtering.possible.join(', ')})` : '';
  return { type, ...fields, reason: `${why}${assumed}` };
}

/** Two verdicts that would lead to the same decisions (the reason text aside). */
export function sameVerdict(a: NatVerdict, b: NatVerdict): boolean {
  const samePublic =
    a.publicAddress === undefined || b.publicAddress === undefined
      ? a.publicAddress === b.publicAddress
      : sameIp(a.publicAddress.address, b.publicAddress.address) && a.publicAddress.port === b.publicAddress.port;
  return a.type === b.type && a.mapping === b.mapping && a.filtering === b.filtering && samePublic;
}
