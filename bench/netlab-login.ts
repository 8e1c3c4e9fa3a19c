/**
 * bench/netlab-login: login time and media-path set-up time per network
 * setup, with real NAT in network namespaces (test/netlab), next to the
 * seeds' figures: Skype logged in in 3–7 s with or without NAT and in 34 s
 * behind a UDP-blocking firewall. Target: under 1 s for every setup.
 *
 * - Login: from spawning a phone process (cold: no credential, no host
 *   cache, one bootstrap supernode) to its "attached to supernode" log line.
 *   Node's own start-up (~0.4 s of it) is included: it is what a user waits.
 * - Path set-up: `ctl probe` between two phones of the setup, from sending
 *   the sealed offer to the first selected path (signalling through the
 *   supernodes, relay allocation, checks). Median of `--runs` probes.
 *
 * Needs root (network namespaces, nftables). Run:
 *
 *   npm run bench:netlab-login [-- --runs 5]
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { parseArgs, promisify } from 'node:util';
import { LabNetwork } from '../test/helpers/network.js';
import type { Placement } from '../test/helpers/network.js';
import { CLI } from '../test/helpers/process.js';
import { NetLab } from '../test/netlab/lab.js';
import type { NatKind } from '../test/netlab/lab.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Math.max(1, Number(values.runs));

interface Setup {
  name: string;
  seed: string;
  /** Caller and callee: [host, LAN, NAT kind]. */
  a: [string, string, NatKind];
  b: [string, string, NatKind];
}

const SETUPS: Setup[] = [
  { name: 'both public', seed: '3-7 s', a: ['pa', 'open-a', 'none'], b: ['pb', 'open-b', 'none'] },
  { name: 'one port-restricted', seed: '3-7 s', a: ['pc', 'open-c', 'none'], b: ['prx', 'pr-x', 'port-restricted'] },
  { name: 'both port-restricted', seed: '3-7 s', a: ['pry', 'pr-y', 'port-restricted'], b: ['prz', 'pr-z', 'port-restricted'] },
  { name: 'symmetric + port-restricted', seed: '3-7 s', a: ['sy', 'sym', 'symmetric'], b: ['prw', 'pr-w', 'port-restricted'] },
  { name: 'both UDP-blocked', seed: '34 s', a: ['fa', 'fw-a', 'udp-blocked'], b: ['fb', 'fw-b', 'udp-blocked'] },
  { name: 'same NAT', seed: '3-7 s', a: ['la', 'lan', 'port-restricted'], b: ['lb', 'lan', 'port-restricted'] },
];

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const availability = await NetLab.available();
  if (!availability.ok) {
    console.log(`bench/netlab-login: cannot build a network lab here (${availability.reason ?? 'unknown reason'})`);
    process.exitCode = 1;
    return;
  }
  await NetLab.cleanupStale();
  const lans = new Map<string, { name: string; nat: NatKind; hosts: string[] }>();
  for (const s of SETUPS) {
    for (const [host, lan, nat] of [s.a, s.b]) {
      const entry = lans.get(lan) ?? { name: lan, nat, hosts: [] };
      entry.hosts.push(host);
      lans.set(lan, entry);
    }
  }
  const net = await NetLab.create({ publicHosts: ['ls', 'sn1', 'sn2'], lans: [...lans.values()] });
  const phones = SETUPS.flatMap((s) => [s.a[0], s.b[0]]);
  const lab = await LabNetwork.create({ loginPort: 5061, users: ['sn1', 'sn2', ...phones] });
  const at = (host: string): Placement => ({ address: net.address(host), launch: (cmd, args, opts) => net.spawn(host, cmd, args, opts) });
  try {
    await lab.startLoginServer(at('ls'));
    const sn1 = `${net.address('sn1')}:4000`;
    await lab.start('sn1', { port: 4000, supernode: true, at: at('sn1') });
    await lab.start('sn2', { port: 4000, supernode: true, at: at('sn2'), bootstrap: [sn1] });
    await lab.nodes.get('sn2')!.proc.waitFor((l) => l.msg === 'logged in', 15_000);
    await new Promise((r) => setTimeout(r, 2_000)); // supernodes peer

    const login = new Map<string, number[]>();
    for (const phone of phones) {
      const started = performance.now();
      await lab.start(phone, { port: 5000, at: at(phone), bootstrap: [sn1], keepAliveS: 15, waitFor: 'attached to supernode' });
      login.set(phone, [performance.now() - started]);
    }
    // Cold logins again: forget credential and host cache, keep the device identity.
    for (let i = 1; i < RUNS; i++) {
      for (const phone of phones) {
        const node = lab.nodes.get(phone)!;
        await node.proc.stop();
        await rm(`${node.dir}/credential.json`, { force: true });
        await rm(`${node.dir}/host-cache.json`, { force: true });
        const started = performance.now();
        await lab.restart(phone, 'attached to supernode');
        login.get(phone)!.push(performance.now() - started);
      }
    }
    // NAT classification and the location record come right after attaching.
    await new Promise((r) => setTimeout(r, 3_000));

    console.log(`\nbench/netlab-login: ${RUNS} run(s) per figure, medians; real NAT in network namespaces`);
    console.log('setup                         NAT (a / b)                        login a   login b   path        path set-up   Skype login (seeds)');
    for (const s of SETUPS) {
      const nat = await Promise.all([s.a[0], s.b[0]].map(async (p) => {
        const { stdout } = await run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get(p)!.control, 'status', '--json']);
        return (JSON.parse(stdout) as { nat: { type: string } }).nat.type;
      }));
      const setups: number[] = [];
      let path = 'none';
      for (let i = 0; i < RUNS; i++) {
        try {
          const { stdout } = await run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get(s.a[0])!.control, 'probe', s.b[0], '--seconds', '0.3', '--json', '--timeout', '30000']);
          const report = JSON.parse(stdout) as { path: string | null; setupMs: number | null };
          path = report.path ?? 'none';
          if (report.setupMs !== null) setups.push(report.setupMs);
        } catch (err) {
          path = `error: ${(err as { stderr?: string }).stderr?.trim() ?? String(err)}`;
        }
      }
      const fmt = (ms: number): string => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : '-');
      console.log(
        `${s.name.padEnd(30)}${`${nat[0]} / ${nat[1]}`.padEnd(35)}${fmt(median(login.get(s.a[0])!)).padEnd(10)}${fmt(median(login.get(s.b[0])!)).padEnd(10)}${path.padEnd(12)}${fmt(median(setups)).padEnd(14)}${s.seed}`,
      );
    }
    console.log('\nTarget: login and path set-up under 1 s in every setup.');
  } finally {
    await lab.stopAll();
    await net.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
