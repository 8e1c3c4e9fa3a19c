/**
 * What the phone publishes about itself: `info` (retained: who and what it
 * is) and `telemetry` (periodic figures). Built from `ctl status` — the same
 * handler the control API serves — and, for telemetry, the machine's figures
 * through the promotion checks' systeminformation source (imported lazily).
 * No secrets: status carries none, and nothing from the configuration is
 * copied here but the node's name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeStatus } from '../app/node.js';
import { defaultHostAddresses } from '../nat/path/path-service.js';
import type { CapabilitySource } from '../overlay/promotion/capabilities.js';
import type { ConfigVersion } from './topics.js';

/** The firmware version: the version of the package this file belongs to. */
export function firmwareVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'partyline' && pkg.version) return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

export interface InfoMessage {
  deviceId: string;
  name: string | null;
  firmware: string;
  /** Host addresses with the node's port, and the public address when STUN found one. */
  addresses: string[];
  port: number;
  role: string;
  nat: { type: string; publicAddress: string | null };
  user: string | null;
  loggedIn: boolean;
  config: { applied: ConfigVersion | null; pending: ConfigVersion | null };
  startedAt: string;
}

export function buildInfo(status: NodeStatus, facts: { firmware: string; name: string | undefined; applied: ConfigVersion | null; pending: ConfigVersion | null; startedAt: string; hostAddresses?: string[] }): InfoMessage {
  const hosts = facts.hostAddresses ?? defaultHostAddresses();
  const addresses = hosts.map((h) => (h.includes(':') ? `[${h}]:${status.port}` : `${h}:${status.port}`));
  if (status.nat.publicAddress && !addresses.includes(status.nat.publicAddress)) addresses.unshift(status.nat.publicAddress);
  return {
    deviceId: status.deviceId,
    name: facts.name ?? null,
    firmware: facts.firmware,
    addresses,
    port: status.port,
    role: status.role,
    nat: { type: status.nat.type, publicAddress: status.nat.publicAddress },
    user: status.user,
    loggedIn: status.loggedIn,
    config: { applied: facts.applied, pending: facts.pending },
    startedAt: facts.startedAt,
  };
}

export interface TelemetryMessage {
  at: string;
  uptimeS: number;
  role: string;
  loggedIn: boolean;
  supernode: { address: string; rttMs: number | null } | null;
  cpu: { cores: number; load1: number; busyPercent: number | null } | null;
  memory: { freeMb: number; totalMb: number; processRssMb: number };
  temperatureC: number | null;
  nat: string;
  /** The call now, with its quality figures; null when there is none. */
  call: { state: string; peer: string; path: string | null; mos: number | null; rttMs: number | null; jitterMs: number; packetsLost: number; packetsReceived: number } | null;
}

/** Machine figures telemetry adds to status: CPU and memory (capabilities) and the CPU temperature. */
export interface MachineFigures {
  cpu: TelemetryMessage['cpu'];
  freeMb: number;
  totalMb: number;
  temperatureC: number | null;
}

/** Reads the machine's figures; systeminformation is imported at the first reading, not at start-up. */
export async function readMachineFigures(capabilities: CapabilitySource): Promise<MachineFigures> {
  const [caps, temperatureC] = await Promise.all([capabilities.read(), cpuTemperature()]);
  return { cpu: { cores: caps.cores, load1: caps.load1, busyPercent: caps.cpuBusyPercent }, freeMb: caps.freeMemoryMb, totalMb: caps.totalMemoryMb, temperatureC };
}

async function cpuTemperature(): Promise<number | null> {
  const { default: si } = await import('systeminformation');
  const reading = await si.cpuTemperature();
  // systeminformation reports null (or -1 on some systems) where there is no sensor, as in most containers.
  return typeof reading.main === 'number' && reading.main > -1 ? reading.main : null;
}

export function buildTelemetry(status: NodeStatus, machine: MachineFigures | null, rssBytes: number, now: Date): TelemetryMessage {
  const call = status.call;
  return {
    at: now.toISOString(),
    uptimeS: status.uptimeS,
    role: status.role,
    loggedIn: status.loggedIn,
    supernode: status.supernode ? { address: status.supernode.address, rttMs: status.supernode.rttMs } : null,
    cpu: machine?.cpu ?? null,
    memory: { freeMb: machine?.freeMb ?? 0, totalMb: machine?.totalMb ?? 0, processRssMb: Math.round(rssBytes / (1024 * 1024)) },
    temperatureC: machine?.temperatureC ?? null,
    nat: status.nat.type,
    call: call
      ? { state: call.state, peer: call.peer, path: call.path, mos: call.mos, rttMs: call.rttMs, jitterMs: call.rtp.jitterMs, packetsLost: call.rtp.packetsLost, packetsReceived: call.rtp.packetsReceived }
      : null,
  };
}
