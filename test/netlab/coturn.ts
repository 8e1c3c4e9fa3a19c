/**
 * coturn as the reference NAT classifier: `turnserver` with two addresses
 * (RFC 5780 needs an alternate address and port) on a public lab host, and
 * `turnutils_natdiscovery -m -f` from a host behind the NAT under test.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './commands.js';
import type { NetLab } from './lab.js';

export interface Coturn {
  turnserver: string;
  natdiscovery: string;
  timeout: string;
}

/** The coturn binaries, or why they cannot be used. */
export function findCoturn(): Coturn | string {
  const turnserver = findBinary('turnserver');
  const natdiscovery = findBinary('turnutils_natdiscovery');
  const timeout = findBinary('timeout');
  if (!turnserver || !natdiscovery) return 'coturn is not installed (apt-get install -y coturn; .ci/run does not install it yet)';
  if (!timeout) return 'coreutils timeout is missing';
  return { turnserver, natdiscovery, timeout };
}

export interface RunningTurnServer {
  child: ChildProcess;
  stop: () => Promise<void>;
}

/** Start turnserver as a STUN server on both of the host's addresses (port 3478, alternate port 3479). */
export async function startTurnServer(lab: NetLab, coturn: Coturn, host: string, timeoutMs = 5000): Promise<RunningTurnServer> {
  const [primary, alternate] = lab.addresses(host);
  if (!primary || !alternate) throw new Error(`host ${host} needs two addresses for RFC 5780, has ${lab.addresses(host).join(', ')}`);
  const dir = await mkdtemp(join(tmpdir(), 'pl-coturn-'));
  const child = lab.spawn(host, coturn.turnserver, [
    '-n', '--no-cli', '--no-tls', '--no-dtls', '--no-auth', '--simple-log', '--log-file', 'stdout',
    '--pidfile', join(dir, 'turnserver.pid'), '-L', primary, '-L', alternate, '-E', primary, '-p', '3478',
  ]);
  let log = '';
  child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`turnserver on ${host} not ready after ${timeoutMs} ms:\n${log}`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`turnserver on ${host} exited with ${String(code)}:\n${log}`));
    });
    child.stdout?.on('data', (b: Buffer) => {
      log += b.toString();
      // Listeners are opened once the relay threads report; "turn server id=N created" is logged per worker.
      if (/turn server id=\d+ created/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { child, stop };
}

export interface NatDiscovery {
  /** e.g. ["Endpoint Independent Mapping", "Address and Port Dependent Filtering"] */
  verdicts: string[];
  output: string;
  code: number | null;
}

/** Run `turnutils_natdiscovery -m -f <server>` in a host (wrapped in `timeout`, it can hang behind NAT). */
export async function natDiscovery(lab: NetLab, coturn: Coturn, host: string, server: string): Promise<NatDiscovery> {
  const result = await lab.exec(host, coturn.timeout, ['20', coturn.natdiscovery, '-m', '-f', server], { timeoutMs: 25_000 });
  const output = result.stdout + result.stderr;
  const verdicts = [...output.matchAll(/NAT with (.+?)!/g)].map((m) => m[1]!);
  return { verdicts, output, code: result.code };
}
