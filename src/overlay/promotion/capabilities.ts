import { availableParallelism, loadavg, networkInterfaces as osNetworkInterfaces, platform } from 'node:os';
import type { Systeminformation } from 'systeminformation';
import { canonicalIp } from '../../nat/stun/address.js';

/**
 * The local facts supernode promotion looks at (issue 8, DESIGN.md
 * "Supernode promotion"): CPU cores and load, free memory, network
 * interfaces with their addresses and link speed.
 *
 * `CapabilitySource` is the boundary: `SystemCapabilitySource` reads the
 * machine through systeminformation (and `node:os` where it is more
 * complete); tests pass a fake. The assessment (assessment.ts) is pure and
 * takes the result.
 */

export interface InterfaceFacts {
  /** Interface name (`eth0`, `wlan0`, `lo`). */
  name: string;
  /** Every IP address on the interface, canonical text (IPv6 without zone id). */
  addresses: string[];
  /** Loopback or otherwise internal to the host. */
  internal: boolean;
  /** Link speed in Mbit/s as the driver reports it; null when unknown (virtual, Wi-Fi on many drivers, containers). */
  speedMbps: number | null;
  /** `up`, `down`, `unknown` ... as the OS reports it. */
  operstate: string;
}

export interface Capabilities {
  /** CPU cores usable by this process (>= 1). */
  cores: number;
  /** 1-minute load average (runnable tasks, all cores together). */
  load1: number;
  /** CPU busy share since the previous sample, 0..100; null when not known. */
  cpuBusyPercent: number | null;
  /** Memory available to new work without swapping (MiB): MemAvailable on Linux, not MemFree. */
  freeMemoryMb: number;
  /** Total memory (MiB). */
  totalMemoryMb: number;
  interfaces: InterfaceFacts[];
}

/** Where the facts come from; fake it in tests. */
export interface CapabilitySource {
  read(): Promise<Capabilities>;
}

const MIB = 1024 * 1024;

/** Reads this machine with systeminformation. */
export class SystemCapabilitySource implements CapabilitySource {
  async read(): Promise<Capabilities> {
    // Loaded at the first check, not at start-up: the module costs ~10 MB of RSS and ~30 ms.
    const { default: si } = await import('systeminformation');
    const [load, mem, ifaces] = await Promise.all([si.currentLoad(), si.mem(), si.networkInterfaces()]);
    const cores = Math.max(1, availableParallelism());
    const cpuBusyPercent = Number.isFinite(load.currentLoad) ? round2(load.currentLoad) : null;
    // Windows has no load average (os.loadavg() gives zeros): estimate it from the busy share.
    const load1 = platform() === 'win32' && cpuBusyPercent !== null ? round2((cpuBusyPercent / 100) * cores) : round2(loadavg()[0] ?? 0);
    // `available` is 0 on systems where systeminformation cannot tell it; fall back to `free` there.
    const availableBytes = mem.available > 0 ? mem.available : mem.free;
    return {
      cores,
      load1,
      cpuBusyPercent,
      freeMemoryMb: Math.floor(availableBytes / MIB),
      totalMemoryMb: Math.floor(mem.total / MIB),
      interfaces: mergeInterfaces(Array.isArray(ifaces) ? ifaces : [ifaces]),
    };
  }
}

/**
 * systeminformation reports one IPv4 and one IPv6 address per interface;
 * `os.networkInterfaces()` has them all (aliases, several IPv6 addresses),
 * so the addresses are the union of both.
 */
function mergeInterfaces(ifaces: readonly Systeminformation.NetworkInterfacesData[]): InterfaceFacts[] {
  const osIfaces = osNetworkInterfaces();
  const result = new Map<string, InterfaceFacts>();
  for (const iface of ifaces) {
    const addresses = [iface.ip4, iface.ip6, ...(osIfaces[iface.iface] ?? []).map((a) => a.address)];
    result.set(iface.iface, {
      name: iface.iface,
      addresses: uniqueIps(addresses),
      internal: iface.internal,
      speedMbps: typeof iface.speed === 'number' && Number.isFinite(iface.speed) && iface.speed > 0 ? iface.speed : null,
      operstate: iface.operstate || 'unknown',
    });
  }
  for (const [name, infos] of Object.entries(osIfaces)) {
    if (result.has(name) || infos === undefined) continue;
    result.set(name, {
      name,
      addresses: uniqueIps(infos.map((a) => a.address)),
      internal: infos.every((a) => a.internal),
      speedMbps: null,
      operstate: 'unknown',
    });
  }
  return [...result.values()];
}

function uniqueIps(addresses: readonly string[]): string[] {
  const out: string[] = [];
  for (const text of addresses) {
    const ip = text ? canonicalIp(text) : undefined;
    if (ip !== undefined && !out.includes(ip)) out.push(ip);
  }
  return out;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/**
 * The IP of an address as the node reports it: `203.0.113.7`,
 * `203.0.113.7:4000`, `[2001:db8::1]:4000` or `2001:db8::1`. Undefined
 * when it is none of these.
 */
export function ipOf(address: string): string | undefined {
  const bare = canonicalIp(address);
  if (bare !== undefined) return bare;
  const match = /^\[([^\]]+)\]:\d{1,5}$/.exec(address) ?? /^([^:[\]]+):\d{1,5}$/.exec(address);
  return match ? canonicalIp(match[1]!) : undefined;
}

/**
 * The interface whose address is `publicAddress` (the address STUN
 * reported, with or without a port), or undefined when none is — the node
 * is behind NAT, or the address is not an IP. Internal (loopback)
 * interfaces do not count.
 */
export function interfaceWithAddress(publicAddress: string, interfaces: readonly InterfaceFacts[]): InterfaceFacts | undefined {
  const ip = ipOf(publicAddress);
  if (ip === undefined) return undefined;
  return interfaces.find((iface) => !iface.internal && iface.addresses.some((a) => canonicalIp(a) === ip));
}

/** True when `publicAddress` (as STUN reported it, port optional) is one of this node's own interface addresses. */
export function isOwnAddress(publicAddress: string, interfaces: readonly InterfaceFacts[]): boolean {
  return interfaceWithAddress(publicAddress, interfaces) !== undefined;
}
