/**
 * Test-side helpers around udp-probe.mjs: start probe servers in a lab host,
 * run probe clients and parse what they print, and name the NAT behaviour
 * (RFC 4787) that the results show.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NetLab } from './lab.js';

export const PROBE = fileURLToPath(new URL('./udp-probe.mjs', import.meta.url));

export type Via = 'self' | 'alt-port' | 'alt-addr' | 'alt-both' | 'peer';
export const ALL_VIAS: readonly Via[] = ['self', 'alt-port', 'alt-addr', 'alt-both', 'peer'];

export interface MapResult {
  local: string;
  results: Array<{ target: string; mapped: string | null }>;
}

export interface FilterResult {
  local: string;
  target: string;
  mapped: string | null;
  arrived: Via[];
  replies: Array<{ via: Via; source: string; mapped: string }>;
}

export interface TcpResult {
  target: string;
  mapped: string | null;
  error?: string;
}

export interface ProbeServer {
  child: ChildProcess;
  /** Requests the server has seen: the source address (as mapped by any NAT) and the endpoint it reached. */
  requests: Array<{ id: string; from: string; to: string }>;
}

/** Start `udp-probe.mjs server` in a host and wait for its ready line. */
export function startProbeServer(lab: NetLab, host: string, args: string[], timeoutMs = 5000): Promise<ProbeServer> {
  const child = lab.spawn(host, process.execPath, [PROBE, 'server', ...args]);
  const server: ProbeServer = { child, requests: [] };
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe server on ${host} not ready after ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`probe server on ${host} exited with ${String(code)}: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as { event: string; id: string; from: string; to: string };
      if (event.event === 'ready') {
        clearTimeout(timer);
        resolve(server);
      } else if (event.event === 'request') {
        server.requests.push({ id: event.id, from: event.from, to: event.to });
      }
    });
  });
}

/** Run a probe client command in a host and parse its one JSON line. */
export async function probe<T>(lab: NetLab, host: string, args: string[]): Promise<T> {
  const result = await lab.exec(host, process.execPath, [PROBE, ...args], { timeoutMs: 10_000 });
  if (result.code !== 0) throw new Error(`udp-probe ${args.join(' ')} on ${host} exited ${String(result.code)}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

export type MappingBehaviour = 'no-nat' | 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'blocked' | 'inconsistent';

/**
 * RFC 4787 section 4.1 mapping behaviour from one local socket's mapped
 * addresses towards [A:p, A:p2, A2:p, B:p] (same address/other port, other
 * address, other host), in that order.
 */
export function classifyMapping(result: MapResult, hostAddress: string): MappingBehaviour {
  const mapped = result.results.map((r) => r.mapped);
  if (mapped.every((m) => m === null)) return 'blocked';
  if (mapped.some((m) => m === null) || mapped.length !== 4) return 'inconsistent';
  const [aP, aP2, a2P, bP] = mapped as string[];
  const localPort = result.local.split(':')[1];
  if (mapped.every((m) => m === `${hostAddress}:${localPort}`)) return 'no-nat';
  if (aP === aP2 && aP === a2P && aP === bP) return 'endpoint-independent';
  if (aP === aP2 && a2P !== aP && bP !== aP) return 'address-dependent';
  if (new Set(mapped).size === 4) return 'address-and-port-dependent';
  return 'inconsistent';
}

/** RFC 4787 section 5 filtering behaviour from which CHANGE-REQUEST style replies got through. */
export function classifyFiltering(arrived: readonly Via[]): 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'blocked' | 'inconsistent' {
  const has = (v: Via): boolean => arrived.includes(v);
  if (!has('self')) return 'blocked';
  if (has('alt-port') && has('alt-addr') && has('alt-both') && has('peer')) return 'endpoint-independent';
  if (has('alt-port') && !has('alt-addr') && !has('alt-both') && !has('peer')) return 'address-dependent';
  if (arrived.length === 1) return 'address-and-port-dependent';
  return 'inconsistent';
}
