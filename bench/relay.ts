/**
 * bench/relay: how many concurrent relayed calls one relay carries, ours
 * (src/relay/, in a process of its own) against coturn's turnserver, both
 * driven by the same load generator (bench/lib/relay-load.ts): each call is
 * two 50 packet/s streams of 100-byte payloads, one each way.
 *
 * The number of calls doubles (100, 200, 400 ... up to --max-calls) until a
 * step fails: a step passes with under 1 % loss and under 5 ms added
 * one-way delay at the 95th percentile — the relay's p95 minus the p95 of a
 * direct UDP baseline run by the same generator at the same number of
 * calls. The baseline runs first: where it fails, the generator itself is
 * the limit and relays cannot be measured beyond it.
 *
 * Placement: with two or more CPUs, the relay under test (our runner, or
 * turnserver with all its threads) is pinned to CPU 1 and this process (the
 * generator) to CPU 0 (taskset), so each side has one core; --no-pin leaves
 * scheduling to the kernel. coturn runs with a temporary config: loopback
 * listener and relay addresses, --no-auth, --allow-loopback-peers, no CLI,
 * no TLS/DTLS. Our relay sees every link as attached and its quotas lifted
 * (bench/lib/relay-runner.ts says why).
 *
 *   npm run bench:relay
 *   node dist/bench/relay.js [--max-calls 3200] [--start-calls 100] [--step-seconds 4] [--no-coturn] [--no-pin]
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateIdentity } from '../src/crypto/identity.js';
import { dialLink } from '../src/link/transport.js';
import { stunBinding } from '../src/nat/stun/client.js';
import { allocate, bindUdp } from '../src/relay/client.js';
import { silentLogger } from '../src/system/logging.js';
import { CpuMeter } from './lib/proc-stats.js';
import type { RunnerMessage } from './lib/relay-runner.js';
import { PACKETS_PER_SECOND, PAYLOAD_BYTES, RelayLoad, boundSocket, connect, connectedSocket } from './lib/relay-load.js';
import type { StepResult } from './lib/relay-load.js';
import { turnAllocate, turnChannelBind } from './lib/turn-client.js';

const { values } = parseArgs({
  options: {
    'max-calls': { type: 'string', default: '3200' },
    'start-calls': { type: 'string', default: '100' },
    'step-seconds': { type: 'string', default: '4' },
    'no-coturn': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
  },
});
const MAX_CALLS = Number(values['max-calls']);
const START_CALLS = Number(values['start-calls']);
const STEP_S = Number(values['step-seconds']);
for (const [name, ok] of [
  ['--max-calls: a positive integer', Number.isInteger(MAX_CALLS) && MAX_CALLS > 0],
  ['--start-calls: a positive integer not above --max-calls', Number.isInteger(START_CALLS) && START_CALLS > 0 && START_CALLS <= MAX_CALLS],
  ['--step-seconds: 1..60', STEP_S >= 1 && STEP_S <= 60],
] as const) {
  if (!ok) throw new Error(`expected ${name}`);
}

const HERE = dirname(fileURLToPath(import.meta.url));
const TURNSERVER = '/usr/bin/turnserver';
const MAX_LOSS_PCT = 1;
const MAX_ADDED_P95_MS = 5;
const SETUP_PARALLEL = 200;
const CPUS = availableParallelism();
const PIN = !values['no-pin'] && CPUS >= 2 && existsSync('/usr/bin/taskset');
/** Doubling to 4 x start, then steps of 2 x start to 12 x start (where the limits of one core lie), then x 1.5. */
const LADDER: number[] = [];
for (let n = START_CALLS; n <= MAX_CALLS; n = n < 4 * START_CALLS ? n * 2 : n < 12 * START_CALLS ? n + 2 * START_CALLS : Math.round(n * 1.5)) LADDER.push(n);

