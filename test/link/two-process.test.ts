import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/crypto/identity.js';
import { dialLink } from '../../src/link/transport.js';
import { memoryLogger } from '../helpers/log.js';
import { spawnCli } from '../helpers/process.js';
import type { Spawned } from '../helpers/process.js';

describe('two processes over TCP', () => {
  let node: Spawned;
  afterAll(async () => {
    await node?.stop();
  });

  it('completes a Noise handshake with a running node, exchanges messages, and survives a garbage peer', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'pl-node-'));
    // A supernode accepts links from anyone for a few seconds (time to show a credential); a phone accepts none.
    node = spawnCli(['start', '--log-level', 'debug'], { PARTYLINE_NODE__STATE_DIR: stateDir, PARTYLINE_NODE__LISTEN: '127.0.0.1', PARTYLINE_NETWORK__NAME: 'lab', PARTYLINE_SUPERNODE__POLICY: 'always', PARTYLINE_SUPERNODE__ATTACH_TIMEOUT_S: '20' });
    const started = await node.waitFor((l) => l.msg === 'node started');
    const port = started.port as number;
    expect(port).toBeGreaterThan(0);

    const { link, peer } = await dialLink({ identity: generateIdentity(), network: 'lab', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port });
    expect(peer.deviceId).toBe(started.deviceId);
    expect(peer.role).toBe('supernode');
    const rtt = await link.ping();
    expect(rtt).toBeGreaterThan(0);

    // A peer that speaks garbage is dropped with a logged typed error ...
    const garbage = connect(port, '127.0.0.1');
    garbage.resume();
    await new Promise((r) => garbage.once('connect', r));
    garbage.write('\x00\x05hello, is this a SIP server?\r\n');
    const failed = await node.waitFor((l) => l.msg === 'handshake failed');
    expect(failed.code).toBe('ERR_WIRE_FRAME_TOO_SHORT');
    // ... while the established link carries on.
    for (let i = 0; i < 5; i++) await link.ping();
    expect(link.closed).toBe(false);

    // A node of another network is refused at the handshake.
    await expect(dialLink({ identity: generateIdentity(), network: 'other', role: 'node', log: memoryLogger().log, host: '127.0.0.1', port })).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_/) });
    link.close();

    expect(await node.stop()).toBe(0);
    expect(node.lines.some((l) => l.msg === 'node stopped')).toBe(true);
  });
});
