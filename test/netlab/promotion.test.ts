/**
 * Supernode promotion and the LAN supernode box in the network lab (issue
 * "Supernode promotion"), real processes in network namespaces:
 *
 * - `cand`, a public host with policy `auto`, passes its checks (its STUN
 *   address is its interface address, sn1 reaches it back over TCP and UDP
 *   on its supernode port, bandwidth measured with sn1), promotes within
 *   the window, and appears in the host cache of a phone attached to sn1;
 * - `natted` (behind NAT) never promotes, `thr` (public, its uplink
 *   throttled with `tc tbf` below the threshold) does not, `nev` (public,
 *   policy `never`) does not;
 * - demotion (`ctl promotion never` on cand) moves a phone attached to
 *   cand's supernode side to sn1 before the side closes: the phone stays
 *   logged in throughout, with the same credential;
 * - `desk`, a phone with no bootstrap list and an empty host cache, finds
 *   the supernode box on its LAN (config/supernode-box.yaml: supernode,
 *   login server and sound test in one process) by mDNS and logs in.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/app/node.js';
import { callControl } from '../../src/control/client.js';
import { AccountStore } from '../../src/login/account-store.js';
import { formatLoginServerKey, loadOrCreateLoginKey } from '../../src/login/login-key.js';
import { LabNetwork, PASSWORD } from '../helpers/network.js';
import type { Placement } from '../helpers/network.js';
import { until } from '../helpers/until.js';
import { NetLab } from './lab.js';
import type { PromotionManagerStatus } from '../../src/app/promotion-manager.js';

const promotionOf = (s: NodeStatus): PromotionManagerStatus => s.promotion as unknown as PromotionManagerStatus;

const availability = await NetLab.available();

/** Short windows for the lab: the defaults are minutes (config/default.yaml). */
const AUTO = {
  policy: 'auto',
  checkIntervalS: 2,
  promoteAfterS: 4,
  demoteAfterS: 4,
  minUptimeS: 0,
  minBandwidthKbps: 2000,
  // The lab shares two cores with every other suite: load is not what these tests are about.
  maxLoadPerCore: 16,
  minFreeMemoryMb: 0,
  attachTimeoutS: 2,
};
const THROTTLE_KBIT = 500;

