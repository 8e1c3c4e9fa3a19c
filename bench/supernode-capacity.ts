/**
 * bench/supernode-capacity: how many ordinary nodes one supernode process
 * carries. One real `partyline start` supernode (policy always, its own YAML
 * config from LabNetwork) is ramped 1,000 → 5,000 → 10,000 attached nodes
 * (the same process throughout, as nodes accumulate on a real supernode) by
 * a load generator in another process (bench/lib/load-client.ts). Every node
 * has its own identity and a credential signed with the lab's login server
 * key (no login round trip: that is what credentials are for), connects from
 * a loopback source address 127.0.x.y (10 nodes per address, under the
 * default limit of 16 links per address), runs Noise XX, attaches, then
 * sends a keep-alive ping every keepAliveS. Each side holds ~10,000 sockets:
 * the 20,000 open-file limit of this machine is enough, nothing is raised.
 *
 * Per size: attach rate while ramping (200 attaches in flight) and the
 * supernode's CPU per attach; over one full keep-alive interval of steady
 * state its RSS (VmRSS, sampled every second) and CPU % (utime + stime);
 * its own count (`ctl status` → attachedNodes). A small probe preloaded into
 * the supernode (bench/lib/mem-probe.ts, via NODE_OPTIONS=--import) tells
 * where the RSS sits: V8 heap resident and live, ArrayBuffers, the rest.
 * Everything started is stopped at the end, on failure and on Ctrl-C; a
 * process that stops answering is checked for a hung main thread.
 *
 *   npm run bench:supernode-capacity
 *   node dist/bench/supernode-capacity.js [--sizes 1000,5000,10000] [--parallel 200]
 *        [--keepalive 30] [--per-address 10] [--snapshot]
 *
 * --keepalive 60 is the production default; 30 (the default here) keeps the
 * run near two minutes and puts one supernode gossip round (every 30 s) in
 * each window. --snapshot writes a V8 heap snapshot of the supernode at the
 * largest size and keeps it (the snapshot briefly needs ~400 MB more).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { callControl } from '../src/control/client.js';
import { LabNetwork } from '../test/helpers/network.js';
import type { LabNode } from '../test/helpers/network.js';
import type { AttachedReply, LoadCommand, LoadReply, PreparedReply, StatsReply } from './lib/load-protocol.js';
import type { ProbeReply, ProbeRequest } from './lib/mem-probe.js';
import { CpuMeter, hangCheck, memoryKb, RssSampler } from './lib/proc-stats.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,5000,10000' },
    parallel: { type: 'string', default: '200' },
    keepalive: { type: 'string', default: '30' },
    'per-address': { type: 'string', default: '10' },
    snapshot: { type: 'boolean', default: false },
  },
});
const SIZES = values.sizes.split(',').map(Number);
const PARALLEL = Number(values.parallel);
const KEEPALIVE_S = Number(values.keepalive);
const PER_ADDRESS = Number(values['per-address']);
const MAX_NODES = Math.max(...SIZES) + 2_000;
const BASE = 47_200;
const TARGET_NODES = 10_000;
const TARGET_RSS_MB = 200;
const HERE = dirname(fileURLToPath(import.meta.url));

for (const [name, ok] of [
  ['--sizes: ascending positive integers', SIZES.every((n, i) => Number.isInteger(n) && n > 0 && (i === 0 || n > SIZES[i - 1]!))],
  ['--parallel: a positive integer', Number.isInteger(PARALLEL) && PARALLEL > 0],
  ['--keepalive: seconds, 5..3600 (network.keepAliveS)', Number.isInteger(KEEPALIVE_S) && KEEPALIVE_S >= 5 && KEEPALIVE_S <= 3600],
  ['--per-address: 1..16 (the supernode allows 16 links per address by default)', Number.isInteger(PER_ADDRESS) && PER_ADDRESS >= 1 && PER_ADDRESS <= 16],
] as const) {
  if (!ok) throw new Error(`expected ${name}`);
}

const MB = 1024 * 1024;
/**
 * Every Noise handshake generates its ephemeral key with generateKeyPairSync
 * and exports it as JWK (src/crypto/noise/dh.ts generateKeyPair). On Node 20
 * that can deadlock the process for good (ExportJWKEdKey holds the key's
 * mutex while allocating; a GC in that allocation finalises the KeyGenJob,
 * whose destructor waits for the same mutex).
 */
