import type { SupernodeConfig, SupernodePolicy } from '../../config/schema.js';
import { canonicalIp } from '../../nat/stun/address.js';
import { interfaceWithAddress, ipOf } from './capabilities.js';
import type { Capabilities } from './capabilities.js';

/**
 * Is this node fit to be a supernode right now? PURE: facts and the time
 * in, a verdict with its reasons out (DESIGN.md "Supernode promotion").
 *
 * Policy `auto` requires all of:
 * - public: the address STUN reports is one of the node's own interface
 *   addresses, AND another supernode connected back to it over TCP and UDP
 *   on its advertised port, to that same address, recently enough;
 * - bandwidth measured with a supernode (not the link speed) at least
 *   `minBandwidthKbps` each way, recently enough;
 * - uptime, free memory and load per core within the thresholds.
 * `never` is never eligible and `always` always is, whatever the facts.
 *
 * `reasons` say why not (only the failed checks) or, when eligible, why
 * yes (every check); `checks` has every check either way.
 */

/** Another supernode's attempt to reach this node back on its advertised port. */
export interface ReachbackResult {
  /** The IP (port optional) the other supernode reached, i.e. what it was told this node's address is. */
  address: string;
  tcp: boolean;
  udp: boolean;
  /** Who tried ("host:port" or name of the supernode), for the reasons. */
  by: string;
  /** When (ms since the epoch). */
  at: number;
}

/** A short, bounded transfer with a supernode. */
export interface BandwidthMeasurement {
  upKbps: number;
  downKbps: number;
  /** The supernode measured with. */
  with: string;
  /** When (ms since the epoch). */
  at: number;
}

export interface PromotionFacts {
  policy: SupernodePolicy;
  /** From NAT classification: its type (`open` = no NAT) and the server-reflexive address ("ip:port" or "ip"), null when unknown. */
  nat: { type: string; publicAddress: string | null };
  /** null until a supernode has tried. */
  reachback: ReachbackResult | null;
  /** null until measured. */
  bandwidth: BandwidthMeasurement | null;
  uptimeS: number;
  capabilities: Capabilities;
}

export type PromotionThresholds = Pick<
  SupernodeConfig,
  'minUptimeS' | 'minBandwidthKbps' | 'minFreeMemoryMb' | 'maxLoadPerCore' | 'bandwidthMaxAgeS' | 'reachbackMaxAgeS'
>;

export type CheckName = 'policy' | 'public-address' | 'reachback' | 'bandwidth' | 'uptime' | 'memory' | 'load';

export interface PromotionCheck {
  name: CheckName;
  ok: boolean;
  detail: string;
}

export interface Assessment {
  policy: SupernodePolicy;
  eligible: boolean;
  reasons: string[];
  checks: PromotionCheck[];
  /** When assessed (ms since the epoch). */
  at: number;
}

export function assess(facts: PromotionFacts, thresholds: PromotionThresholds, now: number): Assessment {
  if (facts.policy === 'never') {
    const check = { name: 'policy', ok: false, detail: 'policy never: this node stays an ordinary node' } as const;
    return { policy: facts.policy, eligible: false, reasons: [check.detail], checks: [check], at: now };
  }
  if (facts.policy === 'always') {
    const check = { name: 'policy', ok: true, detail: 'policy always: this node acts as a supernode whatever its resources' } as const;
    return { policy: facts.policy, eligible: true, reasons: [check.detail], checks: [check], at: now };
  }
  const checks: PromotionCheck[] = [
    publicAddressCheck(facts),
    reachbackCheck(facts, thresholds, now),
    bandwidthCheck(facts.bandwidth, thresholds, now),
    uptimeCheck(facts.uptimeS, thresholds),
    memoryCheck(facts.capabilities, thresholds),
    loadCheck(facts.capabilities, thresholds),
  ];
  const eligible = checks.every((c) => c.ok);
  const reasons = (eligible ? checks : checks.filter((c) => !c.ok)).map((c) => c.detail);
  return { policy: facts.policy, eligible, reasons, checks, at: now };
}

function publicAddressCheck(facts: PromotionFacts): PromotionCheck {
  const name = 'public-address';
  const { publicAddress, type } = facts.nat;
  if (publicAddress === null) {
    return { name, ok: false, detail: `public address not known yet (NAT type ${type}: STUN has not reported one)` };
  }
  const ip = ipOf(publicAddress) ?? publicAddress;
  const iface = interfaceWithAddress(publicAddress, facts.capabilities.interfaces);
  if (iface === undefined) {
    return { name, ok: false, detail: `public address ${ip} is not one of this node's interface addresses (behind NAT)` };
  }
  return { name, ok: true, detail: `public address ${ip} is the address of interface ${iface.name} (NAT type ${type})` };
}

