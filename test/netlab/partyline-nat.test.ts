/**
 * Partyline itself in the network lab: a login server and two supernodes
 * on the lab's internet, phones behind every kind of NAT, each a real
 * `partyline` process inside its namespace (issue "NAT traversal and
 * relays", Tests).
 *
 * 1. Each phone logs in and reports the NAT type it found with STUN
 *    against its supernodes (DESIGN.md "Joining the network", step 4);
 *    change-IP answers come from the second supernode. Where coturn is
 *    installed, turnutils_natdiscovery run from the same namespace agrees.
 * 2. `ctl probe` between phones picks the path the setup allows — direct
 *    UDP wherever hole punching can work, the supernode's UDP relay for
 *    symmetric vs port-restricted, its TCP relay when UDP is blocked — and
 *    packets flow both ways on it.
 * 3. Cutting the direct path mid-probe moves the probe to the relay.
 * 4. Calls (issue "Calls and media"): speech both ways over a direct path,
 *    the UDP relay and the TCP relay, and through 10 % random loss.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import type { ProbeReportView } from '../../src/cli/ctl-probe.js';
import { callControl } from '../../src/control/client.js';
import { LabNetwork } from '../helpers/network.js';
import type { Placement } from '../helpers/network.js';
import { ctlProbeJson } from '../helpers/probe.js';
import { until } from '../helpers/until.js';
import { findCoturn, natDiscovery, startTurnServer } from './coturn.js';
import type { RunningTurnServer } from './coturn.js';
import { NetLab } from './lab.js';
import { LOSS_THRESHOLD, SPEECH, SPEECH_THRESHOLD, speechSimilarity } from '../call/speech.js';

const availability = await NetLab.available();

type Nat = 'open' | 'port-restricted' | 'symmetric' | 'full-cone' | 'restricted' | 'udp-blocked';
const PHONES: ReadonlyArray<{ name: string; lan: string; nat: Nat }> = [
  { name: 'pub', lan: 'open', nat: 'open' },
  { name: 'pub2', lan: 'open2', nat: 'open' },
  { name: 'prc1', lan: 'prc', nat: 'port-restricted' },
  { name: 'prc2', lan: 'prcb', nat: 'port-restricted' },
  { name: 'sym1', lan: 'sym', nat: 'symmetric' },
  { name: 'cone1', lan: 'cone', nat: 'full-cone' },
  { name: 'rc1', lan: 'rcone', nat: 'restricted' },
  { name: 'fw1', lan: 'fw', nat: 'udp-blocked' },
  { name: 'fw2', lan: 'fwb', nat: 'udp-blocked' },
  { name: 'same1', lan: 'same', nat: 'port-restricted' },
  { name: 'same2', lan: 'same', nat: 'port-restricted' },
];

/** turnutils_natdiscovery's verdicts, in our words (RFC 4787 behaviours → classic names). */
function fromNatDiscovery(verdicts: string[]): string {
  const [mapping, filtering] = verdicts;
  if (mapping && mapping !== 'Endpoint Independent Mapping') return 'symmetric';
  if (filtering === 'Endpoint Independent Filtering') return 'full-cone';
  if (filtering === 'Address Dependent Filtering') return 'restricted';
  if (filtering === 'Address and Port Dependent Filtering') return 'port-restricted';
  return `unknown (${verdicts.join(', ')})`;
}