const HANG_HINT = ': probably the Node 20 generateKeyPairSync + export({format: "jwk"}) deadlock in src/crypto/noise/dh.ts generateKeyPair (gdb: ~KeyGenJob -> uv_mutex_lock inside ExportJWKEdKey)';
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The load-generator process: commands out, one reply per command back. */
class LoadGenerator {
  readonly child: ChildProcess;
  #waiting: Array<{ type: LoadReply['type']; resolve: (reply: LoadReply) => void; reject: (err: Error) => void }> = [];
  #exited: Promise<void>;

  constructor() {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    delete env.BENCH_MEM_PROBE_DIR;
    this.child = fork(join(HERE, 'lib', 'load-client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env, execArgv: [] });
    this.child.on('message', (reply: LoadReply) => {
      if (reply.type === 'error') {
        for (const w of this.#waiting.splice(0)) w.reject(new Error(`load generator: ${reply.message}`));
        return;
      }
      const i = this.#waiting.findIndex((w) => w.type === reply.type);
      if (i >= 0) this.#waiting.splice(i, 1)[0]!.resolve(reply);
    });
    this.#exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    void this.#exited.then(() => {
      for (const w of this.#waiting.splice(0)) w.reject(new Error('load generator exited'));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Send a command and wait for its reply; a generator that does not answer in time is reported (hung or not). */
  call<T extends LoadReply>(command: LoadCommand, expect: T['type'], timeoutMs = 30_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        type: expect,
        resolve: (reply: LoadReply) => {
          clearTimeout(timer);
          resolve(reply as T);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        void hangCheck(this.pid).then(
          ({ hung, wchan }) => reject(new Error(`load generator: no "${expect}" reply to "${command.type}" within ${timeoutMs / 1000} s${hung ? `; its main thread is blocked (wchan ${wchan}, no CPU time)${HANG_HINT}` : ''}`)),
          (err: unknown) => reject(new Error(`load generator: no "${expect}" reply within ${timeoutMs / 1000} s (${String(err)})`)),
        );
      }, timeoutMs);
      timer.unref();
      this.#waiting.push(waiter);
      this.child.send(command);
    });
  }

  /** Close every link and end the process; kill it if it lingers. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) {
      await Promise.race([this.call({ type: 'close' }, 'closed').catch(() => undefined), sleep(5_000, undefined, { ref: false })]);
    }
    if (await Promise.race([this.#exited.then(() => true), sleep(5_000, undefined, { ref: false }).then(() => false)])) return;
    this.child.kill('SIGKILL');
    await this.#exited;
  }
}

/** Asks the probe preloaded into the supernode for its memory figures (after a full GC when `gc`). */
async function probe(pid: number, dir: string, id: number, options: { gc: boolean; snapshot?: boolean }): Promise<ProbeReply> {
  const request: ProbeRequest = { id, gc: options.gc, snapshot: options.snapshot ?? false };
  await writeFile(join(dir, 'request.json'), JSON.stringify(request));
  process.kill(pid, 'SIGUSR2');
  const path = join(dir, `reply-${id}.json`);
  const deadline = performance.now() + (request.snapshot ? 180_000 : 10_000);
  while (!existsSync(path)) {
    if (performance.now() > deadline) throw new Error(`memory probe: no ${path} from the supernode`);
    await sleep(50);
  }
  return JSON.parse(await readFile(path, 'utf8')) as ProbeReply;
}

/** Memory of the supernode at one size: /proc figures, then the probe's view as it is, then after a full GC. */
interface Memory {
  rss: { avg: number; max: number };
  peakKb: number;
  anonKb: number;
  fileKb: number;
  asIs: ProbeReply;
  live: ProbeReply;
}

interface Step {
  size: number;
  ramp: AttachedReply;
  rampCpu: { supernode: { percent: number; cpuS: number }; generator: { percent: number } };
  steady: StatsReply;
  steadyCpu: number;
  windowS: number;
  statusCount: number;
  mem: Memory;
}

interface Baseline {
  cpu: number;
  mem: Memory;
}

const col = (value: string, width: number): string => value.padStart(width);

function printReport(base: Baseline, steps: Step[], keepAliveS: number, snapshot: string | undefined, supernodeLog: Array<Record<string, unknown>>, loadAverage: { start: string; end: string }): void {
  const baseRss = base.mem.rss.avg;
  const perNode = (s: Step): number => (s.mem.rss.avg - baseRss) / s.size;
  console.log('');
  console.log(`Supernode capacity: one \`partyline start\` supernode process (policy always) ramped ${steps.map((s) => fmt(s.size)).join(' -> ')} attached nodes`);
  console.log(`by a load generator in a second process (${PARALLEL} attaches in flight, ${PER_ADDRESS} nodes per loopback source address 127.0.x.y).`);
  console.log(`Keep-alive every ${keepAliveS} s (production default 60 s). ${process.arch}, ${availableParallelism()} CPUs shared by both processes, Node ${process.version}.`);
  console.log('');
  console.log('Ramp: TCP connect + Noise XX + attach with a credential');
  console.log('   nodes    added   attach/s   latency p50 / p99 ms   supernode CPU %   supernode CPU ms/attach (= attaches/s per core)   generator CPU %   failures');
  for (const s of steps) {
    const msPerAttach = (1000 * s.rampCpu.supernode.cpuS) / Math.max(1, s.ramp.added);
    console.log(
      `  ${col(fmt(s.size), 6)}  ${col(fmt(s.ramp.added), 7)}   ${col(fmt(s.ramp.added / (s.ramp.ms / 1000)), 8)}   ${col(`${fmt(s.ramp.latency.p50)} / ${fmt(s.ramp.latency.p99)}`, 20)}   ${col(fmt(s.rampCpu.supernode.percent), 15)}   ${col(`${fmt(msPerAttach, 2)} (${fmt(1000 / msPerAttach)})`, 45)}   ${col(fmt(s.rampCpu.generator.percent), 15)}   ${col(fmt(s.ramp.failures), 8)}`,
    );
  }
  console.log(`  load average of the machine: ${loadAverage.start} at the start, ${loadAverage.end} at the end (other work shares these ${availableParallelism()} CPUs: the attach rate is bounded by both processes' CPU, ms/attach is the supernode's own cost)`);
  console.log('');
  console.log(`Steady state over one keep-alive interval (${fmt(steps[0]?.windowS ?? keepAliveS)} s); RSS sampled every second; CPU 100 % = one core`);
  console.log('   nodes   ctl status attachedNodes   RSS MB avg / max   RSS KB per node (vs idle / per added node)   CPU %   keep-alives/s   rtt p50 / p99 ms   dropped');
  console.log(`  ${col('idle', 6)}   ${col('0', 24)}   ${col(`${fmt(base.mem.rss.avg / 1024, 1)} / ${fmt(base.mem.rss.max / 1024, 1)}`, 16)}   ${col('', 42)}   ${col(fmt(base.cpu, 1), 5)}`);
  for (const [i, s] of steps.entries()) {
    const before = i === 0 ? { size: 0, rss: baseRss } : { size: steps[i - 1]!.size, rss: steps[i - 1]!.mem.rss.avg };
    const marginal = (s.mem.rss.avg - before.rss) / (s.size - before.size);
    console.log(
      `  ${col(fmt(s.size), 6)}   ${col(fmt(s.statusCount), 24)}   ${col(`${fmt(s.mem.rss.avg / 1024, 1)} / ${fmt(s.mem.rss.max / 1024, 1)}`, 16)}   ${col(`${fmt(perNode(s), 1)} / ${fmt(marginal, 1)}`, 42)}   ${col(fmt(s.steadyCpu, 1), 5)}   ${col(fmt(s.steady.pingsOk / s.windowS), 13)}   ${col(`${fmt(s.steady.rtt.p50, 1)} / ${fmt(s.steady.rtt.p99, 1)}`, 16)}   ${col(fmt(s.steady.closed + s.steady.pingsFailed), 7)}`,
    );
  }
  console.log('');
  console.log('Where the RSS is (MB, read after the window; "live" = V8 heap in use after a forced full GC)');
  console.log('   nodes   RSS   = file-backed + anonymous:  V8 heap resident (new space)   V8 used   V8 live   ArrayBuffers   other anon');
  const row = (label: string, m: Memory): void => {
    const committed = m.asIs.heap.totalPhysicalSize / MB;
    const newSpace = (m.asIs.spaces.new_space?.physical ?? 0) / MB;
    const buffers = m.asIs.memory.arrayBuffers / MB;
    const other = m.anonKb / 1024 - committed - buffers;
    console.log(
      `  ${col(label, 6)}   ${col(fmt((m.anonKb + m.fileKb) / 1024), 5)}   ${col(fmt(m.fileKb / 1024, 1), 11)}   ${col(fmt(m.anonKb / 1024, 1), 9)}:  ${col(`${fmt(committed, 1)} (${fmt(newSpace, 1)})`, 29)}   ${col(fmt(m.asIs.memory.heapUsed / MB, 1), 7)}   ${col(fmt(m.live.memory.heapUsed / MB, 1), 7)}   ${col(fmt(buffers, 1), 12)}   ${col(fmt(other, 1), 10)}`,
    );
  };
  row('idle', base.mem);
  for (const s of steps) row(fmt(s.size), s.mem);
  const last = steps[steps.length - 1];
  console.log('');
  if (last) {
    const n = last.size;
    const kb = (bytes: number): string => fmt(bytes / 1024 / n, 1);
    const liveHeap = last.mem.live.memory.heapUsed - base.mem.live.memory.heapUsed;
    const slack = last.mem.asIs.heap.totalPhysicalSize - last.mem.live.memory.heapUsed - (base.mem.asIs.heap.totalPhysicalSize - base.mem.live.memory.heapUsed);
    const buffers = last.mem.asIs.memory.arrayBuffers - base.mem.asIs.memory.arrayBuffers;
    const other = (last.mem.anonKb - base.mem.anonKb) * 1024 - (last.mem.asIs.heap.totalPhysicalSize - base.mem.asIs.heap.totalPhysicalSize) - buffers;
    console.log(`  per attached node at ${fmt(n)}: ${kb(liveHeap)} KB live V8 objects + ${kb(slack)} KB V8 heap resident beyond live (garbage, new space) + ${kb(buffers)} KB ArrayBuffers + ${kb(other)} KB other anonymous memory (sockets, malloc)`);
    const handles = Object.entries(last.mem.asIs.resources).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    console.log(`  live handles in the supernode: ${handles}`);
    const avg = last.mem.rss.avg / 1024;
    if (n >= TARGET_NODES) {
      const verdict = last.mem.rss.max / 1024 < TARGET_RSS_MB ? 'MET' : avg < TARGET_RSS_MB ? 'MET on average, not at the maximum' : 'NOT MET';
      console.log(`  target: ${fmt(TARGET_NODES)} attached nodes under ${TARGET_RSS_MB} MB RSS -> ${fmt(avg, 1)} MB average, ${fmt(last.mem.rss.max / 1024, 1)} MB maximum, ${fmt(last.mem.peakKb / 1024, 1)} MB peak during the ramp: ${verdict}`);
    } else {
      console.log(`  target: ${fmt(TARGET_NODES)} attached nodes under ${TARGET_RSS_MB} MB RSS (not reached in this run: largest size ${fmt(n)})`);
    }
  }
  console.log('  seeds: Skype supernodes: no published figure; a 2006 Skype client used 19-21 MB idle.');
  const warnings = new Map<string, number>();
  for (const line of supernodeLog) {
    if (line.level === 'warn' || line.level === 'error' || line.level === 'fatal') warnings.set(String(line.msg), (warnings.get(String(line.msg)) ?? 0) + 1);
  }
  console.log(`  supernode warnings/errors during the run: ${warnings.size === 0 ? 'none' : [...warnings].map(([m, c]) => `"${m}" x${c}`).join(', ')}`);
  if (snapshot) console.log(`  heap snapshot of the supernode at ${fmt(last?.size ?? 0)} nodes: ${snapshot}`);
}

/** RSS over a window, then the probe: as it is, then after a full GC. */
async function measureMemory(pid: number, dir: string, id: number, rss: { avg: number; max: number }, snapshot = false): Promise<Memory> {
  const { anon, file, peak } = memoryKb(pid);
  const asIs = await probe(pid, dir, 2 * id, { gc: false });
  const live = await probe(pid, dir, 2 * id + 1, { gc: true, snapshot });
  return { rss, peakKb: peak, anonKb: anon, fileKb: file, asIs, live };
}

async function main(): Promise<void> {
  const started = performance.now();
  const startLoad = loadavg().map((l) => l.toFixed(1)).join(' ');
  const probeDir = await mkdtemp(join(tmpdir(), 'pl-capacity-probe-'));
  let lab: LabNetwork | undefined;
  let generator: LoadGenerator | undefined;
  let keepProbeDir = false;
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      await generator?.stop().catch((err: unknown) => console.error('stopping the load generator:', err));
      if (lab) {
        const all = [...lab.nodes.values()].map((n) => n.proc.child).concat(lab.login ? [lab.login.child] : []);
        const stopped = await Promise.race([lab.stopAll().then(() => true), sleep(20_000, undefined, { ref: false }).then(() => false)]);
        if (!stopped) for (const child of all) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await rm(lab.root, { recursive: true, force: true });
      }
      if (!keepProbeDir) await rm(probeDir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    lab = await LabNetwork.create({ loginPort: BASE, users: ['sn1'] });
    generator = new LoadGenerator();
    const signing = lab.loginIdentity!.signing;
    const prepared = generator.call<PreparedReply>(
      {
        type: 'prepare',
        count: Math.max(...SIZES) + 500,
        network: lab.network,
        loginKey: { publicKey: signing.publicKey.toString('base64'), privateKey: signing.privateKey.toString('base64') },
      },
      'prepared',
      180_000,
    );
    prepared.catch(() => undefined);
    await lab.startLoginServer();

    // Only the supernode gets the memory probe.
    const probeImport = `--import=${pathToFileURL(join(HERE, 'lib', 'mem-probe.js')).href}`;
    const savedOptions = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = [savedOptions, probeImport].filter(Boolean).join(' ');
    process.env.BENCH_MEM_PROBE_DIR = probeDir;
    let sn: LabNode;
    try {
      sn = await lab.start('sn1', {
        port: BASE + 1,
        supernode: true,
        extra: {
          network: {
            name: lab.network,
            loginServer: { address: `127.0.0.1:${BASE}`, publicKey: lab.loginKey },
            bootstrap: [],
            mdns: false,
            keepAliveS: KEEPALIVE_S,
          },
          // maxLinksPerAddress stays at its default (16): the nodes come from many addresses.
          supernode: { policy: 'always', maxNodes: MAX_NODES },
        },
      });
    } finally {
      if (savedOptions === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = savedOptions;
      delete process.env.BENCH_MEM_PROBE_DIR;
    }
    await sn.proc.waitFor((l) => l.msg === 'logged in', 15_000);
    const pid = sn.proc.child.pid!;
    const ready = await prepared;
    console.error(`${fmt(ready.count)} node identities and credentials ready in ${fmt(ready.ms / 1000, 1)} s; supernode pid ${pid}, load generator pid ${generator.pid}`);

    // Idle baseline.
    await sleep(2_000);
    const idleCpu = new CpuMeter(pid);
    const idleRss = new RssSampler(pid);
    await sleep(5_000);
    const idleCpuPercent = idleCpu.read().percent;
    const base: Baseline = { cpu: idleCpuPercent, mem: await measureMemory(pid, probeDir, 0, idleRss.stop()) };

    const steps: Step[] = [];
    let keepAliveS = KEEPALIVE_S;
    let snapshot: string | undefined;
    for (const [i, size] of SIZES.entries()) {
      const snCpu = new CpuMeter(pid);
      const genCpu = new CpuMeter(generator.pid);
      const ramp = await generator
        .call<AttachedReply>({ type: 'attach', target: size, parallel: PARALLEL, host: '127.0.0.1', port: sn.port, perAddress: PER_ADDRESS }, 'attached', 60_000 + 50 * size)
        .catch(async (err: unknown) => {
          const { hung, wchan } = await hangCheck(pid);
          throw new Error(`${(err as Error).message}${hung ? `; the supernode's main thread is blocked (wchan ${wchan}, no CPU time)${HANG_HINT}` : ''}`, { cause: err });
        });
      const rampCpu = { supernode: snCpu.read(), generator: genCpu.read() };
      keepAliveS = ramp.keepAliveS || keepAliveS;
      console.error(`${fmt(ramp.attached)} attached (+${fmt(ramp.added)} in ${fmt(ramp.ms / 1000, 1)} s, ${fmt(ramp.failures)} failures${ramp.failures ? ` ${JSON.stringify(ramp.errors)}` : ''}); measuring ${keepAliveS} s of keep-alive`);
      if (ramp.attached < size) {
        const { hung, wchan } = await hangCheck(pid);
        throw new Error(`only ${ramp.attached} of ${size} nodes attached: ${JSON.stringify(ramp.errors)}${hung ? `; the supernode's main thread is blocked (wchan ${wchan}, no CPU time)${HANG_HINT}` : ''}`);
      }

      // Steady state: let the ramp's last answers settle, then one full keep-alive interval.
      await sleep(3_000);
      await generator.call<StatsReply>({ type: 'stats' }, 'stats');
      const cpu = new CpuMeter(pid);
      const rss = new RssSampler(pid);
      await sleep(keepAliveS * 1000);
      const steadyCpu = cpu.read();
      const rssWindow = rss.stop();
      const steady = await generator.call<StatsReply>({ type: 'stats' }, 'stats');
      const status = (await callControl(sn.control, 'status')) as { attachedNodes?: number };
      const mem = await measureMemory(pid, probeDir, i + 1, rssWindow, values.snapshot && i === SIZES.length - 1);
      if (mem.live.snapshot) {
        snapshot = mem.live.snapshot;
        keepProbeDir = true;
      }
      steps.push({ size, ramp, rampCpu, steady, steadyCpu: steadyCpu.percent, windowS: steadyCpu.wallS, statusCount: status.attachedNodes ?? -1, mem });
      console.error(
        `  ctl status: ${fmt(status.attachedNodes ?? -1)} attached; RSS ${fmt(rssWindow.avg / 1024, 1)} MB avg; CPU ${fmt(steadyCpu.percent, 1)} %; ${fmt(steady.pingsOk)} keep-alives ok, ${fmt(steady.pingsFailed)} failed`,
      );
    }
    printReport(base, steps, keepAliveS, snapshot, sn.proc.lines, { start: startLoad, end: loadavg().map((l) => l.toFixed(1)).join(' ') });
    console.log(`  bench time: ${fmt((performance.now() - started) / 1000)} s`);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