function reachbackCheck(facts: PromotionFacts, thresholds: PromotionThresholds, now: number): PromotionCheck {
  const name = 'reachback';
  const rb = facts.reachback;
  if (rb === null) {
    return { name, ok: false, detail: 'reachability not confirmed: no supernode has connected back over TCP and UDP yet' };
  }
  const when = `${rb.by} ${ago(now - rb.at)}`;
  const ageS = (now - rb.at) / 1000;
  if (ageS > thresholds.reachbackMaxAgeS) {
    return { name, ok: false, detail: `reachability confirmation is stale: checked by ${when}, older than ${thresholds.reachbackMaxAgeS} s` };
  }
  const publicIp = facts.nat.publicAddress === null ? undefined : ipOf(facts.nat.publicAddress);
  const reachedIp = ipOf(rb.address) ?? canonicalIp(rb.address);
  if (publicIp !== undefined && reachedIp !== publicIp) {
    return { name, ok: false, detail: `reachability not confirmed for ${publicIp}: ${rb.by} reached ${reachedIp ?? rb.address}, an earlier address` };
  }
  if (!rb.tcp || !rb.udp) {
    const failed = [rb.tcp ? null : 'TCP', rb.udp ? null : 'UDP'].filter((p) => p !== null).join(' and ');
    return { name, ok: false, detail: `not reachable from outside over ${failed} (checked by ${when})` };
  }
  return { name, ok: true, detail: `reachable over TCP and UDP (checked by ${when})` };
}

function bandwidthCheck(bw: BandwidthMeasurement | null, thresholds: PromotionThresholds, now: number): PromotionCheck {
  const name = 'bandwidth';
  const need = thresholds.minBandwidthKbps;
  if (bw === null) return { name, ok: false, detail: 'bandwidth not measured yet' };
  const measured = `measured with ${bw.with} ${ago(now - bw.at)}`;
  if ((now - bw.at) / 1000 > thresholds.bandwidthMaxAgeS) {
    return { name, ok: false, detail: `bandwidth measurement is stale (${measured}, older than ${thresholds.bandwidthMaxAgeS} s)` };
  }
  const short: string[] = [];
  if (bw.upKbps < need) short.push(`${Math.floor(bw.upKbps)} kbit/s up`);
  if (bw.downKbps < need) short.push(`${Math.floor(bw.downKbps)} kbit/s down`);
  if (short.length > 0) return { name, ok: false, detail: `bandwidth ${short.join(', ')} < ${need} kbit/s needed (${measured})` };
  return { name, ok: true, detail: `bandwidth ${Math.round(bw.upKbps)} kbit/s up, ${Math.round(bw.downKbps)} kbit/s down >= ${need} kbit/s (${measured})` };
}

function uptimeCheck(uptimeS: number, thresholds: PromotionThresholds): PromotionCheck {
  const up = Math.floor(uptimeS);
  const ok = up >= thresholds.minUptimeS;
  return { name: 'uptime', ok, detail: `uptime ${up} s ${ok ? '>=' : '<'} ${thresholds.minUptimeS} s` };
}

function memoryCheck(caps: Capabilities, thresholds: PromotionThresholds): PromotionCheck {
  const ok = caps.freeMemoryMb >= thresholds.minFreeMemoryMb;
  return { name: 'memory', ok, detail: `free memory ${caps.freeMemoryMb} MiB ${ok ? '>=' : '<'} ${thresholds.minFreeMemoryMb} MiB` };
}

function loadCheck(caps: Capabilities, thresholds: PromotionThresholds): PromotionCheck {
  const cores = Math.max(1, caps.cores);
  const perCore = caps.load1 / cores;
  const ok = perCore <= thresholds.maxLoadPerCore;
  const plural = cores === 1 ? 'core' : 'cores';
  return {
    name: 'load',
    ok,
    detail: `load ${caps.load1} on ${cores} ${plural} (${perCore.toFixed(2)} per core ${ok ? '<=' : '>'} ${thresholds.maxLoadPerCore})`,
  };
}

/** "just now", "45 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return 'just now';
  if (s < 120) return `${s} s ago`;
  if (s < 2 * 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 2 * 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
