/**
 * The network lab, proven with plain tools: real NAT in network namespaces,
 * probed with udp-probe.mjs (no Partyline code), each NAT kind checked for
 * its RFC 4787 mapping and filtering behaviour, and coturn's
 * turnutils_natdiscovery as a second opinion where it is installed.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary, run } from './commands.js';
import { findCoturn, natDiscovery, startTurnServer } from './coturn.js';
import type { RunningTurnServer } from './coturn.js';
import { NetLab, NetLabError } from './lab.js';
import type { LabSpec, NatKind } from './lab.js';
import {
  ALL_VIAS, classifyFiltering, classifyMapping, probe, startProbeServer,
} from './probe-client.js';
import type { FilterResult, MapResult, MappingBehaviour, ProbeServer, TcpResult, Via } from './probe-client.js';

const availability = await NetLab.available();
if (!availability.ok) {
  // Visible in the test output, and the test below fails outright when CI is set.
  console.warn(`netlab tests skipped: ${availability.reason ?? 'unknown reason'}`);
}

async function namespaces(): Promise<string[]> {
  const ip = findBinary('ip');
  if (!ip) return [];
  const out = await run(ip, ['netns', 'list']);
  return out.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

/** True once a pid no longer names a running process (gone, or a zombie waiting for its reaper). */
async function processGone(pid: number, waitMs = 2000): Promise<boolean> {
  for (const deadline = Date.now() + waitMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '' || /^\d+ \(.*\) Z/.test(stat)) return true;
  }
  return false;
}

describe('netlab availability', () => {
  it('can build a lab on this machine (required when CI is set)', (ctx) => {
    if (!availability.ok && !process.env.CI) ctx.skip(`netlab unavailable: ${availability.reason ?? ''}`);
    expect(availability).toEqual({ ok: true });
  });
});

const SPEC: LabSpec = {
  publicHosts: [{ name: 'stun1', addresses: 2 }, 'stun2', { name: 'turn', addresses: 2 }],
  lans: [
    { name: 'open', nat: 'none', hosts: ['op1'] },
    { name: 'prc', nat: 'port-restricted', hosts: ['pr1', 'pr2'] },
    { name: 'sym', nat: 'symmetric', hosts: ['sy1'] },
    { name: 'cone', nat: 'full-cone', hosts: ['fc1', 'fc2'] },
    { name: 'rcone', nat: 'restricted', hosts: ['rc1'] },
    { name: 'fw', nat: 'udp-blocked', hosts: ['fw1', 'fw2'] },
  ],
};

interface NatCase {
  kind: NatKind;
  host: string;
  mapping: MappingBehaviour;
  filtering: ReturnType<typeof classifyFiltering>;
  arrived: Via[];
}