describe.skipIf(!availability.ok)('supernode promotion and the LAN box (netlab)', () => {
  let net: NetLab;
  let lab: LabNetwork;
  const at = (host: string): Placement => ({ address: net.address(host), launch: (cmd, args, opts) => net.spawn(host, cmd, args, opts) });
  const status = async (name: string): Promise<NodeStatus> => (await callControl(lab.nodes.get(name)!.control, 'status')) as NodeStatus;
  let sn1 = '';
  let startedAt = 0;

  beforeAll(async () => {
    await NetLab.cleanupStale();
    net = await NetLab.create({
      publicHosts: ['ls', 'sn1', 'sn2', 'cand', 'thr', 'nev'],
      lans: [
        { name: 'natlan', nat: 'port-restricted', hosts: ['natted', 'p1'] },
        { name: 'office', nat: 'port-restricted', hosts: ['box', 'desk'] },
      ],
    });
    lab = await LabNetwork.create({ loginPort: 5061, users: ['sn1', 'sn2', 'cand', 'thr', 'nev', 'natted', 'p1'] });
    await lab.startLoginServer(at('ls'));
    sn1 = `${net.address('sn1')}:4000`;
    await lab.start('sn1', { port: 4000, supernode: true, at: at('sn1') });
    await lab.start('sn2', { port: 4000, supernode: true, at: at('sn2'), bootstrap: [sn1] });
    await until('supernodes peered', async () => (await status('sn1')).peers === 1 && (await status('sn2')).peers === 1, 15_000);
    // thr's uplink: a token bucket far below the 2000 kbit/s threshold.
    const dev = (await net.exec('thr', 'sh', ['-c', "ip -o link show | awk -F': ' '$2 !~ /^lo/ {print $2}' | cut -d@ -f1 | head -1"])).stdout.trim();
    const tbf = await net.exec('thr', 'tc', ['qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${THROTTLE_KBIT}kbit`, 'burst', '16kb', 'latency', '400ms']);
    expect(tbf.code, tbf.stderr).toBe(0);
    startedAt = Date.now();
    const auto = (policy = 'auto') => ({ supernode: { ...AUTO, policy } });
    await Promise.all([
      lab.start('cand', { port: 5000, at: at('cand'), bootstrap: [sn1], extra: auto() }),
      lab.start('thr', { port: 5000, at: at('thr'), bootstrap: [sn1], extra: auto() }),
      lab.start('nev', { port: 5000, at: at('nev'), bootstrap: [sn1], extra: auto('never') }),
      lab.start('natted', { port: 5000, at: at('natted'), bootstrap: [sn1], extra: auto() }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await lab?.stopAll();
    await net?.destroy();
  });

  it('a public node with enough bandwidth and policy auto promotes within the window and enters other nodes\' host caches', async () => {
    const candSupernode = `${net.address('cand')}:5001`;
    await until('cand promoted', async () => (await status('cand')).promoted?.peers !== undefined, 40_000);
    const promotedAfterS = (Date.now() - startedAt) / 1000;
    const s = await status('cand');
    expect(s.role).toBe('supernode');
    expect(s.promoted?.address).toBe(candSupernode);
    const promotion = promotionOf(s);
    expect(promotion.eligible).toBe(true);
    expect(promotion.reachback).toMatchObject({ tcp: true, udp: true, by: sn1 });
    expect(promotion.bandwidth?.upKbps).toBeGreaterThan(AUTO.minBandwidthKbps);
    expect(promotion.reasons.join('\n')).toMatch(/reachable over TCP and UDP/);
    // Still a phone: logged in through sn1 as before.
    expect(s.loggedIn).toBe(true);
    console.log(`cand promoted ${promotedAfterS.toFixed(1)} s after start (promoteAfterS ${AUTO.promoteAfterS}, checks every ${AUTO.checkIntervalS} s); up ${promotion.bandwidth?.upKbps} / down ${promotion.bandwidth?.downKbps} kbit/s`);
    // sn1 peers with it, and a phone attached to sn1 learns it (gossip) into its persisted host cache.
    await until('sn1 peers with cand', async () => ((await status('sn1')).peers ?? 0) >= 2, 20_000);
    const cacheFile = join(lab.nodes.get('natted')!.dir, 'host-cache.json');
    await until('cand in natted\'s host cache', async () => (await readFile(cacheFile, 'utf8').catch(() => '')).includes(candSupernode), 30_000);
  }, 90_000);

  it('a node behind NAT never promotes: its address is not its own', async () => {
    const s = await status('natted');
    expect(s.role).toBe('ordinary');
    expect(s.promoted).toBeUndefined();
    const promotion = promotionOf(s);
    expect(promotion.eligible).toBe(false);
    expect(promotion.reasons.join('\n')).toMatch(/not one of this node's interface addresses \(behind NAT\)/);
    // It never even asked a supernode to probe it.
    expect(promotion.reachback).toBeNull();
  });

  it(`a public node throttled to ${THROTTLE_KBIT} kbit/s does not promote: the measured upload is below the threshold`, async () => {
    await until('thr measured', async () => promotionOf(await status('thr')).bandwidth !== null, 40_000);
    const s = await status('thr');
    const promotion = promotionOf(s);
    expect(promotion.reachback).toMatchObject({ tcp: true, udp: true });
    expect(promotion.bandwidth?.upKbps).toBeLessThan(AUTO.minBandwidthKbps);
    expect(promotion.bandwidth?.upKbps).toBeGreaterThan(THROTTLE_KBIT * 0.5);
    expect(promotion.reasons.join('\n')).toMatch(/bandwidth \d+ kbit\/s up < 2000 kbit\/s needed/);
    expect(s.role).toBe('ordinary');
    console.log(`thr (tbf ${THROTTLE_KBIT} kbit/s) measured up ${promotion.bandwidth?.upKbps} kbit/s`);
  }, 60_000);

  it('policy never: a public node never promotes', async () => {
    // cand, with the same facts, promoted within this time: nev had every chance.
    const s = await status('nev');
    expect(s.role).toBe('ordinary');
    expect(s.promoted).toBeUndefined();
    expect(s.promotion).toMatchObject({ policy: 'never', eligible: false, role: 'ordinary' });
    expect(promotionOf(s).reasons).toEqual(['policy never: this node stays an ordinary node']);
  });

  it('demotion moves an attached phone to another supernode without a login loss', async () => {
    const candSupernode = `${net.address('cand')}:5001`;
    await until('cand promoted', async () => (await status('cand')).promoted !== undefined, 40_000);
    // p1 knows only cand's supernode side.
    await lab.start('p1', { port: 5000, at: at('p1'), bootstrap: [candSupernode], extra: { supernode: { policy: 'never' } } });
    await until('p1 attached to cand', async () => {
      const s = await status('p1');
      return s.loggedIn && s.supernode?.address === candSupernode;
    }, 20_000);
    await until('cand sees p1', async () => (await status('cand')).promoted?.attachedNodes === 1, 10_000);
    const before = await status('p1');
    // Watch p1 while cand steps down.
    const seen: Array<{ loggedIn: boolean; supernode: string | null }> = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const s = await status('p1');
        seen.push({ loggedIn: s.loggedIn, supernode: s.supernode?.address ?? null });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const started = Date.now();
    const answer = (await callControl(lab.nodes.get('cand')!.control, 'promotion', { policy: 'never' }, { timeoutMs: 20_000 })) as { role: string };
    const demotedMs = Date.now() - started;
    expect(answer.role).toBe('ordinary');
    await until('p1 moved', async () => (await status('p1')).supernode?.address !== candSupernode, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    watching = false;
    await watcher;
    const after = await status('p1');
    expect(after.loggedIn).toBe(true);
    expect([sn1, `${net.address('sn2')}:4000`]).toContain(after.supernode?.address);
    // Same credential: no new login.
    expect(after.credential?.expires).toBe(before.credential?.expires);
    // Never detached while moving (make before break).
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.filter((x) => !x.loggedIn)).toEqual([]);
    const cand = await status('cand');
    expect(cand.role).toBe('ordinary');
    expect(cand.promoted).toBeUndefined();
    expect(cand.loggedIn).toBe(true);
    console.log(`cand demoted in ${demotedMs} ms; p1 moved to ${after.supernode?.address} (${seen.length} samples, all logged in)`);
  }, 90_000);

  it('a phone with no bootstrap and an empty host cache finds the supernode box by mDNS and logs in', async () => {
    // The box: config/supernode-box.yaml with the lab's paths and a prepared login server directory.
    const boxDir = join(lab.root, 'box');
    const loginDir = join(boxDir, 'login');
    const key = await loadOrCreateLoginKey(loginDir);
    const store = AccountStore.open(loginDir, { create: true, scrypt: { N: 1024, r: 8, p: 1 } });
    try {
      for (const user of ['box', 'echo', 'desk']) await store.addUser(user, PASSWORD);
    } finally {
      store.close();
    }
    const profile = parse(await readFile(new URL('../../config/supernode-box.yaml', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;
    const boxConfig = {
      ...profile,
      // The profile's node section as it is (listening on every interface, advertising the first), with the lab's paths.
      node: { ...profile.node, stateDir: boxDir, listen: '0.0.0.0', control: join(boxDir, 'c.sock') },
      network: { ...profile.network, name: lab.network, keepAliveS: 5 },
      account: { user: 'box', password: PASSWORD },
      supernode: { ...profile.supernode, soundTest: { user: 'echo', password: PASSWORD } },
      loginServer: { ...profile.loginServer, dataDir: loginDir },
    };
    await lab.start('box', { port: 5060, at: at('box'), extra: boxConfig, waitFor: 'node started' });
    // The sound-test phone inside the box says "node started" too, before the box itself has.
    await until('the box answers', async () => status('box').then(() => true, () => false), 10_000);
    const box = await status('box');
    expect(box.role).toBe('supernode');
    // desk: an account and the login server's key (the trust anchor), nothing else.
    await lab.start('desk', {
      port: 5000,
      at: at('desk'),
      extra: { network: { name: lab.network, mdns: true, bootstrap: [], keepAliveS: 5, loginServer: { publicKey: formatLoginServerKey(key.identity) } }, supernode: { policy: 'never' } },
    });
    await until('desk logged in through the box', async () => {
      const s = await status('desk');
      return s.loggedIn && s.supernode?.address === `${net.address('box')}:5060`;
    }, 30_000);
    await until('the sound test runs on the box', async () => (await status('box')).soundTest?.loggedIn === true, 20_000).catch((err: unknown) => {
      console.log(lab.nodes.get('box')!.proc.lines.filter((l) => ['warn', 'error'].includes(String(l.level))).map((l) => JSON.stringify(l)).join('\n'));
      throw err;
    });
  }, 90_000);
});