type System = 'direct' | 'ours' | 'coturn';
interface Row {
  result: StepResult;
  relayCpuPct: number | null;
  /** Measurements taken (a failing step is measured twice). */
  attempts: number;
}

function pin(pid: number, cpu: number): void {
  if (!PIN) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Run `fn` over `items`, `SETUP_PARALLEL` at a time. */
async function inBatches<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += SETUP_PARALLEL) await Promise.all(items.slice(i, i + SETUP_PARALLEL).map(fn));
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** A system under test: adds calls up to a count; its process (for CPU figures), if any. */
interface Harness {
  grow(load: RelayLoad, calls: number): Promise<void>;
  pid: number | undefined;
  stop(): Promise<void>;
}

function directHarness(): Harness {
  return {
    pid: undefined,
    async grow(load, calls) {
      await inBatches(range(load.calls.length, calls), async () => {
        const a = await boundSocket(load.onSocketError);
        const b = await boundSocket(load.onSocketError);
        await connect(a, b.address().port);
        await connect(b, a.address().port);
        load.add({ a, b, aSendChannel: null, bSendChannel: null, aReceiveOffset: 0, bReceiveOffset: 0 });
      });
    },
    async stop() {},
  };
}

async function oursHarness(): Promise<Harness> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  // RELAY_RUNNER_NODE_ARGS: extra node flags for the relay process (e.g. "--cpu-prof --trace-gc").
  const execArgv = (process.env.RELAY_RUNNER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = fork(join(HERE, 'lib', 'relay-runner.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env, execArgv });
  const ready = await new Promise<Extract<RunnerMessage, { type: 'ready' }>>((resolve, reject) => {
    child.once('message', (m: RunnerMessage) => (m.type === 'ready' ? resolve(m) : reject(new Error('relay runner: unexpected message'))));
    child.once('exit', (code) => reject(new Error(`relay runner exited (${code})`)));
  });
  pin(child.pid!, 1);
  const { link } = await dialLink({ identity: generateIdentity(), network: 'bench', role: 'node', log: silentLogger(), host: '127.0.0.1', port: ready.tcpPort, link: { maxMessagesPerSecond: 1_000_000, burst: 1_000_000 } });
  const server = { address: '127.0.0.1', port: ready.udpPort };
  return {
    pid: child.pid,
    async grow(load, calls) {
      await inBatches(range(load.calls.length, calls), async (i) => {
        const allocation = await allocate(link, 'bench-peer', `call-${i}`);
        const a = await connectedSocket(server.port, load.onSocketError);
        const b = await connectedSocket(server.port, load.onSocketError);
        await Promise.all([
          bindUdp({ udp: socketPort(a), server, ...allocation.legs[0], channel: 0x4000 }),
          bindUdp({ udp: socketPort(b), server, ...allocation.legs[1], channel: 0x4001 }),
        ]);
        load.add({ a, b, aSendChannel: 0x4000, bSendChannel: 0x4001, aReceiveOffset: 4, bReceiveOffset: 4 });
      });
    },
    async stop() {
      link.close();
      child.send({ type: 'stop' });
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    },
  };
}

/** A connected socket as the relay client's `send`/`onDatagram` port. */
function socketPort(socket: ReturnType<typeof createSocket>): Parameters<typeof bindUdp>[0]['udp'] {
  return {
    send: (data) => socket.send(data),
    onDatagram: (handler) => {
      const listener = (packet: Buffer, from: { address: string; port: number }): void => void handler(packet, from);
      socket.on('message', listener);
      return () => socket.off('message', listener);
    },
  };
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const { port } = socket.address();
  await new Promise<void>((r) => socket.close(() => r()));
  return port;
}

async function coturnHarness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-coturn-'));
  const port = await freeUdpPort();
  const config = [
    `listening-port=${port}`, 'listening-ip=127.0.0.1', 'relay-ip=127.0.0.1', 'min-port=20000', 'max-port=30000',
    'no-auth', 'allow-loopback-peers', 'no-cli', 'no-tls', 'no-dtls', 'no-tcp', 'no-tcp-relay',
    `log-file=${join(dir, 'turn.log')}`, 'simple-log', 'no-stdout-log', `pidfile=${join(dir, 'turn.pid')}`,
  ].join('\n');
  await writeFile(join(dir, 'turnserver.conf'), `${config}\n`);
  const child = spawn(TURNSERVER, ['-c', join(dir, 'turnserver.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const server = { address: '127.0.0.1', port };
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
  try {
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) throw new Error(`turnserver exited (${child.exitCode}); see ${join(dir, 'turn.log')}`);
      try {
        await stunBinding(probe, server, { timeoutMs: 300 });
        break;
      } catch (err) {
        if (attempt > 30) throw err;
        await sleep(100);
      }
    }
  } finally {
    probe.close();
  }
  pin(child.pid!, 1);
  return {
    pid: child.pid,
    async grow(load, calls) {
      await inBatches(range(load.calls.length, calls), async () => {
        const a = await connectedSocket(port, load.onSocketError);
        const relayed = await turnAllocate(a);
        const b = await boundSocket(load.onSocketError);
        await turnChannelBind(a, 0x4000, { address: '127.0.0.1', port: b.address().port });
        await connect(b, relayed.port);
        load.add({ a, b, aSendChannel: 0x4000, bSendChannel: null, aReceiveOffset: 4, bReceiveOffset: 0 });
      });
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Step `system` up the ladder until a step fails. A failing step is measured
 * once more and the better attempt kept: the bench shares its machine, and
 * one scheduling hiccup elsewhere should not end a ladder (the same rule for
 * every system, the baseline included).
 */
async function ladder(system: System, harness: Harness, base: Map<number, StepResult>, results: Map<number, Row>): Promise<void> {
  const load = new RelayLoad();
  const verdict = (r: StepResult, calls: number): boolean => (system === 'direct' ? baselineOk(r) : passes(r, base.get(calls)!));
  try {
    for (const calls of LADDER) {
      if (system !== 'direct' && !base.has(calls)) break;
      const t0 = performance.now();
      await harness.grow(load, calls);
      const setupS = (performance.now() - t0) / 1000;
      let ok = false;
      for (let attempt = 1; attempt <= 2 && !ok; attempt++) {
        const cpu = harness.pid !== undefined ? new CpuMeter(harness.pid) : undefined;
        const result = await load.run(STEP_S);
        const relayCpuPct = cpu ? cpu.read().percent : null;
        ok = verdict(result, calls);
        const previous = results.get(calls);
        if (attempt === 1 || ok || !previous || result.p95Ms < previous.result.p95Ms) results.set(calls, { result, relayCpuPct, attempts: attempt });
        else previous.attempts = attempt;
        process.stderr.write(
          `${system.padEnd(6)} ${String(calls).padStart(5)} calls: loss ${result.lossPct.toFixed(2)} %, p50 ${result.p50Ms.toFixed(2)} ms, p95 ${result.p95Ms.toFixed(2)} ms, ` +
            `schedule ${(100 * result.scheduleRatio).toFixed(0)} %, generator CPU ${result.generatorCpuPct.toFixed(0)} % (loop p99 ${result.loopP99Ms.toFixed(1)} ms, send errors ${load.sendErrors})` +
            `${relayCpuPct !== null ? `, relay CPU ${relayCpuPct.toFixed(0)} %` : ''} (setup ${setupS.toFixed(1)} s, load ${load1()}) ${ok ? 'ok' : attempt === 1 ? 'FAIL, measuring again' : 'FAIL'}\n`,
        );
      }
      if (!ok) break;
    }
  } finally {
    await load.close();
  }
}

/**
 * The generator can measure at this load: it kept its schedule, the direct
 * path lost nothing to speak of, and its own event-loop delay (which every
 * measured delay includes) stayed under the delay tolerance.
 */
function baselineOk(r: StepResult): boolean {
  return r.lossPct < MAX_LOSS_PCT && r.scheduleRatio > 0.98 && r.loopP99Ms < MAX_ADDED_P95_MS;
}

function passes(r: StepResult, base: StepResult): boolean {
  return r.lossPct < MAX_LOSS_PCT && r.p95Ms - base.p95Ms < MAX_ADDED_P95_MS && r.scheduleRatio > 0.98;
}

function maxPassing(rows: Map<number, Row>, base: Map<number, StepResult>): number {
  let best = 0;
  for (const calls of LADDER) {
    const row = rows.get(calls);
    const b = base.get(calls);
    if (!row || !b || !passes(row.result, b)) break;
    best = calls;
  }
  return best;
}

const load1 = (): string => loadavg()[0]!.toFixed(2);

async function main(): Promise<void> {
  const loadAtStart = load1();
  if (Number(loadAtStart) > 0.5 * CPUS) process.stderr.write(`warning: load average ${loadAtStart} on ${CPUS} CPUs: other work on this machine will show up in the figures\n`);
  if (PIN) pin(process.pid, 0);
  const coturn = !values['no-coturn'] && existsSync(TURNSERVER);
  const baseRows = new Map<number, Row>();
  const base = new Map<number, StepResult>();
  const ours = new Map<number, Row>();
  const theirs = new Map<number, Row>();

  await ladder('direct', directHarness(), base, baseRows);
  for (const [calls, row] of baseRows) if (baselineOk(row.result)) base.set(calls, row.result);

  const relay = await oursHarness();
  try {
    await ladder('ours', relay, base, ours);
  } finally {
    await relay.stop();
  }
  if (coturn) {
    const turn = await coturnHarness();
    try {
      await ladder('coturn', turn, base, theirs);
    } finally {
      await turn.stop();
    }
  }
  printReport(baseRows, base, ours, theirs, coturn, `${loadAtStart} -> ${load1()}`);
}

/**
 * Relay CPU per call, from the largest passing step where the relay used at
 * least 20 % of its core (smaller steps are dominated by fixed costs), and
 * the number of calls that would fill one core at that rate: an
 * extrapolation, for when the generator runs out before the relay does.
 */
function cpuProjection(rows: Map<number, Row>, base: Map<number, StepResult>): { pctPer100: number; calls: number } | undefined {
  let best: { calls: number; cpu: number } | undefined;
  for (const calls of LADDER) {
    const row = rows.get(calls);
    const b = base.get(calls);
    if (!row || !b || !passes(row.result, b) || row.relayCpuPct === null) break;
    if (row.relayCpuPct >= 20) best = { calls, cpu: row.relayCpuPct };
  }
  if (!best) return undefined;
  const pctPer100 = (100 * best.cpu) / best.calls;
  return { pctPer100, calls: Math.floor((100 * best.calls) / best.cpu) };
}

function printReport(baseRows: Map<number, Row>, base: Map<number, StepResult>, ours: Map<number, Row>, theirs: Map<number, Row>, coturn: boolean, loadAverage: string): void {
  const perCallKBs = (PACKETS_PER_SECOND * PAYLOAD_BYTES) / 1000;
  const cell = (row: Row | undefined, b: StepResult | undefined): string => {
    if (!row || !b) return '-'.padStart(31);
    const r = row.result;
    const ok = passes(r, b) ? (row.attempts > 1 ? 'ok* ' : 'ok  ') : 'FAIL';
    const cpu = row.relayCpuPct === null ? '' : `${row.relayCpuPct.toFixed(0)}%`;
    return `${r.lossPct.toFixed(2).padStart(5)} ${(r.p50Ms - b.p50Ms).toFixed(2).padStart(6)} ${(r.p95Ms - b.p95Ms).toFixed(2).padStart(6)} ${cpu.padStart(4)} ${ok}`;
  };
  console.log('');
  console.log(`Relay capacity: calls of 2 x ${PACKETS_PER_SECOND} packets/s x ${PAYLOAD_BYTES} B (${perCallKBs.toFixed(1)} KB/s of payload each way per call; the seeds' Skype: ~5 KB/s).`);
  console.log(`Pass: loss < ${MAX_LOSS_PCT} % and p95 one-way delay < ${MAX_ADDED_P95_MS} ms above the direct UDP baseline at the same number of calls.`);
  console.log(`Baseline usable while the generator keeps its schedule and its event-loop p99 stays < ${MAX_ADDED_P95_MS} ms ("gen!" marks where it did not).`);
  console.log('A failing step is measured a second time and the better attempt kept ("ok*": passed on the second).');
  console.log(`${process.arch}, ${CPUS} CPUs, ${PIN ? 'relay pinned to CPU 1, generator to CPU 0' : 'not pinned'}, Node ${process.version}, ${STEP_S} s per step, load average ${loadAverage}.`);
  console.log('');
  console.log(`${'calls'.padStart(5)} | ${'direct p50/p95 ms, gen CPU'.padEnd(30)} | ${'ours: loss% +p50ms +p95ms cpu'.padEnd(31)} | ${'coturn: loss% +p50ms +p95ms cpu'.padEnd(31)}`);
  for (const calls of LADDER) {
    const b = baseRows.get(calls);
    if (!b) break;
    const r = b.result;
    const baseCell = `${r.p50Ms.toFixed(2)}/${r.p95Ms.toFixed(2)}, ${r.generatorCpuPct.toFixed(0)}%${baselineOk(r) ? '' : ` gen! (loop p99 ${r.loopP99Ms.toFixed(0)} ms)`}`;
    console.log(`${String(calls).padStart(5)} | ${baseCell.padEnd(30)} | ${cell(ours.get(calls), base.get(calls))} | ${coturn ? cell(theirs.get(calls), base.get(calls)) : 'skipped'.padStart(31)}`);
  }
  const generatorLimit = Math.max(0, ...base.keys());
  const oursMax = maxPassing(ours, base);
  const theirMax = coturn ? maxPassing(theirs, base) : 0;
  const capped = (n: number): string => (n === generatorLimit ? `>= ${n} (the generator's limit)` : String(n));
  console.log('');
  console.log(`max calls measured passing: ours ${capped(oursMax)}` + (coturn ? `, coturn ${capped(theirMax)}` : ''));
  if (coturn) {
    const bound = oursMax === generatorLimit || theirMax === generatorLimit ? ' (bounded by the generator)' : '';
    console.log(`ratio ours/coturn, measured: ${(oursMax / theirMax).toFixed(2)}${bound}  (target >= 0.5)`);
  }
  const projectionOurs = cpuProjection(ours, base);
  const projectionTheirs = coturn ? cpuProjection(theirs, base) : undefined;
  const describe = (p: { pctPer100: number; calls: number } | undefined): string => (p ? `${p.pctPer100.toFixed(1)} % of a core per 100 calls -> ~${p.calls} calls per core` : 'n/a');
  console.log(`CPU: ours ${describe(projectionOurs)}` + (coturn ? `; coturn ${describe(projectionTheirs)}` : ''));
  if (projectionOurs && projectionTheirs) console.log(`ratio ours/coturn, CPU-projected: ${(projectionOurs.calls / projectionTheirs.calls).toFixed(2)}  (target >= 0.5)`);
  console.log(`at ${oursMax} calls our relay forwards ${fmtInt(oursMax * 2 * PACKETS_PER_SECOND)} datagrams/s, ${((oursMax * 2 * perCallKBs) / 1000).toFixed(1)} MB/s of payload`);
  if (!coturn) console.log(existsSync(TURNSERVER) ? 'coturn skipped (--no-coturn)' : `coturn skipped: ${TURNSERVER} not found (apt-get install coturn)`);
}

const fmtInt = (n: number): string => n.toLocaleString('en-US');

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
