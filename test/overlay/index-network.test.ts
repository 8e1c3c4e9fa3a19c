/**
 * The global index with its users, as real processes on loopback (issue 5,
 * Tests): a login server, 5 supernodes (k = 3) and 20 users, each a real
 * `partyline` phone process that logs in, attaches and publishes its
 * signed record — plus a second device of one user. The scenarios run in
 * order on one network; the last one kills two supernodes.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { issueCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { generateIdentity, parseIdentity } from '../../src/crypto/identity.js';
import type { Identity } from '../../src/crypto/identity.js';
import { dialLink } from '../../src/link/transport.js';
import { INDEX_LINK_ROLE, IndexHello } from '../../src/overlay/index/link-pool.js';
import { Store } from '../../src/overlay/index/messages.js';
import { supernodeId, userKey } from '../../src/overlay/index/node-id.js';
import { NodeIndexPublish } from '../../src/overlay/index/node-messages.js';
import type { NodeIndexSearchResponse } from '../../src/overlay/index/node-messages.js';
import { signLocationRecord } from '../../src/overlay/index/record.js';
import type { LocationRecord } from '../../src/overlay/index/record.js';
import { Attach } from '../../src/overlay/messages.js';
import { PresencePublish } from '../../src/overlay/presence/messages.js';
import { signPresence } from '../../src/overlay/presence/update.js';
import { silentLogger } from '../../src/system/logging.js';
import { LabNetwork, portBlock } from '../helpers/network.js';
import { CLI } from '../helpers/process.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);
const port = portBlock(300);
const K = 3;
const SUPERNODES = ['sn1', 'sn2', 'sn3', 'sn4', 'sn5'];
const USERS = Array.from({ length: 20 }, (_, i) => `u${String(i + 1).padStart(2, '0')}`);
/** The second device of u01. */
const SECOND = 'u01b';
const snAddress = (i: number): string => `127.0.0.1:${port(1 + i)}`;
const log = silentLogger();

interface BuddyView { user: string; online: boolean; presence: string }
interface ImView { id: string; direction: 'in' | 'out'; from: string; to: string; time: number; text: string; delivered: boolean }

