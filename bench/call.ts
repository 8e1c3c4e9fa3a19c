/**
 * bench/call: what one call costs and how fast it connects, next to the
 * seeds' figures (Skype: ~5 KB/s per call, 2 KB/s each way needed to stay
 * intelligible, 96 ms mouth-to-ear, 21–27 MB of memory in a call).
 * Targets (issue "Calls and media"): ≤ 3 KB/s each way at wideband,
 * < 60 ms software mouth-to-ear, < 64 MB RSS, < 200 ms dial-to-ringing on
 * a LAN.
 *
 * 1. Set-up: real processes on loopback (login server, supernode, two
 *    phones; the callee answers by itself). Dial-to-ringing is the control
 *    request `call` (it returns when the first device rings); dial-to-media
 *    is the caller's own measure of the first SRTP packet from the callee
 *    (status call.setup.mediaMs). `--runs` calls.
 * 2. Bytes on the wire per direction (SRTP + SRTCP + 28 B of IPv4/UDP per
 *    packet), CPU of the caller's process (main thread and media worker)
 *    and its RSS, during a `--seconds` call: once with both phones talking
 *    all the time (each plays a speech sample in a loop), once as a
 *    conversation (each talks while the other listens), for the default
 *    settings and for the lower-rate ones.
 * 3. Software mouth-to-ear: two media engines (worker threads, sim audio)
 *    over loopback UDP, capture of a frame to its playout at the other end,
 *    from the engines' per-frame trace.
 *
 * Run: npm run bench:call [-- --runs 10 --seconds 10 --quick]   (--quick: the default settings only)
 */
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeWav } from '../hal/audio/wav.js';
import { callControl } from '../src/control/client.js';
import type { NodeStatus } from '../src/app/node.js';
import { MediaEngine, makeSrtpKeyMaterial } from '../src/media/engine/engine.js';
import type { StreamParams, TraceRecord } from '../src/media/engine/engine.js';
import { LabNetwork } from '../test/helpers/network.js';
import { readSamples } from '../test/helpers/audio.js';
import { CpuMeter, RssSampler, memoryKb } from './lib/proc-stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, seconds: { type: 'string', default: '10' }, quick: { type: 'boolean', default: false } } });
const RUNS = Math.max(1, Number(values.runs));
const SECONDS = Math.max(3, Number(values.seconds));
/** Below the nodes' own random ports (20000–32000) and the kernel's ephemeral range. */
const BASE_PORT = 19_000;
const IP_UDP = 28;

const fixture = (name: string): string => new URL(`../../test/fixtures/audio/${name}`, import.meta.url).pathname;

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** Speech for `seconds`: the sample over and over (talking), or the sample then as long a silence, starting silent for the listener (a conversation). */
async function makeInput(dir: string, name: string, sample: string, seconds: number, pattern: 'talk' | 'speak-first' | 'listen-first'): Promise<string> {
  const speech = readSamples(sample);
  const total = seconds * 16000;
  const out = new Int16Array(total);
  if (pattern === 'talk') {
    for (let i = 0; i < total; i++) out[i] = speech[i % speech.length]!;
  } else {
    // Turns of the sample's length (plus 0.5 s): one speaks while the other is silent.
    const turn = speech.length + 8000;
    for (let i = 0; i < total; i++) {
      const t = Math.floor(i / turn);
      const speaking = pattern === 'speak-first' ? t % 2 === 0 : t % 2 === 1;
      const k = i % turn;
      out[i] = speaking && k < speech.length ? speech[k]! : 0;
    }
  }
  const path = join(dir, `${name}.wav`);
  writeWav(path, out, 16000);
  return path;
}

interface WireFigures {
  label: string;
  idleRssMb: number;
  sentBps: number;
  receivedBps: number;
  cpuPct: number;
  rssMb: number;
  mos: number | null;
}

