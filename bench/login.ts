/**
 * bench/login: time from process start to "logged in and attached" for a
 * phone, cold (empty host cache; bootstrap list with two dead entries and
 * one live supernode; no credential) and warm (persisted host cache and
 * credential), over real processes on loopback. Seed figure: Skype needed
 * 3–7 s (public or NAT), 34 s behind a UDP-blocking firewall.
 *
 *   npm run build && node dist/bench/login.js [--runs N]
 */
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { parseArgs } from 'node:util';
import { LabNetwork } from '../test/helpers/network.js';
import { spawnCli } from '../test/helpers/process.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const RUNS = Number(values.runs);
const BASE = 47_000;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const lab = await LabNetwork.create({ loginPort: BASE, users: ['sn1', 'alice'] });
  // A stale entry of the worst kind: something accepts the TCP connection and never speaks.
  const silent: Server = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(BASE + 8, '127.0.0.1', r));
  try {
    await lab.startLoginServer();
    await lab.start('sn1', { port: BASE + 1, supernode: true });
    await lab.nodes.get('sn1')!.proc.waitFor((l) => l.msg === 'logged in');
    const phone = await lab.start('alice', {
      port: BASE + 2,
      bootstrap: [`127.0.0.1:${BASE + 9}` /* refused */, `127.0.0.1:${BASE + 8}` /* silent */, `127.0.0.1:${BASE + 1}`],
      waitFor: 'attached to supernode',
    });
    await phone.proc.stop();

    const results: Record<'cold' | 'warm', { total: number[]; inProcess: number[] }> = { cold: { total: [], inProcess: [] }, warm: { total: [], inProcess: [] } };
    for (let i = 0; i < RUNS; i++) {
      for (const kind of ['cold', 'warm'] as const) {
        if (kind === 'cold') {
          // Forget everything but the identity and the configured port: host cache, credential.
          await rm(`${phone.dir}/host-cache.json`, { force: true });
          await rm(`${phone.dir}/credential.json`, { force: true });
        }
        const started = performance.now();
        const proc = spawnCli(['start', '--config', phone.configPath]);
        const nodeStarted = await proc.waitFor((l) => l.msg === 'node started');
        await proc.waitFor((l) => l.msg === 'attached to supernode');
        results[kind].total.push(performance.now() - started);
        results[kind].inProcess.push(Date.parse(String((await proc.waitFor((l) => l.msg === 'attached to supernode')).time)) - Date.parse(String(nodeStarted.time)));
        await proc.stop();
      }
    }
    console.log(`Login time, phone process on loopback, ${RUNS} runs each (p50 / p95 ms)`);
    console.log('                    process start -> attached   node started -> attached   Skype (seeds)');
    for (const kind of ['cold', 'warm'] as const) {
      const r = results[kind];
      console.log(
        `  ${kind === 'cold' ? 'cold (2 dead + 1 live)' : 'warm (cached)         '}  ${percentile(r.total, 50).toFixed(0).padStart(6)} / ${percentile(r.total, 95).toFixed(0).padEnd(6)}            ${percentile(r.inProcess, 50).toFixed(0).padStart(5)} / ${percentile(r.inProcess, 95).toFixed(0).padEnd(5)}              3000-7000`,
      );
    }
    console.log('  target: < 500 ms on a LAN. "process start" includes starting Node.js itself.');
  } finally {
    silent.close();
    await lab.stopAll();
  }
}

await main();