describe('global index, buddies, presence and messages: 5 supernodes, 20 users (real processes)', () => {
  let lab: LabNetwork;
  const timings: Record<string, number> = {};
  const ctl = async <T>(name: string, command: string, args: Record<string, unknown> = {}): Promise<T> =>
    (await callControl(lab.nodes.get(name)!.control, command, args, { timeoutMs: 15_000 })) as T;
  const status = (name: string): Promise<NodeStatus> => ctl<NodeStatus>(name, 'status');
  const search = (from: string, user: string): Promise<NodeIndexSearchResponse> => ctl<NodeIndexSearchResponse>(from, 'search', { user });
  const buddyOf = async (name: string, buddy: string): Promise<BuddyView | undefined> => (await ctl<BuddyView[]>(name, 'buddies')).find((b) => b.user === buddy);
  const cli = (name: string, ...args: string[]) => run(process.execPath, [CLI, 'ctl', '--socket', lab.nodes.get(name)!.control, ...args]);
  /** The supernodes by distance of their id (SHA-256 of the Noise key in their identity file) to a user's key. */
  const closestSupernodes = async (user: string): Promise<string[]> => {
    const ids = await Promise.all(SUPERNODES.map(async (sn) => {
      const identity: Identity = parseIdentity(await readFile(join(lab.nodes.get(sn)!.dir, 'identity.json'), 'utf8'));
      return { sn, id: supernodeId(identity.noise.publicKey) };
    }));
    const key = userKey(user);
    return ids.sort((a, b) => ((a.id ^ key) < (b.id ^ key) ? -1 : 1)).map((x) => x.sn);
  };
  const startPhone = (name: string, i: number, user = name) =>
    lab.start(name, {
      port: port(20 + i),
      user,
      bootstrap: [snAddress(i % SUPERNODES.length)],
      keepAliveS: 1,
      // u19 is behind a firewall that blocks the login server: it logs in, and reaches its buddy list, through its supernode.
      ...(name === 'u19' ? { loginAddress: `127.0.0.1:${port(99)}` } : {}),
    });

  beforeAll(async () => {
    const started = Date.now();
    lab = await LabNetwork.create({ loginPort: port(0), users: [...SUPERNODES, ...USERS] });
    await lab.startLoginServer();
    const supernode = (i: number) => ({
      port: port(1 + i),
      supernode: true,
      keepAliveS: 1,
      ...(i > 0 ? { bootstrap: [snAddress(0)] } : {}),
      extra: { supernode: { policy: 'always', attachTimeoutS: 2, indexReplicas: K, maxLinksPerAddress: 500 } },
    });
    await lab.start('sn1', supernode(0));
    await Promise.all(SUPERNODES.slice(1).map((sn, i) => lab.start(sn, supernode(i + 1))));
    for (const sn of SUPERNODES) await until(`${sn} to peer`, async () => ((await status(sn)).peers ?? 0) >= 2, 20_000);
    await Promise.all(USERS.map((u, i) => startPhone(u, i)));
    await startPhone(SECOND, USERS.length, 'u01');
    await Promise.all([...USERS, SECOND].map((p) => until(`${p} logged in`, async () => (await status(p)).loggedIn, 20_000)));
    timings.startup = Date.now() - started;
  }, 90_000);

  afterAll(async () => {
    await lab?.stopAll();
    // The figures the closing note quotes.
    console.log(`index-network timings (ms): ${JSON.stringify(timings)}`);
  });

  it('every user finds every other through the index; both devices of u01 are in its record', async () => {
    const started = Date.now();
    const ids = new Map<string, string>();
    for (const u of [...USERS, SECOND]) ids.set(u, (await status(u)).deviceId);
    await Promise.all(USERS.map(async (from) => {
      for (const to of USERS) {
        if (from === to) continue;
        const want = to === 'u01' ? 2 : 1;
        const r = await until(`${from} to find ${to}`, async () => {
          const answer = await search(from, to);
          return answer.found && answer.devices.length === want ? answer : undefined;
        }, 15_000);
        expect(r).toMatchObject({ found: true, user: to, online: true, source: 'index' });
        const expected = to === 'u01' ? [ids.get('u01'), ids.get(SECOND)].sort() : [ids.get(to)];
        expect(r.devices.map((d) => d.deviceId).sort()).toEqual(expected);
      }
    }));
    timings.searchAll = Date.now() - started;
  }, 60_000);

  it('buddies live on the login server: every device of a user sees the same list; an unknown user is refused', async () => {
    await ctl('u01', 'buddy.add', { user: 'u02' });
    const afterCli = await cli('u01', 'buddy', 'add', 'u03');
    expect(afterCli.stdout).toMatch(/^u03\s+online$/m);
    await ctl('u02', 'buddy.add', { user: 'u01' });
    const list = await until('u02 and u03 online in u01\'s list', async () => {
      const l = await ctl<BuddyView[]>('u01', 'buddies');
      return l.length === 2 && l.every((b) => b.online) ? l : undefined;
    }, 5000);
    expect(list).toEqual([{ user: 'u02', online: true, presence: 'online' }, { user: 'u03', online: true, presence: 'online' }]);
    // u01's second device: the same list, without having added anyone itself.
    const json = await until('the second device to show the list', async () => {
      const l = JSON.parse((await cli(SECOND, 'buddies', '--json')).stdout) as BuddyView[];
      return l.length === 2 ? l : undefined;
    }, 5000);
    expect(json).toEqual([{ user: 'u02', online: true, presence: 'online' }, { user: 'u03', online: true, presence: 'online' }]);
    const unknown = await cli('u01', 'buddy', 'add', 'nobody-here').catch((err: { code: number; stderr: string }) => err);
    expect(unknown).toMatchObject({ code: 1 });
    expect((unknown as { stderr: string }).stderr).toMatch(/no such user "nobody-here"/);
    await expect(ctl('u01', 'buddy.add', { user: 'nobody-here' })).rejects.toMatchObject({ code: 'ERR_BUDDY_UNKNOWN_USER' });
    // Removing on the second device shows on the first (which is told, and reads the list again).
    await ctl(SECOND, 'buddy.remove', { user: 'u03' });
    await until('u01 to see u03 removed', async () => (await ctl<BuddyView[]>('u01', 'buddies')).length === 1, 5000);
    await ctl(SECOND, 'buddy.add', { user: 'u03' });
    await until('u01 to see u03 back', async () => (await ctl<BuddyView[]>('u01', 'buddies')).length === 2, 5000);
    // Through the supernode's login tunnel when the login server cannot be reached directly.
    expect((await status('u19')).credential?.via).toBe('tunnel');
    expect(await ctl('u19', 'buddy.add', { user: 'u18' })).toEqual([{ user: 'u18', online: true, presence: 'online' }]);
  });

  it('presence reaches a buddy within 2 s: in a call, back, and a phone whose link dies', async () => {
    // u02 goes into a call: u01 (and u01's second device) see it through the supernodes.
    let t = Date.now();
    await ctl('u02', 'presence', { state: 'in-call' });
    await until('u01 to see u02 in a call', async () => (await buddyOf('u01', 'u02'))?.presence === 'in-call', 2000, 20);
    timings.presenceInCall = Date.now() - t;
    await until('u01b to see u02 in a call', async () => (await buddyOf(SECOND, 'u02'))?.presence === 'in-call', 2000, 20);
    t = Date.now();
    await cli('u02', 'presence', 'online');
    await until('u01 to see u02 online again', async () => (await buddyOf('u01', 'u02'))?.presence === 'online', 2000, 20);
    timings.presenceOnline = Date.now() - t;

    // u03's process dies: the TCP link closes, its supernode says offline.
    t = Date.now();
    await lab.nodes.get('u03')!.proc.stop('SIGKILL');
    await until('u01 to see u03 offline', async () => (await buddyOf('u01', 'u03'))?.online === false, 2000, 20);
    timings.presenceKilled = Date.now() - t;
    // Back: online again.
    await lab.restart('u03');
    t = Date.now();
    await until('u01 to see u03 online', async () => (await buddyOf('u01', 'u03'))?.online === true, 5000, 20);
    timings.presenceBack = Date.now() - t;
  });

  it('a phone that loses power (no FIN) shows offline once its supernode sweeps the silent link', async () => {
    const frozen = lab.nodes.get('u03')!.proc.child;
    const t = Date.now();
    frozen.kill('SIGSTOP');
    try {
      // keepAliveS 1: the supernode drops the link after 2.5 s of silence, then the news takes well under 2 s.
      await until('u01 to see frozen u03 offline', async () => (await buddyOf('u01', 'u03'))?.online === false, 5000, 20);
      timings.presenceFrozen = Date.now() - t;
      const found = await search('u05', 'u03');
      expect(found).toMatchObject({ found: true, online: false });
      expect(found.devices[0]?.presence).toBe('offline');
    } finally {
      frozen.kill('SIGCONT');
    }
    await until('u03 back online after waking', async () => (await buddyOf('u01', 'u03'))?.online === true, 8000, 50);
  });

  it('a user who logged out is still found, offline, with lastSeen', async () => {
    const before = Date.now();
    await lab.nodes.get('u20')!.proc.stop();
    const r = await until('u20 offline in search', async () => {
      const answer = await search('u07', 'u20');
      return answer.found && !answer.online ? answer : undefined;
    }, 3000);
    expect(r).toMatchObject({ found: true, user: 'u20', online: false, source: 'index' });
    expect(r.lastSeen).toBeGreaterThanOrEqual(before - 60_000);
    expect(r.devices).toHaveLength(1);
    expect(r.devices[0]).toMatchObject({ presence: 'offline' });
    const human = await cli('u08', 'search', 'u20');
    expect(human.stdout).toMatch(/^u20: offline \(last seen \d{4}-/m);
  });

  it('a message to an offline user is held and arrives at its next login, once', async () => {
    await lab.nodes.get('u04')!.proc.stop();
    await until('u04 offline', async () => !(await search('u05', 'u04')).online, 3000);
    const sent = await ctl<{ id: string; devices: number; delivered: number; held: number }>('u05', 'message', { user: 'u04', text: 'see you at nine' });
    expect(sent).toMatchObject({ devices: 1, delivered: 0, held: 1 });
    const t = Date.now();
    await lab.restart('u04');
    const inbox = await until('u04 to get the held message', async () => {
      const list = await ctl<ImView[]>('u04', 'messages');
      return list.length > 0 ? list : undefined;
    }, 10_000);
    timings.heldDelivered = Date.now() - t;
    expect(inbox).toEqual([expect.objectContaining({ id: sent.id, direction: 'in', from: 'u05', to: 'u04', text: 'see you at nine', delivered: true })]);
    // The receipt reaches the sender.
    await until('u05 to see it delivered', async () => (await ctl<ImView[]>('u05', 'messages')).some((m) => m.id === sent.id && m.delivered), 5000);
    // Nothing is held any more, and a restart does not show it twice.
    await lab.restart('u04');
    await until('u04 back', async () => (await status('u04')).loggedIn);
    await new Promise((r) => setTimeout(r, 500));
    const again = await ctl<ImView[]>('u04', 'messages');
    expect(again.filter((m) => m.id === sent.id)).toHaveLength(1);
    // Human output, as a user reads it.
    expect((await cli('u04', 'messages')).stdout).toMatch(/u05 -> u04: see you at nine/);
  });

  it('both devices of one user receive a message; the user stays online while either device is', async () => {
    const sent = await ctl<{ id: string; devices: number; delivered: number }>('u06', 'message', { user: 'u01', text: 'lunch?' });
    expect(sent).toMatchObject({ devices: 2, delivered: 2 });
    for (const device of ['u01', SECOND]) {
      const list = await until(`${device} to have the message`, async () => {
        const l = await ctl<ImView[]>(device, 'messages');
        return l.some((m) => m.id === sent.id) ? l : undefined;
      }, 3000);
      expect(list.find((m) => m.id === sent.id)).toMatchObject({ from: 'u06', text: 'lunch?' });
    }
    // u02 watches u01: the second device leaving does not make u01 offline.
    await lab.nodes.get(SECOND)!.proc.stop();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await buddyOf('u02', 'u01')).toMatchObject({ online: true });
    const r = await search('u09', 'u01');
    expect(r.online).toBe(true);
    expect(r.devices.map((d) => d.presence).sort()).toEqual(['offline', 'online']);
  });

  it('forged and replayed records and presence updates are refused', async () => {
    // Over an index link to a supernode responsible for u09, as a rogue supernode would send them (its credential is real).
    const rogue = generateIdentity();
    const credential = credentialFor(lab, 'sn1', rogue);
    const responsible = (await closestSupernodes('u09'))[0]!;
    const { link } = await dialLink({ identity: rogue, network: lab.network, role: INDEX_LINK_ROLE, credential: () => credential, log, host: '127.0.0.1', port: lab.nodes.get(responsible)!.port });
    await link.request(IndexHello, { address: '127.0.0.1:1' });
    try {
      const u09 = (await search('u10', 'u09')).records[0] as LocationRecord;
      // Same signature, other addresses, a higher seq (an equal seq is settled as a replay before any signature check).
      const forged = { ...u09, seq: u09.seq + 1, device: { ...u09.device, addresses: ['203.0.113.66:5060'] } };
      const refusedForged = await link.request(Store, { records: [forged] });
      expect(refusedForged.results).toEqual([{ deviceId: u09.device.deviceId, status: 'refused', code: 'ERR_RECORD_SIGNATURE' }]);
      // u09 logs in again: a newer record. The one captured before is a replay now.
      await lab.restart('u09');
      await until('u09 republished', async () => ((await search('u10', 'u09')).records[0] as LocationRecord).seq > u09.seq, 5000);
      const answers = await Promise.all(SUPERNODES.map(async (_, i) => {
        const conn = await dialLink({ identity: rogue, network: lab.network, role: INDEX_LINK_ROLE, credential: () => credential, log, host: '127.0.0.1', port: port(1 + i) });
        try {
          return (await conn.link.request(Store, { records: [u09] })).results[0];
        } finally {
          conn.link.close();
        }
      }));
      // The replicas of u09 refuse it as a replay; nobody hands it out instead of the newer one.
      expect(answers.filter((a) => a?.status === 'refused' && a.code === 'ERR_RECORD_REPLAY').length).toBeGreaterThanOrEqual(1);
      expect(((await search('u11', 'u09')).records[0] as LocationRecord).seq).toBeGreaterThan(u09.seq);

      // A presence update with a bad signature, and an "offline" from a supernode the device never named.
      const ids = await status('u09');
      const fake = signPresence({ user: 'u09', deviceId: ids.deviceId, state: 'in-call', supernode: snAddress(0), seq: Date.now() + 1000, issued: Date.now() }, u09.credential, rogue.signing);
      // The rogue says "offline" in its own name (127.0.0.1:1, what its hello announced): u09 named another supernode.
      const offline = { v: 1 as const, by: 'supernode' as const, user: 'u09', deviceId: ids.deviceId, state: 'offline' as const, supernode: '127.0.0.1:1', seq: Date.now() + 1000, issued: Date.now() };
      const presence = await link.request(PresencePublish, { updates: [fake, offline] });
      expect(presence.accepted).toBe(0);
      expect(presence.refused.map((r) => r.code).sort()).toEqual(['ERR_PRESENCE_ATTESTER', 'ERR_PRESENCE_SIGNATURE']);
      expect(await search('u10', 'u09')).toMatchObject({ online: true, devices: [expect.objectContaining({ presence: 'online' })] });
    } finally {
      link.close();
    }
    // A phone can only publish its own record: someone else's, or a forged one of its own, is refused.
    const phone = generateIdentity();
    const phoneCredential = credentialFor(lab, 'u12', phone);
    const { link: node } = await dialLink({ identity: phone, network: lab.network, role: 'node', log, host: '127.0.0.1', port: port(2) });
    try {
      await node.request(Attach, { credential: { ...phoneCredential } });
      const other = (await search('u13', 'u14')).records[0]!;
      await expect(node.request(NodeIndexPublish, { record: { ...other } })).rejects.toMatchObject({ code: 'ERR_RECORD_OWNER' });
      const now = Date.now();
      const own = signLocationRecord({ user: 'u12', device: { deviceId: phone.deviceId, supernode: snAddress(1), addresses: [], since: now }, seq: now, issued: now }, phoneCredential, phone.signing);
      await expect(node.request(NodeIndexPublish, { record: { ...own, seq: own.seq + 1 } })).rejects.toMatchObject({ code: 'ERR_RECORD_SIGNATURE' });
    } finally {
      node.close();
    }
  });

  it('killing two supernodes loses no record: every user is still found, the logged-out one too', async () => {
    // Kill the two supernodes closest to u20's key (of its k = 3 replicas): one copy is left.
    const victims = (await closestSupernodes('u20')).slice(0, 2);
    const t = Date.now();
    await Promise.all(victims.map((sn) => lab.nodes.get(sn)!.proc.stop('SIGKILL')));
    const phones = USERS.filter((u) => u !== 'u20');
    // Phones of the dead supernodes re-attach elsewhere; then everyone is found from everywhere.
    await Promise.all(phones.map((p) => until(`${p} attached`, async () => (await status(p)).loggedIn, 10_000)));
    await Promise.all(phones.map(async (from) => {
      for (const to of USERS) {
        if (from === to) continue;
        const r = await until(`${from} to find ${to} after the kill`, async () => {
          const answer = await search(from, to);
          return answer.found && answer.source === 'index' ? answer : undefined;
        }, 15_000);
        expect(r.devices.length).toBeGreaterThanOrEqual(1);
        if (to === 'u20') expect(r).toMatchObject({ online: false, lastSeen: expect.any(Number) });
      }
    }));
    timings.findAllAfterKill = Date.now() - t;
    // Presence still flows: subscriptions moved to the supernodes now responsible.
    const t2 = Date.now();
    await ctl('u02', 'presence', { state: 'in-call' });
    await until('u01 to see u02 in a call after the kill', async () => (await buddyOf('u01', 'u02'))?.presence === 'in-call', 2000, 20);
    timings.presenceAfterKill = Date.now() - t2;
  }, 60_000);
});

function credentialFor(lab: LabNetwork, user: string, identity: Identity): Credential {
  const now = Date.now();
  return issueCredential({
    user,
    deviceId: identity.deviceId,
    deviceKey: identity.signing.publicKey.toString('base64'),
    noiseKey: identity.noise.publicKey.toString('base64'),
    network: lab.network,
    issued: now - 1000,
    expires: now + 3_600_000,
  }, lab.loginIdentity!.signing);
}
