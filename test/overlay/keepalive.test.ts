/**
 * Keep-alive and the firewall case with real processes: a frozen supernode
 * (SIGSTOP: no FIN, no RST, just silence) is noticed by the keep-alive and
 * left for another; a frozen phone is dropped by its supernode; a phone
 * that cannot reach the login server logs in through a supernode tunnel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { LabNetwork, portBlock } from '../helpers/network.js';
import { until } from '../helpers/until.js';

const port = portBlock(100);
const sn = (i: number): string => `127.0.0.1:${port(1 + i)}`;


describe('keep-alive and login tunnels (real processes)', () => {
  let lab: LabNetwork;
  const status = async (name: string): Promise<NodeStatus> => (await callControl(lab.nodes.get(name)!.control, 'status')) as NodeStatus;

  beforeAll(async () => {
    lab = await LabNetwork.create({ loginPort: port(0), users: ['sn1', 'sn2', 'ann', 'bob'] });
    await lab.startLoginServer();
    await lab.start('sn1', { port: port(1), supernode: true, keepAliveS: 1 });
    await lab.start('sn2', { port: port(2), supernode: true, bootstrap: [sn(0)], keepAliveS: 1 });
    await until('supernodes peered', async () => (await status('sn1')).peers === 1 && (await status('sn2')).peers === 1, 15_000);
  }, 60_000);

  afterAll(async () => {
    await lab?.stopAll();
  });

  it('a phone that cannot reach the login server logs in through the supernode', async () => {
    // Its login server address is a closed port; the supernode knows the real one.
    await lab.start('ann', { port: port(10), bootstrap: [sn(0)], loginAddress: `127.0.0.1:${port(99)}`, keepAliveS: 1 });
    const s = await until('ann logged in', async () => {
      const st = await status('ann');
      return st.loggedIn ? st : undefined;
    });
    expect(s.credential?.via).toBe('tunnel');
    expect(s.supernode?.address).toBe(sn(0));
  });

  it('a frozen supernode is noticed by the keep-alive and the phone moves within 5 s', async () => {
    const frozen = lab.nodes.get('sn1')!.proc.child;
    frozen.kill('SIGSTOP');
    try {
      const started = Date.now();
      const s = await until('ann on sn2', async () => {
        const st = await status('ann');
        return st.loggedIn && st.supernode?.address === sn(1) ? st : undefined;
      }, 5000);
      expect(s.loggedIn).toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      frozen.kill('SIGCONT');
    }
  });

  it('a frozen phone is dropped by its supernode after 2.5 keep-alive intervals', async () => {
    await lab.start('bob', { port: port(11), bootstrap: [sn(1)], keepAliveS: 1 });
    await until('bob attached', async () => (await status('bob')).loggedIn);
    const attached = (await status('sn2')).attachedNodes!;
    const phone = lab.nodes.get('bob')!.proc.child;
    phone.kill('SIGSTOP');
    try {
      await until('sn2 to drop bob', async () => (await status('sn2')).attachedNodes === attached - 1, 6000);
      expect(lab.nodes.get('sn2')!.proc.lines.some((l) => l.msg === 'dropping silent node' && l.user === 'bob')).toBe(true);
    } finally {
      phone.kill('SIGCONT');
    }
    // Awake again, it notices the closed link and attaches anew.
    await until('bob back', async () => (await status('bob')).loggedIn);
  });
});
