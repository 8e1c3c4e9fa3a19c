/**
 * `ctl probe` on loopback, real processes: a login server, two supernodes,
 * two phones. No NAT here, so the direct path must win; the netlab tests
 * (test/netlab/partyline-paths.test.ts) cover the NAT setups and relays.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControl } from '../../src/control/client.js';
import { LabNetwork, portBlock } from '../helpers/network.js';
import { CLI } from '../helpers/process.js';
import { ctlProbeJson } from '../helpers/probe.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const port = portBlock(200);
const sn = (i: number): string => `127.0.0.1:${port(1 + i)}`;

describe('ctl probe on loopback (real processes)', () => {
  let lab: LabNetwork;

  beforeAll(async () => {
    lab = await LabNetwork.create({ loginPort: port(0), users: ['sn1', 'sn2', 'alice', 'bob'] });
    await lab.startLoginServer();
    await lab.start('sn1', { port: port(1), supernode: true });
    await lab.start('sn2', { port: port(2), supernode: true, bootstrap: [sn(0)] });
    await Promise.all([lab.start('alice', { port: port(10), bootstrap: [sn(0)] }), lab.start('bob', { port: port(11), bootstrap: [sn(1)] })]);
    for (const p of ['alice', 'bob']) {
      await until(`${p} attached and published`, async () => {
        const other = p === 'alice' ? 'bob' : 'alice';
        const found = (await callControl(lab.nodes.get(p)!.control, 'search', { user: other })) as { devices: unknown[] };
        return found.devices.length > 0;
      }, 20_000);
    }
  }, 60_000);

  afterAll(async () => {
    await lab?.stopAll();
  });

  it('finds the direct path, exchanges voice-sized packets both ways, and reports what it tried', async () => {
    const report = await ctlProbeJson(lab.nodes.get('alice')!.control, 'bob', { seconds: 1 });
    expect(report.path).toBe('direct-udp');
    expect(report.sent).toBeGreaterThan(30);
    expect(report.received).toBeGreaterThan(report.sent * 0.9);
    expect(report.lossPct).toBeLessThan(10);
    expect(report.rttMs).toBeLessThan(50);
    expect(report.setupMs).not.toBeNull();
    expect(report.candidates.some((c) => c.kind === 'direct-udp' && c.state === 'validated')).toBe(true);
    const human = await run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get('bob')!.control, 'probe', 'alice', '--seconds', '0.5']);
    expect(human.stdout).toMatch(/^alice \([a-z2-7]+\): direct-udp, rtt [\d.]+ ms, loss [\d.]+%/);
  }, 30_000);

  it('says so for an unknown user', async () => {
    const result = run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get('alice')!.control, 'probe', 'nobody-here']);
    await expect(result).rejects.toMatchObject({ stderr: expect.stringContaining('no such user') });
  }, 20_000);
});
