/**
 * The overlay spine with real processes on loopback: a login server, three
 * supernodes and six phones, each its own `partyline` process (issue
 * "Overlay spine", Tests). The scenarios run in order on one network.
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { issueCredential } from '../../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../../src/crypto/identity.js';
import { RemoteError } from '../../src/link/link.js';
import { dialLink } from '../../src/link/transport.js';
import { Attach } from '../../src/overlay/messages.js';
import { memoryLogger } from '../helpers/log.js';
import { LabNetwork, portBlock } from '../helpers/network.js';
import { CLI } from '../helpers/process.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const port = portBlock(0);
const SUPERNODES = ['sn1', 'sn2', 'sn3'];
const PHONES = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];

type Status = NodeStatus;

async function status(lab: LabNetwork, name: string): Promise<Status> {
  return (await callControl(lab.nodes.get(name)!.control, 'status')) as Status;
}


const snAddress = (i: number): string => `127.0.0.1:${port(1 + i)}`;

describe('overlay spine: login server, 3 supernodes, 6 phones (real processes)', () => {
  let lab: LabNetwork;

  beforeAll(async () => {
    lab = await LabNetwork.create({ loginPort: port(0), users: [...SUPERNODES, ...PHONES, 'wrongpw'] });
    await lab.startLoginServer();
    await lab.start('sn1', { port: port(1), supernode: true });
    await Promise.all([
      lab.start('sn2', { port: port(2), supernode: true, bootstrap: [snAddress(0)] }),
      lab.start('sn3', { port: port(3), supernode: true, bootstrap: [snAddress(0)] }),
    ]);
    // Supernodes find each other through the bootstrap list and gossip.
    for (const sn of SUPERNODES) await until(`${sn} to peer with the others`, async () => (await status(lab, sn)).peers === 2, 15_000);
    // Each phone knows one supernode (spreading them out); it learns the others from it.
    await Promise.all(PHONES.map((p, i) => lab.start(p, { port: port(10 + i), bootstrap: [snAddress(i % 3)] })));
  }, 60_000);

  afterAll(async () => {
    await lab?.stopAll();
  });

  it('every node logs in; ctl status --json shows each phone attached', async () => {
    for (const p of PHONES) {
      const s = await until(`${p} attached`, async () => {
        const st = await status(lab, p);
        return st.loggedIn ? st : undefined;
      });
      expect(s).toMatchObject({ user: p, role: 'ordinary', loggedIn: true });
      expect(s.supernode!.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(s.hostCache.size).toBeGreaterThanOrEqual(3);
    }
    for (const sn of SUPERNODES) expect(await status(lab, sn)).toMatchObject({ user: sn, role: 'supernode', loggedIn: true });
    // On loopback there is no NAT: STUN against two supernodes says so, and sees the phone's own address.
    for (const p of PHONES) {
      const s = await until(`${p} NAT classified`, async () => {
        const st = await status(lab, p);
        return st.nat.checkedAt ? st : undefined;
      });
      expect(s.nat).toMatchObject({ type: 'open', publicAddress: `127.0.0.1:${lab.nodes.get(p)!.port}` });
    }
    const attached = await Promise.all(SUPERNODES.map(async (sn) => (await status(lab, sn)).attachedNodes ?? 0));
    expect(attached.reduce((a, b) => a + b, 0)).toBe(PHONES.length);

    // The same through the CLI, as a script would use it.
    const { stdout } = await run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get('p1')!.control, 'status', '--json']);
    const json = JSON.parse(stdout) as Status;
    expect(json).toMatchObject({ user: 'p1', deviceId: expect.stringMatching(/^[a-z2-7]{16}$/), role: 'ordinary', loggedIn: true, hostCache: { size: expect.any(Number) } });
    expect(typeof json.uptimeS).toBe('number');
    const human = await run(process.execPath, [CLI, 'ctl', '--config', lab.nodes.get('p1')!.configPath, 'status']);
    expect(human.stdout).toContain('p1');
  });

  it('every phone finds every other through the global index; an unknown user is "no such user"', async () => {
    const ids = new Map<string, string>();
    for (const p of PHONES) ids.set(p, (await status(lab, p)).deviceId);
    for (const from of PHONES) {
      for (const to of PHONES) {
        if (from === to) continue;
        const r = await until(`${from} to find ${to}`, async () => {
          const answer = (await callControl(lab.nodes.get(from)!.control, 'search', { user: to })) as { found: boolean; source: string; devices: Array<{ deviceId: string }> };
          return answer.found && answer.devices.length > 0 ? answer : undefined;
        });
        expect(r).toMatchObject({ found: true, user: to, online: true, source: 'index' });
        expect(r.devices.map((d) => d.deviceId)).toEqual([ids.get(to)]);
      }
    }
    const nobody = await run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get('p1')!.control, 'search', 'nobody-at-all', '--json']);
    expect(JSON.parse(nobody.stdout)).toMatchObject({ found: false, user: 'nobody-at-all' });
    const human = await run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get('p1')!.control, 'search', 'p2']);
    expect(human.stdout).toContain('p2: online');
  }, 30_000);

  it('refuses a wrong password with a clear error, and the phone says why', async () => {
    await lab.start('wrongpw', { port: port(20), bootstrap: [snAddress(0)], password: 'not-the-password' });
    const s = await until('the login refusal', async () => {
      const st = await status(lab, 'wrongpw');
      return st.overlay.lastError ? st : undefined;
    });
    expect(s.loggedIn).toBe(false);
    expect(s.overlay.lastError).toMatch(/password/i);
    await lab.nodes.get('wrongpw')!.proc.stop();
  });

  it('refuses an unknown user', async () => {
    await lab.start('nobody-here', { port: port(21), bootstrap: [snAddress(0)] });
    const s = await until('the login refusal', async () => {
      const st = await status(lab, 'nobody-here');
      return st.overlay.lastError ? st : undefined;
    });
    expect(s.loggedIn).toBe(false);
    expect(s.overlay.lastError).toMatch(/unknown user|no such user/i);
    await lab.nodes.get('nobody-here')!.proc.stop();
  });

  it('drops forged, expired and missing credentials, garbage and silent clients; keeps serving the others', async () => {
    const target = { host: '127.0.0.1', port: port(1) };
    const before = (await status(lab, 'sn1')).attachedNodes;
    const silent = connect(target.port, target.host);
    silent.resume();
    const silentClosed = new Promise((r) => silent.once('close', r));

    const device = generateIdentity();
    const dial = () => dialLink({ identity: device, network: 'lab', role: 'node', log: memoryLogger().log, ...target });
    const fields = {
      user: 'p1', deviceId: device.deviceId, deviceKey: device.signing.publicKey.toString('base64'),
      noiseKey: device.noise.publicKey.toString('base64'), network: 'lab', issued: Date.now(), expires: Date.now() + 3_600_000,
    };
    const loginKey = lab.loginIdentity!.signing;

    const forged = await dial();
    await expect(forged.link.request(Attach, { credential: { ...issueCredential(fields, generateSigningKeyPair()) } })).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_SIGNATURE' });
    const expired = await dial();
    await expect(expired.link.request(Attach, { credential: { ...issueCredential({ ...fields, issued: Date.now() - 7_200_000, expires: Date.now() - 3_600_000 }, loginKey) } }))
      .rejects.toMatchObject({ code: 'ERR_CREDENTIAL_EXPIRED' });
    // A credential for another device, replayed on our link.
    const other = generateIdentity();
    const stolen = issueCredential({ ...fields, deviceId: other.deviceId, deviceKey: other.signing.publicKey.toString('base64'), noiseKey: other.noise.publicKey.toString('base64') }, loginKey);
    const replay = await dial();
    const replayed = await replay.link.request(Attach, { credential: { ...stolen } }).catch((e: unknown) => e);
    expect(replayed).toBeInstanceOf(RemoteError);
    expect((replayed as RemoteError).code).toBe('ERR_CREDENTIAL_KEY_BINDING');

    // A client that completes the handshake but never attaches is dropped after attachTimeoutS (2 s here).
    const idle = await dial();
    const idleClosed = new Promise((r) => idle.link.once('close', r));
    // Garbage on the TCP port.
    const garbage = connect(target.port, target.host);
    garbage.resume();
    garbage.write(Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS? no.'));
    await new Promise((r) => garbage.once('close', r));
    await idleClosed;
    await silentClosed; // handshake timeout (5 s)

    // The attached phones never noticed.
    expect((await status(lab, 'sn1')).attachedNodes).toBe(before);
    for (const p of PHONES) expect((await status(lab, p)).loggedIn).toBe(true);
    for (const c of [forged, expired, replay]) c.link.close();
  }, 20_000);

  it('kill a supernode: its phones re-attach to another within 5 s', async () => {
    const victims: string[] = [];
    for (const p of PHONES) if ((await status(lab, p)).supernode?.address === snAddress(1)) victims.push(p);
    expect(victims.length).toBeGreaterThan(0);
    const killedAt = Date.now();
    await lab.nodes.get('sn2')!.proc.stop('SIGKILL');
    for (const p of victims) {
      const s = await until(`${p} to re-attach`, async () => {
        const st = await status(lab, p);
        return st.loggedIn && st.supernode && st.supernode.address !== snAddress(1) ? st : undefined;
      }, 5000);
      expect([snAddress(0), snAddress(2)]).toContain(s.supernode!.address);
    }
    expect(Date.now() - killedAt).toBeLessThan(5000);
  });

  it('restart a phone: it uses its persisted host cache and keeps its device key', async () => {
    const p = lab.nodes.get('p4')!;
    const before = await status(lab, 'p4');
    const cache = JSON.parse(await readFile(join(p.dir, 'host-cache.json'), 'utf8')) as { entries: Array<{ address: string }> };
    expect(cache.entries.length).toBeGreaterThanOrEqual(3);
    // Take the bootstrap list away: the host cache alone must bring it back.
    const config = await readFile(p.configPath, 'utf8');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(p.configPath, config.replace(/bootstrap:\n(\s+- .*\n)+/, 'bootstrap: []\n'));
    expect(await readFile(p.configPath, 'utf8')).toContain('bootstrap: []');
    await lab.restart('p4');
    const after = await until('p4 back', async () => {
      const st = await status(lab, 'p4');
      return st.loggedIn ? st : undefined;
    });
    expect(after.deviceId).toBe(before.deviceId);
  });

  it('login server down: phones stay logged in, and one whose supernode dies re-attaches without it', async () => {
    await lab.stopLoginServer();
    for (const p of PHONES) expect((await status(lab, p)).loggedIn).toBe(true);
    const victims: string[] = [];
    for (const p of PHONES) if ((await status(lab, p)).supernode?.address === snAddress(2)) victims.push(p);
    expect(victims.length).toBeGreaterThan(0);
    await lab.nodes.get('sn3')!.proc.stop('SIGKILL');
    for (const p of victims) {
      const s = await until(`${p} to re-attach without the login server`, async () => {
        const st = await status(lab, p);
        return st.loggedIn && st.supernode?.address === snAddress(0) ? st : undefined;
      }, 5000);
      expect(s.loggedIn).toBe(true);
    }
    // A restarted phone comes back on its saved credential too.
    await lab.restart('p1');
    expect((await until('p1 back without the login server', async () => {
      const st = await status(lab, 'p1');
      return st.loggedIn ? st : undefined;
    })).supernode?.address).toBe(snAddress(0));
  });
});