const CASES: NatCase[] = [
  { kind: 'none', host: 'op1', mapping: 'no-nat', filtering: 'endpoint-independent', arrived: [...ALL_VIAS] },
  { kind: 'port-restricted', host: 'pr1', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', arrived: ['self'] },
  { kind: 'symmetric', host: 'sy1', mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', arrived: ['self'] },
  { kind: 'full-cone', host: 'fc1', mapping: 'endpoint-independent', filtering: 'endpoint-independent', arrived: [...ALL_VIAS] },
  { kind: 'restricted', host: 'rc1', mapping: 'endpoint-independent', filtering: 'address-dependent', arrived: ['self', 'alt-port'] },
  { kind: 'udp-blocked', host: 'fw1', mapping: 'blocked', filtering: 'blocked', arrived: [] },
];

describe.skipIf(!availability.ok)('network lab with every NAT kind', () => {
  let lab: NetLab;
  let stun1: ProbeServer;
  let stun2: ProbeServer;
  let a1: string;
  let a2: string;
  let b: string;
  let targets: string;

  beforeAll(async () => {
    const stale = await NetLab.cleanupStale();
    if (stale.length > 0) console.warn(`netlab: removed stale namespaces ${stale.join(', ')}`);
    lab = await NetLab.create(SPEC);
    console.info(`netlab: ${lab.prefix} (${(await namespaces()).filter((n) => n.startsWith(lab.prefix)).length} namespaces) set up in ${lab.timings.setupMs.toFixed(0)} ms`);
    [a1, a2] = lab.addresses('stun1') as [string, string];
    b = lab.address('stun2');
    stun2 = await startProbeServer(lab, 'stun2', ['--addr', b, '--port', '3478', '--alt-port', '3479', '--tcp']);
    stun1 = await startProbeServer(lab, 'stun1', ['--addr', a1, '--alt-addr', a2, '--port', '3478', '--alt-port', '3479', '--peer', `${b}:3478`, '--tcp']);
    targets = [`${a1}:3478`, `${a1}:3479`, `${a2}:3478`, `${b}:3478`].join(',');
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('puts each host in its own namespace with the planned addresses', () => {
    expect(lab.address('stun1')).toBe('10.200.0.10');
    expect(lab.addresses('stun1')).toEqual(['10.200.0.10', '10.200.1.10']);
    expect(lab.address('pr1')).toBe('10.201.1.10');
    expect(lab.address('pr2')).toBe('10.201.1.11');
    expect(lab.publicAddress('prc')).toBe('10.200.0.101');
    expect(lab.publicAddress('pr2')).toBe('10.200.0.101');
    expect(lab.publicAddress('op1')).toBe(lab.address('op1'));
    expect(lab.hosts().map((h) => h.name).sort()).toEqual(['fc1', 'fc2', 'fw1', 'fw2', 'op1', 'pr1', 'pr2', 'rc1', 'stun1', 'stun2', 'sy1', 'turn']);
    expect(() => lab.address('nope')).toThrow(/no host or LAN named "nope"/);
  });

  // Each case uses its own LAN, so they run concurrently (ctx.expect keeps assertions with their test).
  describe.concurrent.each(CASES)('$kind NAT ($host)', (c) => {
    it(`mapping is ${c.mapping}`, async ({ expect }) => {
      const result = await probe<MapResult>(lab, c.host, ['map', '--to', targets]);
      expect(classifyMapping(result, lab.address(c.host)), JSON.stringify(result)).toBe(c.mapping);
      for (const r of result.results) {
        if (r.mapped !== null) expect(r.mapped.split(':')[0]).toBe(lab.publicAddress(c.host));
      }
    });

    it(`filtering is ${c.filtering}: replies from ${c.arrived.join(', ') || 'nowhere'} get through`, async ({ expect }) => {
      const result = await probe<FilterResult>(lab, c.host, ['filter', '--to', `${a1}:3478`, '--reply-from', 'alt-port,alt-addr,alt-both,peer']);
      expect(result.arrived, JSON.stringify(result)).toEqual(c.arrived);
      expect(classifyFiltering(result.arrived)).toBe(c.filtering);
    });
  });

  it('udp-blocked: no UDP leaves the LAN at all, while TCP passes through the NAT', async () => {
    const fw = lab.publicAddress('fw');
    const udp = await probe<MapResult>(lab, 'fw1', ['map', '--to', `${a1}:3478,${b}:3478`, '--timeout', '500']);
    expect(udp.results.map((r) => r.mapped)).toEqual([null, null]);
    // Not filtered on the way back: the servers never saw a single datagram from the firewall.
    expect([...stun1.requests, ...stun2.requests].filter((r) => r.from.startsWith(`${fw}:`))).toEqual([]);
    const tcp = await probe<TcpResult>(lab, 'fw1', ['tcp', '--to', `${b}:3478`]);
    expect(tcp.error).toBeUndefined();
    expect(tcp.mapped?.split(':')[0]).toBe(fw);
  });

  it.each([['prc', 'pr1', 'pr2'], ['fw', 'fw1', 'fw2']] as const)('%s: two phones behind one router reach each other directly over UDP on the LAN', async (_lan, from, to) => {
    const address = lab.address(to);
    const server = await startProbeServer(lab, to, ['--addr', address, '--port', '4000']);
    try {
      const result = await probe<MapResult>(lab, from, ['map', '--to', `${address}:4000`]);
      const seen = `${lab.address(from)}:${result.local.split(':')[1]}`;
      expect(result.results[0]?.mapped).toBe(seen);
      expect(server.requests.map((r) => r.from)).toEqual([seen]);
    } finally {
      server.child.kill();
    }
  });

  it('two phones behind one router share its public address with different ports', async () => {
    const [one, two] = await Promise.all(['pr1', 'pr2'].map((h) => probe<MapResult>(lab, h, ['map', '--to', `${a1}:3478`])));
    const m1 = one!.results[0]!.mapped!;
    const m2 = two!.results[0]!.mapped!;
    expect(m1.split(':')[0]).toBe(lab.publicAddress('prc'));
    expect(m2.split(':')[0]).toBe(lab.publicAddress('prc'));
    expect(m1).not.toBe(m2);
  });

  it.each([['prc', 'pr1', 'pr2', 40000], ['cone', 'fc1', 'fc2', 40001]] as const)(
    '%s: two phones using the same local port each keep one mapping, on different public ports',
    async (lan, first, second, localPort) => {
      const port = String(localPort);
      const one = await probe<MapResult>(lab, first, ['map', '--local-port', port, '--to', targets]);
      const two = await probe<MapResult>(lab, second, ['map', '--local-port', port, '--to', targets]);
      expect(classifyMapping(one, lab.address(first)), JSON.stringify(one)).toBe('endpoint-independent');
      expect(classifyMapping(two, lab.address(second)), JSON.stringify(two)).toBe('endpoint-independent');
      // The first phone keeps its port (port preservation); the second cannot, and gets one other port for all destinations.
      expect(one.results[0]!.mapped).toBe(`${lab.publicAddress(lan)}:${port}`);
      expect(two.results[0]!.mapped).not.toBe(one.results[0]!.mapped);
    },
  );

  it('full cone: after one outbound packet a stranger reaches the phone at its mapped address; its LAN neighbour does not (no hairpinning)', async () => {
    const opened = await probe<MapResult>(lab, 'fc1', ['map', '--local-port', '4002', '--to', `${a1}:3478`]);
    const mapped = opened.results[0]!.mapped!;
    const server = await startProbeServer(lab, 'fc1', ['--addr', lab.address('fc1'), '--port', '4002']);
    try {
      const stranger = await probe<MapResult>(lab, 'stun2', ['map', '--to', mapped]);
      expect(stranger.results[0]?.mapped).toBe(`${b}:${stranger.local.split(':')[1]}`);
      const neighbour = await probe<MapResult>(lab, 'fc2', ['map', '--to', mapped, '--timeout', '500']);
      expect(neighbour.results[0]?.mapped).toBeNull();
      expect(server.requests.map((r) => r.from)).toEqual([`${b}:${stranger.local.split(':')[1]}`]);
    } finally {
      server.child.kill();
    }
  });

  it('keeps unsolicited traffic out: a public host cannot reach a NATed phone\'s private address', async () => {
    const server = await startProbeServer(lab, 'pr1', ['--addr', lab.address('pr1'), '--port', '4001']);
    try {
      const result = await probe<MapResult>(lab, 'stun2', ['map', '--to', `${lab.address('pr1')}:4001`, '--timeout', '500']);
      expect(result.results[0]?.mapped).toBeNull();
      expect(server.requests).toEqual([]);
    } finally {
      server.child.kill();
    }
  });

  describe('coturn turnutils_natdiscovery agrees with the lab', () => {
    const coturn = findCoturn();
    let server: RunningTurnServer | undefined;
    beforeAll(async () => {
      if (typeof coturn !== 'string') server = await startTurnServer(lab, coturn, 'turn');
    });
    afterAll(async () => {
      await server?.stop();
    });

    // Concurrent: natdiscovery waits out its receive timeouts (about 3 s each) for filtered replies.
    it.concurrent.for([
      ['pr1', ['Endpoint Independent Mapping', 'Address and Port Dependent Filtering']],
      ['sy1', ['Address and Port Dependent Mapping', 'Address and Port Dependent Filtering']],
      ['fc1', ['Endpoint Independent Mapping', 'Endpoint Independent Filtering']],
      ['rc1', ['Endpoint Independent Mapping', 'Address Dependent Filtering']],
    ] as const)('%s: %j', async ([host, verdicts], ctx) => {
      if (typeof coturn === 'string') return ctx.skip(coturn);
      const result = await natDiscovery(lab, coturn, host, lab.address('turn'));
      ctx.expect(result.verdicts, result.output).toEqual(verdicts);
    });
  });

  it('cleanupStale removes namespaces of dead runs and leaves live labs alone', async () => {
    // 4194304 is above the largest possible pid_max, so no live process can own this name.
    const fake = 'pl4194304-0-inet';
    const ip = findBinary('ip')!;
    expect((await run(ip, ['netns', 'add', fake])).code).toBe(0);
    const removed = await NetLab.cleanupStale();
    expect(removed).toContain(fake);
    expect(removed.filter((n) => n.startsWith(lab.prefix))).toEqual([]);
    const left = await namespaces();
    expect(left).not.toContain(fake);
    expect(left).toContain(lab.internetNamespace);
  });

  it('refuses a prefix that is in use, and leaves the lab using it intact', async () => {
    const err = await NetLab.create({ publicHosts: ['x'] }, { prefix: lab.prefix }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetLabError);
    expect((err as NetLabError).code).toBe('ERR_NETLAB_PREFIX_IN_USE');
    expect(await namespaces()).toContain(lab.namespace('stun1'));
  });

  it('tears down every namespace and process it created', async () => {
    const sleeper = lab.spawn('fc1', 'sleep', ['600']);
    const exited = new Promise((resolve) => sleeper.once('exit', (code, signal) => resolve(signal ?? code)));
    // A process the lab did not start itself (a grandchild) must go too.
    const orphan = await lab.exec('fc2', 'sh', ['-c', 'sleep 600 >/dev/null 2>&1 & echo $!']);
    const orphanPid = Number(orphan.stdout.trim());
    expect(orphanPid).toBeGreaterThan(0);
    await lab.destroy();
    await lab.destroy(); // idempotent
    expect(await exited).toBe('SIGTERM');
    expect(await processGone(orphanPid)).toBe(true);
    expect((await namespaces()).filter((n) => n.startsWith(lab.prefix))).toEqual([]);
    expect(lab.timings.teardownMs).toBeGreaterThan(0);
    console.info(`netlab: ${lab.prefix} torn down in ${lab.timings.teardownMs!.toFixed(0)} ms`);
    await expect(lab.exec('fc1', 'true')).rejects.toMatchObject({ code: 'ERR_NETLAB_DESTROYED' });
  });
});

describe.skipIf(!availability.ok)('network lab set-up failures', () => {
  it('reports every problem in a spec at once, before creating anything', async () => {
    const before = await namespaces();
    const err = await NetLab.create({
      publicHosts: [{ name: 'Bad_Name' }, { name: 'dup', addresses: 9 }],
      lans: [{ name: 'dup', nat: 'carrier-grade' as NatKind, hosts: [] }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetLabError);
    expect((err as NetLabError).code).toBe('ERR_NETLAB_SPEC');
    const message = (err as Error).message;
    expect(message).toContain('publicHosts[0]: name "Bad_Name"');
    expect(message).toContain('publicHosts[1].addresses: 9');
    expect(message).toContain('lans[0]: name "dup" is used twice');
    expect(message).toContain('lans[0].nat: "carrier-grade"');
    expect(message).toContain('lans[0].hosts: expected 1–8 host names');
    expect(await namespaces()).toEqual(before);
  });
});
