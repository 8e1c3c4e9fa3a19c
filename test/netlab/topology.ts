/**
 * The lab's address plan and the validation of a lab specification. Pure:
 * names and addresses in, a list of nodes out — no commands run here.
 *
 *   internet  10.200.0.0/16 on a bridge in its own namespace
 *   public host i      10.200.0.(10+i), extra addresses 10.200.k.(10+i)
 *   router of LAN j    WAN 10.200.0.(100+j); LAN 10.201.j.1/24
 *   host m of LAN j    10.201.j.(10+m)
 */
import { NetLabError } from './commands.js';
import { NAT_KINDS } from './nat-rules.js';
import type { NatKind } from './nat-rules.js';

export interface PublicHostSpec {
  name: string;
  /** How many addresses the host has on the internet (1–4; a STUN server for RFC 5780 needs 2). Default 1. */
  addresses?: number;
}

export interface LanSpec {
  /** Names the LAN and its router (usable wherever a host name is, e.g. exec in the router). */
  name: string;
  nat: NatKind;
  /** Host names on this LAN (1–8), behind the one router. */
  hosts: string[];
}

export interface LabSpec {
  /** Hosts on the internet bridge with public addresses (strings are shorthand for `{ name }`). */
  publicHosts?: Array<string | PublicHostSpec>;
  lans?: LanSpec[];
}

export type NodeRole = 'public' | 'router' | 'lan';

/** One namespace of the lab as the user sees it. */
export interface LabHost {
  name: string;
  role: NodeRole;
  namespace: string;
  /** The node's own address (a router's is its WAN address). */
  address: string;
  /** All addresses; public hosts may have several, a router has WAN then LAN. */
  addresses: string[];
  /** The address the internet sees: own address for public hosts and routers, the router's WAN for LAN hosts. */
  publicAddress: string;
  /** The LAN a router or LAN host belongs to, and its subnet (e.g. 10.201.0.0/24). */
  lan?: string;
  subnet?: string;
  nat?: NatKind;
}

export const INTERNET_PREFIX_LEN = 16;
export const LAN_PREFIX_LEN = 24;
const MAX_PUBLIC = 90;
const MAX_LANS = 50;
const MAX_LAN_HOSTS = 8;
const MAX_ADDRESSES = 4;
const NAME = /^[a-z][a-z0-9-]{0,19}$/;
const RESERVED = new Set(['inet']);

export function publicHostAddress(i: number, k = 0): string {
  return `10.200.${k}.${10 + i}`;
}
export function routerWanAddress(j: number): string {
  return `10.200.0.${100 + j}`;
}
export function lanSubnet(j: number): string {
  return `10.201.${j}.0/${LAN_PREFIX_LEN}`;
}
export function routerLanAddress(j: number): string {
  return `10.201.${j}.1`;
}
export function lanHostAddress(j: number, m: number): string {
  return `10.201.${j}.${10 + m}`;
}

/** Every problem with a spec at once (STYLE.md 8), or the normalised public host list. */
export function validateSpec(spec: LabSpec): { publicHosts: Required<PublicHostSpec>[]; lans: LanSpec[] } {
  const issues: string[] = [];
  const seen = new Set<string>();
  const checkName = (where: string, name: unknown): void => {
    if (typeof name !== 'string' || !NAME.test(name)) {
      issues.push(`${where}: name ${JSON.stringify(name)}, expected lower-case letters, digits and '-', starting with a letter, at most 20 characters`);
    } else if (RESERVED.has(name)) {
      issues.push(`${where}: name "${name}" is reserved for the internet namespace`);
    } else if (seen.has(name)) {
      issues.push(`${where}: name "${name}" is used twice (hosts and LANs share one name space)`);
    }
    if (typeof name === 'string') seen.add(name);
  };
  const publicHosts = (spec.publicHosts ?? []).map((h, i) => {
    const host = typeof h === 'string' ? { name: h } : h;
    checkName(`publicHosts[${i}]`, host.name);
    const addresses = host.addresses ?? 1;
    if (!Number.isInteger(addresses) || addresses < 1 || addresses > MAX_ADDRESSES) {
      issues.push(`publicHosts[${i}].addresses: ${String(addresses)}, expected an integer 1–${MAX_ADDRESSES}`);
    }
    return { name: host.name, addresses };
  });
  if (publicHosts.length > MAX_PUBLIC) issues.push(`publicHosts: ${publicHosts.length} hosts, at most ${MAX_PUBLIC}`);
  const lans = spec.lans ?? [];
  if (lans.length > MAX_LANS) issues.push(`lans: ${lans.length} LANs, at most ${MAX_LANS}`);
  lans.forEach((lan, j) => {
    checkName(`lans[${j}]`, lan.name);
    if (!NAT_KINDS.includes(lan.nat)) issues.push(`lans[${j}].nat: ${JSON.stringify(lan.nat)}, expected one of ${NAT_KINDS.join(', ')}`);
    if (!Array.isArray(lan.hosts) || lan.hosts.length < 1 || lan.hosts.length > MAX_LAN_HOSTS) {
      issues.push(`lans[${j}].hosts: expected 1–${MAX_LAN_HOSTS} host names`);
    } else {
      lan.hosts.forEach((h, m) => checkName(`lans[${j}].hosts[${m}]`, h));
    }
  });
  if (publicHosts.length + lans.length === 0) issues.push('spec: no public hosts and no LANs');
  if (issues.length > 0) throw new NetLabError('ERR_NETLAB_SPEC', `invalid lab spec:\n  ${issues.join('\n  ')}`);
  return { publicHosts, lans };
}

/** The nodes of a valid spec with their namespaces and addresses. */
export function layout(spec: ReturnType<typeof validateSpec>, prefix: string): LabHost[] {
  const nodes: LabHost[] = [];
  spec.publicHosts.forEach((h, i) => {
    const addresses = Array.from({ length: h.addresses }, (_, k) => publicHostAddress(i, k));
    nodes.push({ name: h.name, role: 'public', namespace: prefix + h.name, address: addresses[0]!, addresses, publicAddress: addresses[0]! });
  });
  spec.lans.forEach((lan, j) => {
    const wan = routerWanAddress(j);
    const subnet = lanSubnet(j);
    nodes.push({ name: lan.name, role: 'router', namespace: prefix + lan.name, address: wan, addresses: [wan, routerLanAddress(j)], publicAddress: wan, lan: lan.name, subnet, nat: lan.nat });
    lan.hosts.forEach((name, m) => {
      const address = lanHostAddress(j, m);
      nodes.push({ name, role: 'lan', namespace: prefix + name, address, addresses: [address], publicAddress: lan.nat === 'none' ? address : wan, lan: lan.name, subnet, nat: lan.nat });
    });
  });
  return nodes;
}