describe.skipIf(!availability.ok)('Partyline behind real NATs (netlab)', () => {
  let net: NetLab;
  let lab: LabNetwork;
  const at = (host: string): Placement => ({ address: net.address(host), launch: (cmd, args, opts) => net.spawn(host, cmd, args, opts) });
  const status = async (name: string): Promise<NodeStatus> => (await callControl(lab.nodes.get(name)!.control, 'status')) as NodeStatus;
  const probe = (from: string, to: string, seconds = 1): Promise<ProbeReportView> => ctlProbeJson(lab.nodes.get(from)!.control, to, { seconds, timeoutMs: 30_000 });

  beforeAll(async () => {
    await NetLab.cleanupStale();
    const lans = new Map<string, { name: string; nat: 'none' | Exclude<Nat, 'open'>; hosts: string[] }>();
    for (const p of PHONES) {
      const lan = lans.get(p.lan) ?? { name: p.lan, nat: p.nat === 'open' ? 'none' : p.nat, hosts: [] };
      lan.hosts.push(p.name);
      lans.set(p.lan, lan);
    }
    net = await NetLab.create({ publicHosts: ['ls', 'sn1', 'sn2', { name: 'turn', addresses: 2 }], lans: [...lans.values()] });
    lab = await LabNetwork.create({ loginPort: 5061, users: ['sn1', 'sn2', ...PHONES.map((p) => p.name)] });
    await lab.startLoginServer(at('ls'));
    const sn1 = `${net.address('sn1')}:4000`;
    await lab.start('sn1', { port: 4000, supernode: true, at: at('sn1') });
    await lab.start('sn2', { port: 4000, supernode: true, at: at('sn2'), bootstrap: [sn1] });
    await until('supernodes peered', async () => (await status('sn1')).peers === 1 && (await status('sn2')).peers === 1, 15_000);
    // Phones speak one of two sentences (sim audio driver) and record what they hear.
    await Promise.all(PHONES.map((p, i) => lab.start(p.name, { port: 5000, at: at(p.name), bootstrap: [sn1], extra: { hal: { audio: { input: i % 2 === 0 ? SPEECH.a : SPEECH.b, output: join(lab.root, `${p.name}.wav`) } } } })));
    // Classified and published: what the probes need.
    await Promise.all(PHONES.map((p) => until(`${p.name} classified`, async () => {
      const st = await status(p.name);
      return st.loggedIn && st.nat.checkedAt !== null && st.nat.checkedAt !== undefined;
    }, 20_000)));
  }, 120_000);

  afterAll(async () => {
    await lab?.stopAll();
    await net?.destroy();
  });

  it.each(PHONES.map((p) => [p.name, p.nat] as const))('%s logs in and reports NAT type %s', async (name, nat) => {
    const s = await status(name);
    expect(s.loggedIn).toBe(true);
    expect({ name, type: s.nat.type }).toEqual({ name, type: nat });
    const lan = PHONES.find((p) => p.name === name)!.lan;
    if (nat !== 'udp-blocked') {
      // What the supernode saw: the router's public address (or the phone's own when there is no NAT).
      expect(s.nat.publicAddress?.split(':')[0]).toBe(net.publicAddress(nat === 'open' ? name : lan));
    }
  });

  describe('coturn turnutils_natdiscovery agrees with each phone', () => {
    const coturn = findCoturn();
    let server: RunningTurnServer | undefined;
    beforeAll(async () => {
      if (typeof coturn !== 'string') server = await startTurnServer(net, coturn, 'turn');
    });
    afterAll(async () => {
      await server?.stop();
    });
    // Concurrent: natdiscovery waits out its receive timeouts for filtered replies.
    it.concurrent.for(['prc1', 'sym1', 'cone1', 'rc1'])('%s', async (name, ctx) => {
      if (typeof coturn === 'string') return ctx.skip(coturn);
      const result = await natDiscovery(net, coturn, name, net.address('turn'));
      const ours = (await status(name)).nat.type;
      ctx.expect({ name, natdiscovery: fromNatDiscovery(result.verdicts) }, result.output).toEqual({ name, natdiscovery: ours });
    });
  });

  const SETUPS = [
    ['both public', 'pub', 'pub2', 'direct-udp'],
    ['one behind port-restricted NAT', 'pub', 'prc1', 'direct-udp'],
    ['both behind port-restricted NAT', 'prc1', 'prc2', 'direct-udp'],
    ['full cone vs symmetric', 'cone1', 'sym1', 'direct-udp'],
    ['restricted cone vs symmetric', 'rc1', 'sym1', 'direct-udp'],
    ['symmetric vs port-restricted', 'sym1', 'prc2', 'relay-udp'],
    ['both behind a UDP-blocking firewall', 'fw1', 'fw2', 'relay-tcp'],
    ['one behind a UDP-blocking firewall', 'fw1', 'pub', 'relay-tcp'],
    ['both behind the same NAT', 'same1', 'same2', 'direct-udp'],
  ] as const;

  it.concurrent.for(SETUPS)('%s: %s -> %s takes %s, packets flow both ways', { timeout: 40_000 }, async ([, from, to, path], { expect }) => {
    const report = await probe(from, to);
    expect({ from, to, path: report.path }).toEqual({ from, to, path });
    // A ping every 20 ms for 1 s: ~50, fewer when the lab shares the two cores with another netlab suite (timer pacing is for bench/).
    expect(report.sent).toBeGreaterThan(10);
    // Pongs are the peer's answers to our pings: received > 0 means packets went both ways.
    expect(report.received).toBeGreaterThan(report.sent * 0.9);
    expect(report.setupMs).not.toBeNull();
    if (from === 'same1') {
      // Over the LAN, not out through the router.
      const selected = report.candidates.find((c) => c.state === 'validated' && c.kind === 'direct-udp' && c.address.startsWith(`${net.address(to)}:`));
      expect(selected, JSON.stringify(report.candidates)).toBeDefined();
    }
  });

  it('moves to the relay when the direct path is cut mid-probe', async () => {
    const cut = `add table ip cut
add chain ip cut block { type filter hook forward priority -10; policy accept; }
add rule ip cut block ip saddr ${net.address('pub2')} meta l4proto udp drop
add rule ip cut block ip daddr ${net.address('pub2')} meta l4proto udp drop
`;
    const running = probe('pub2', 'prc1', 5);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const applied = await net.exec('prc', 'nft', ['-f', '-'], { input: cut });
    expect(applied.code, applied.stderr).toBe(0);
    try {
      const report = await running;
      expect(report.switches.map((s) => [s.from, s.to])).toEqual([['direct-udp', 'relay-udp']]);
      expect(report.path).toBe('relay-udp');
      // Pings sent while the dead path was being detected are lost; the rest arrive.
      expect(report.received).toBeGreaterThan(report.sent * 0.4);
    } finally {
      await net.exec('prc', 'nft', ['delete', 'table', 'ip', 'cut']);
    }
  }, 40_000);

  describe('calls', () => {
    const ctl = (name: string, command: string, args: Record<string, unknown> = {}): Promise<unknown> => callControl(lab.nodes.get(name)!.control, command, args, { timeoutMs: 20_000 });
    const speaks = (name: string): string => (PHONES.findIndex((p) => p.name === name) % 2 === 0 ? SPEECH.a : SPEECH.b);

    /** Call, let them talk for `seconds`, hang up; what each heard, and the caller's view of the call. */
    async function talk(from: string, to: string, seconds: number): Promise<{ view: NonNullable<NodeStatus['call']>; callee: NonNullable<NodeStatus['call']>; calleeHeard: Awaited<ReturnType<typeof speechSimilarity>>; callerHeard: Awaited<ReturnType<typeof speechSimilarity>> }> {
      await ctl(from, 'call', { user: to });
      await until(`${to} rings`, async () => (await status(to)).call?.state === 'ringing', 10_000);
      await ctl(to, 'answer');
      await until(`${from} and ${to} have media`, async () => ((await status(from)).call?.rtp.packetsReceived ?? 0) > 20 && ((await status(to)).call?.rtp.packetsReceived ?? 0) > 20, 15_000);
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const view = (await status(from)).call!;
      const callee = (await status(to)).call!;
      await ctl(from, 'hangup');
      await until('the call ended on both sides', async () => (await status(from)).call === null && (await status(to)).call === null, 10_000);
      const heard = {
        view,
        callee,
        calleeHeard: await speechSimilarity(speaks(from), join(lab.root, `${to}.wav`)),
        callerHeard: await speechSimilarity(speaks(to), join(lab.root, `${from}.wav`)),
      };
      console.log(`${from} -> ${to} over ${view.path}: ${to} heard ${heard.calleeHeard.match.toFixed(2)}, ${from} heard ${heard.callerHeard.match.toFixed(2)} (chance ${Math.max(heard.calleeHeard.chance, heard.callerHeard.chance).toFixed(2)}); lost ${view.rtp.packetsLost}/${view.rtp.packetsReceived + view.rtp.packetsLost}, MOS ${view.mos}, FEC ${callee.rtp.fec ? 'on' : 'off'} at ${to}`);
      return heard;
    }

    const CALLS = [
      ['direct', 'pub', 'prc1', 'direct-udp'],
      ['UDP relay', 'sym1', 'prc2', 'relay-udp'],
      ['TCP relay', 'fw1', 'fw2', 'relay-tcp'],
    ] as const;

    it.concurrent.for(CALLS)('%s: %s calls %s over %s, each hears the other', { timeout: 60_000 }, async ([, from, to, path], { expect }) => {
      const { view, calleeHeard, callerHeard } = await talk(from, to, 5);
      expect({ from, to, path: view.path }).toEqual({ from, to, path });
      // The callee is behind a NAT: no direct link to it, so signalling went through the supernodes.
      expect(view.signalling).toBe('supernodes');
      expect(view.rtp.packetsReceived).toBeGreaterThan(200);
      expect(calleeHeard.match, `${to} heard ${from}`).toBeGreaterThan(SPEECH_THRESHOLD);
      expect(callerHeard.match, `${from} heard ${to}`).toBeGreaterThan(SPEECH_THRESHOLD);
    });

    it('10 % random packet loss each way: the call survives, FEC comes on, and the speech still gets through', async () => {
      // Every UDP packet through the router of pub2's LAN has a 1 in 10 chance of being dropped, both ways.
      const loss = `add table ip loss
add chain ip loss lossy { type filter hook forward priority -10; policy accept; }
add rule ip loss lossy meta l4proto udp numgen random mod 100 < 10 drop
`;
      const applied = await net.exec('open2', 'nft', ['-f', '-'], { input: loss });
      expect(applied.code, applied.stderr).toBe(0);
      try {
        const { view, callee, calleeHeard, callerHeard } = await talk('pub2', 'cone1', 6);
        expect(view.path).toBe('direct-udp');
        // Both sides saw the loss in the other's reports and switched in-band FEC on.
        expect(view.rtp.fec).toBe(true);
        expect(callee.rtp.fec).toBe(true);
        const lossPct = (view.rtp.packetsLost / (view.rtp.packetsLost + view.rtp.packetsReceived)) * 100;
        expect(lossPct).toBeGreaterThan(4);
        expect(lossPct).toBeLessThan(20);
        expect(view.mos).not.toBeNull();
        expect(calleeHeard.match, 'cone1 heard pub2 through the loss').toBeGreaterThan(LOSS_THRESHOLD);
        expect(callerHeard.match, 'pub2 heard cone1 through the loss').toBeGreaterThan(LOSS_THRESHOLD);
      } finally {
        await net.exec('open2', 'nft', ['delete', 'table', 'ip', 'loss']);
      }
    }, 60_000);
  });
});
