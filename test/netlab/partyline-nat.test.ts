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
 */
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
    await Promise.all(PHONES.map((p) => lab.start(p.name, { port: 5000, at: at(p.name), bootstrap: [sn1] })));
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
    expect(report.sent).toBeGreaterThan(30);
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
});