async function network(dir: string, calls: Record<string, unknown>, inputs: { alice: string; bob: string }, portOffset: number): Promise<LabNetwork> {
  const port = (i: number): number => BASE_PORT + portOffset + i;
  const lab = await LabNetwork.create({ loginPort: port(0), users: ['sn1', 'alice', 'bob'] });
  await lab.startLoginServer();
  await lab.start('sn1', { port: port(1), supernode: true });
  const sn = `127.0.0.1:${port(1)}`;
  await lab.start('alice', { port: port(2), bootstrap: [sn], extra: { hal: { audio: { input: inputs.alice } }, calls } });
  await lab.start('bob', { port: port(3), bootstrap: [sn], extra: { hal: { audio: { input: inputs.bob } }, calls: { ...calls, autoAnswer: true } } });
  for (;;) {
    const found = (await callControl(lab.nodes.get('alice')!.control, 'search', { user: 'bob' })) as { devices: unknown[] };
    if (found.devices.length > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  void dir;
  return lab;
}

const status = async (lab: LabNetwork, name: string): Promise<NodeStatus> => (await callControl(lab.nodes.get(name)!.control, 'status')) as NodeStatus;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false | null>, timeoutMs = 10_000): Promise<T> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function setupTimes(lab: LabNetwork): Promise<{ ringing: number[]; media: number[] }> {
  const ringing: number[] = [];
  const media: number[] = [];
  const alice = lab.nodes.get('alice')!.control;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await callControl(alice, 'call', { user: 'bob' }, { timeoutMs: 15_000 });
    ringing.push(performance.now() - t0);
    const setup = await waitFor('media', async () => (await status(lab, 'alice')).call?.setup?.mediaMs ?? null);
    media.push(setup);
    await callControl(alice, 'hangup', {});
    await waitFor('hung up', async () => (await status(lab, 'alice')).call === null && (await status(lab, 'bob')).call === null);
  }
  return { ringing, media };
}

async function wire(lab: LabNetwork, label: string): Promise<WireFigures> {
  const alice = lab.nodes.get('alice')!;
  const pid = alice.proc.child.pid!;
  const idle = memoryKb(pid).rss / 1024;
  await callControl(alice.control, 'call', { user: 'bob' }, { timeoutMs: 15_000 });
  await waitFor('media', async () => ((await status(lab, 'alice')).call?.rtp.packetsSent ?? 0) > 0);
  // Let the first second (engine start, first reports) pass, then measure.
  await new Promise((r) => setTimeout(r, 1_500));
  const cpu = new CpuMeter(pid);
  const rss = new RssSampler(pid, 500);
  const before = (await status(lab, 'alice')).call!;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const after = (await status(lab, 'alice')).call!;
  const seconds = (performance.now() - t0) / 1000;
  const cpuUse = cpu.read();
  const memory = rss.stop();
  await callControl(alice.control, 'hangup', {});
  await waitFor('hung up', async () => (await status(lab, 'alice')).call === null);
  const wireBytes = (bytes: number, packets: number): number => bytes + packets * IP_UDP;
  const a = before.rtp;
  const b = after.rtp;
  return {
    label,
    idleRssMb: idle,
    sentBps: wireBytes(b.bytesSent - a.bytesSent, b.datagramsSent - a.datagramsSent) / seconds,
    receivedBps: wireBytes(b.bytesReceived - a.bytesReceived, b.datagramsReceived - a.datagramsReceived) / seconds,
    cpuPct: cpuUse.percent,
    rssMb: memory.max / 1024,
    mos: after.mos,
  };
}

