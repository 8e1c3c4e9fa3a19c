/**
 * A phone that reaches its supernode at another address than the one the
 * supernode advertises (a port forward, a NAT in between, a second address
 * of the box — seen when the image booted in qemu, whose guest reaches the
 * host at 10.0.2.2) names the advertised one in its presence, so that its
 * supernode accepts it and others can reach it. Real processes on loopback:
 * the supernode serves on every address and advertises 127.0.0.1; alice
 * dials it at 127.0.0.2.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControl } from '../../src/control/client.js';
import { LabNetwork, portBlock } from '../helpers/network.js';
import { until } from '../helpers/until.js';

const port = portBlock(390);
const ADVERTISED = `127.0.0.1:${port(1)}`;
const DIALLED = `127.0.0.2:${port(1)}`;

interface BuddyView { user: string; online: boolean; presence: string }

describe('a supernode dialled at an address it does not advertise', () => {
  let lab: LabNetwork;
  const ctl = (name: string, command: string, args: Record<string, unknown> = {}): Promise<unknown> => callControl(lab.nodes.get(name)!.control, command, args, { timeoutMs: 10_000 });

  beforeAll(async () => {
    lab = await LabNetwork.create({ loginPort: port(0), users: ['sn', 'alice', 'bob'] });
    await lab.startLoginServer();
    const dir = join(lab.root, 'sn');
    await lab.start('sn', {
      port: port(1),
      supernode: true,
      extra: { node: { stateDir: dir, listen: '0.0.0.0', port: port(1), control: join(dir, 'c.sock') }, supernode: { policy: 'always', attachTimeoutS: 2, advertise: ADVERTISED } },
    });
    await lab.start('alice', { port: port(2), bootstrap: [DIALLED] });
    await lab.start('bob', { port: port(3), bootstrap: [ADVERTISED] });
  }, 60_000);

  afterAll(async () => {
    await lab?.stopAll();
  });

  it('the phone learns the advertised address at attach and names it in presence and its location record: a buddy sees it online, a message is delivered', async () => {
    const alice = lab.nodes.get('alice')!.proc;
    await until('bob logged in', async () => ((await ctl('bob', 'status')) as { loggedIn: boolean }).loggedIn, 20_000);
    await ctl('bob', 'buddy.add', { user: 'alice' });
    await until('bob sees alice online', async () => ((await ctl('bob', 'buddies')) as BuddyView[]).some((b) => b.user === 'alice' && b.online), 10_000);
    const sent = (await ctl('bob', 'message', { user: 'alice', text: 'through the advertised address' })) as { delivered: number };
    expect(sent, JSON.stringify(sent)).toMatchObject({ delivered: 1 });
    expect(alice.lines.filter((l) => l.msg === 'cannot publish presence' || l.msg === 'cannot publish the location record')).toEqual([]);
    expect(alice.lines.find((l) => l.msg === 'attached to supernode')).toMatchObject({ supernode: DIALLED, advertised: ADVERTISED });
  });
});
