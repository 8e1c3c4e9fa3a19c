/**
 * Partyline itself in the network lab: a login server and two supernodes
 * on the lab's internet, phones behind every kind of NAT, each a real
 * `partyline` process inside its namespace. Each phone logs in and reports
 * the NAT type it found with STUN against its supernodes (DESIGN.md
 * "Joining the network", step 4). Change-IP answers come from the second
 * supernode (RFC 5780 delegated over the supernodes' peer link).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { LabNetwork } from '../helpers/network.js';
import type { Placement } from '../helpers/network.js';
import { NetLab } from './lab.js';
import { until } from '../helpers/until.js';

const availability = await NetLab.available();


const PHONES = [
  { name: 'pub', lan: 'open', nat: 'open' },
  { name: 'prc1', lan: 'prc', nat: 'port-restricted' },
  { name: 'sym1', lan: 'sym', nat: 'symmetric' },
  { name: 'cone1', lan: 'cone', nat: 'full-cone' },
  { name: 'rc1', lan: 'rcone', nat: 'restricted' },
  { name: 'fw1', lan: 'fw', nat: 'udp-blocked' },
] as const;

describe.skipIf(!availability.ok)('Partyline behind real NATs (netlab)', () => {
  let net: NetLab;
  let lab: LabNetwork;
  const at = (host: string): Placement => ({ address: net.address(host), launch: (cmd, args, opts) => net.spawn(host, cmd, args, opts) });
  const status = async (name: string): Promise<NodeStatus> => (await callControl(lab.nodes.get(name)!.control, 'status')) as NodeStatus;

  beforeAll(async () => {
    await NetLab.cleanupStale();
    net = await NetLab.create({
      publicHosts: ['ls', 'sn1', 'sn2'],
      lans: PHONES.map((p) => ({ name: p.lan, nat: p.lan === 'open' ? 'none' : (p.nat as 'port-restricted'), hosts: [p.name] })),
    });
    lab = await LabNetwork.create({ loginPort: 5061, users: ['sn1', 'sn2', ...PHONES.map((p) => p.name)] });
    await lab.startLoginServer(at('ls'));
    const sn1 = `${net.address('sn1')}:4000`;
    await lab.start('sn1', { port: 4000, supernode: true, at: at('sn1') });
    await lab.start('sn2', { port: 4000, supernode: true, at: at('sn2'), bootstrap: [sn1] });
    await until('supernodes peered', async () => (await status('sn1')).peers === 1 && (await status('sn2')).peers === 1, 15_000);
    await Promise.all(PHONES.map((p) => lab.start(p.name, { port: 5000, at: at(p.name), bootstrap: [sn1] })));
  }, 90_000);

  afterAll(async () => {
    await lab?.stopAll();
    await net?.destroy();
  });

  it.each(PHONES.map((p) => [p.name, p.nat] as const))('%s logs in and reports NAT type %s', async (name, nat) => {
    const s = await until(`${name} classified`, async () => {
      const st = await status(name);
      return st.loggedIn && st.nat.checkedAt ? st : undefined;
    });
    expect(s.loggedIn).toBe(true);
    expect({ name, type: s.nat.type }).toEqual({ name, type: nat });
    const lan = PHONES.find((p) => p.name === name)!.lan;
    if (nat !== 'udp-blocked') {
      // What the supernode saw: the router's public address (or the phone's own when there is no NAT).
      expect(s.nat.publicAddress?.split(':')[0]).toBe(net.publicAddress(lan === 'open' ? name : lan));
    }
  });
});