/** Two engines over loopback UDP: capture → playout per frame, from the trace. */
async function mouthToEar(dir: string): Promise<number[]> {
  const inputs = { a: await makeInput(dir, 'm2e-a', fixture('speech-a.wav'), 8, 'talk'), b: await makeInput(dir, 'm2e-b', fixture('speech-b.wav'), 8, 'talk') };
  const [ea, eb] = await Promise.all([
    MediaEngine.start({ audio: { driver: 'sim', sampleRate: 16000, input: inputs.a }, trace: true }),
    MediaEngine.start({ audio: { driver: 'sim', sampleRate: 16000, input: inputs.b }, trace: true }),
  ]);
  const sa = createSocket('udp4');
  const sb = createSocket('udp4');
  await Promise.all([new Promise<void>((r) => sa.bind(0, '127.0.0.1', r)), new Promise<void>((r) => sb.bind(0, '127.0.0.1', r))]);
  const kA = makeSrtpKeyMaterial('AES_CM_128_HMAC_SHA1_80');
  const kB = makeSrtpKeyMaterial('AES_CM_128_HMAC_SHA1_80');
  const params = (send: typeof kA, receive: typeof kA, ssrc: number): StreamParams => ({ codec: { sampleRate: 16000, bitrate: 12000 }, srtp: { profile: 'AES_CM_128_HMAC_SHA1_80', send, receive }, ssrc });
  const captures = new Map<string, number>();
  const delays: number[] = [];
  const onTrace = (r: TraceRecord): void => {
    const key = `${r.ssrc}:${r.timestamp}`;
    if (r.kind === 'capture') captures.set(key, r.atMs);
    else {
      const at = captures.get(key);
      if (at !== undefined) delays.push(r.atMs - at);
    }
  };
  ea.on('trace', onTrace);
  eb.on('trace', onTrace);
  sa.on('message', (m) => ea.receive('s', m));
  sb.on('message', (m) => eb.receive('s', m));
  ea.addStream('s', params(kA, kB, 0x1111), (p) => sa.send(p, sb.address().port, '127.0.0.1'));
  eb.addStream('s', params(kB, kA, 0x2222), (p) => sb.send(p, sa.address().port, '127.0.0.1'));
  await new Promise((r) => setTimeout(r, 7_000));
  await Promise.all([ea.close(), eb.close()]);
  sa.close();
  sb.close();
  // The first second is the jitter buffer settling from its initial target.
  return delays.slice(100);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-bench-call-'));
  const rows: string[] = [];
  const print = (line: string): void => {
    rows.push(line);
    console.log(line);
  };
  try {
    print(`bench/call — ${RUNS} calls for set-up, ${SECONDS} s per measured call; loopback, real processes, sim audio`);
    const talkA = await makeInput(dir, 'talk-a', fixture('speech-a.wav'), SECONDS + 10, 'talk');
    const talkB = await makeInput(dir, 'talk-b', fixture('speech-b.wav'), SECONDS + 10, 'talk');
    const convA = await makeInput(dir, 'conv-a', fixture('speech-a.wav'), SECONDS + 10, 'speak-first');
    const convB = await makeInput(dir, 'conv-b', fixture('speech-b.wav'), SECONDS + 10, 'listen-first');

    const settings: Array<{ name: string; calls: Record<string, unknown> }> = [
      { name: 'defaults (12 kbit/s, DTX, HMAC-SHA1-80)', calls: {} },
      { name: '16 kbit/s, no DTX, HMAC-SHA1-80', calls: { bitrate: 16000, dtx: false } },
      { name: '12 kbit/s, DTX, HMAC-SHA1-32', calls: { srtpProfile: 'AES_CM_128_HMAC_SHA1_32' } },
    ];
    const wireRows: WireFigures[] = [];
    let setup: { ringing: number[]; media: number[] } | undefined;
    for (const [i, s] of (values.quick ? settings.slice(0, 1) : settings).entries()) {
      for (const [pattern, inputs] of [['talking all the time', { alice: talkA, bob: talkB }], ['conversation (turns)', { alice: convA, bob: convB }]] as const) {
        const lab = await network(dir, s.calls, inputs, i * 20 + (pattern.startsWith('talk') ? 0 : 10));
        try {
          if (!setup) setup = await setupTimes(lab);
          wireRows.push(await wire(lab, `${s.name}, ${pattern}`));
        } finally {
          await lab.stopAll();
          await rm(lab.root, { recursive: true, force: true });
        }
      }
    }
    const m2e = await mouthToEar(dir);

    const kb = (bps: number): string => `${(bps / 1000).toFixed(2)} KB/s`;
    print('');
    print('| figure | Partyline | seed (Skype) | target |');
    print('|---|---|---|---|');
    print(`| dial to ringing (loopback), median / p95 | ${quantile(setup!.ringing, 0.5).toFixed(0)} / ${quantile(setup!.ringing, 0.95).toFixed(0)} ms | — | < 200 ms on a LAN |`);
    print(`| dial to media (first SRTP packet from the callee, auto-answer), median / p95 | ${quantile(setup!.media, 0.5).toFixed(0)} / ${quantile(setup!.media, 0.95).toFixed(0)} ms | — | — |`);
    print(`| software mouth-to-ear (capture → playout, loopback), median / p95 | ${quantile(m2e, 0.5).toFixed(1)} / ${quantile(m2e, 0.95).toFixed(1)} ms (${m2e.length} frames) | 96 ms (with network) | < 60 ms |`);
    for (const w of wireRows) {
      print(`| ${w.label}: on the wire sent / received | ${kb(w.sentBps)} / ${kb(w.receivedBps)} | ~5 KB/s | ≤ 3 KB/s each way |`);
      print(`| ${w.label}: caller CPU (main + media worker), RSS idle → max in the call, MOS | ${w.cpuPct.toFixed(1)} % of a core, ${w.idleRssMb.toFixed(1)} → ${w.rssMb.toFixed(1)} MB, MOS ${w.mos ?? '?'} | 19–21 MB idle, 21–27 MB in a call | < 64 MB |`);
    }
    print('');
    print('KB = 1000 bytes; "on the wire" = SRTP and SRTCP payloads + 28 bytes of IPv4/UDP header per packet; CPU in % of one core of this machine.');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
