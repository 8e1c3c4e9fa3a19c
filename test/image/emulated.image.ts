/**
 * The image's firmware, run as built: `image/build.sh rootfs` makes the arm64
 * root file system; the test runs `/usr/bin/partyline start` from it with the
 * image's own /etc/partyline/config.yaml (network settings added through
 * PARTYLINE_* variables) as the `partyline` user, under qemu-user, inside a
 * netlab namespace behind a port-restricted NAT. A login server and a
 * supernode (this machine's build) run on the lab's internet. The phone must
 * start, say READY=1 to a pretend systemd after logging in, answer
 * `partyline ctl status` (the arm64 CLI, also emulated), and stop on SIGTERM.
 *
 *   npm run test:image      (root; about as long as image/build.sh rootfs)
 *   PARTYLINE_IMAGE_ROOTFS=image/build/work/rootfs npm run test:image   # skip the build
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabNetwork } from '../helpers/network.js';
import type { Placement } from '../helpers/network.js';
import { REPO_ROOT, collectLogs } from '../helpers/process.js';
import { runImageBuild } from './build.js';
import { NetLab } from '../netlab/lab.js';
import { NotifyListener } from '../system/notify-listener.js';

const availability = await NetLab.available();
const execFileP = promisify(execFile);
const OUT = process.env.PARTYLINE_IMAGE_OUT ?? join(REPO_ROOT, 'image', 'build');



describe.skipIf(!availability.ok)('the image firmware under qemu-user in a netlab namespace', () => {
  let root = process.env.PARTYLINE_IMAGE_ROOTFS ? resolve(process.env.PARTYLINE_IMAGE_ROOTFS) : '';
  let net: NetLab;
  let lab: LabNetwork;
  let notify: NotifyListener;
  const at = (host: string): Placement => ({ address: net.address(host), launch: (cmd, args, opts) => net.spawn(host, cmd, args, opts) });

  beforeAll(async () => {
    if (!root) {
      const ms = await runImageBuild('rootfs');
      console.log(`image/build.sh rootfs: ${(ms / 1000).toFixed(0)} s`);
      root = join(OUT, 'work', 'rootfs');
    }
    await NetLab.cleanupStale();
    net = await NetLab.create({ publicHosts: ['ls', 'sn'], lans: [{ name: 'home', nat: 'port-restricted', hosts: ['phone'] }] });
    lab = await LabNetwork.create({ loginPort: 5061, users: ['sn', 'desk'] });
    await lab.startLoginServer(at('ls'));
    await lab.start('sn', { port: 4000, supernode: true, at: at('sn') });
  }, 90 * 60_000);

  // What systemd would have mounted on the device.
  const mounts: string[] = [];
  const mountApi = async (): Promise<void> => {
    for (const [what, args] of [['proc', ['-t', 'proc', 'proc']], ['sys', ['-t', 'sysfs', 'sys']], ['dev', ['--bind', '/dev']]] as const) {
      const target = join(root, what);
      await execFileP('mount', [...args, target]);
      mounts.unshift(target);
    }
  };

  afterAll(async () => {
    for (const target of mounts) await execFileP('umount', ['-l', target]).catch((err: Error) => console.error(`umount ${target}: ${err.message}`));
    await lab?.stopAll();
    await net?.destroy();
    await notify?.close();
  });

  it('starts, logs in through the NAT, says READY=1, answers ctl status, and stops on SIGTERM', async () => {
    await mountApi();
    // Fresh state, owned by the service user as on the device.
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    const entry = passwd.split('\n').find((l) => l.startsWith('partyline:'))!.split(':');
    const [uid, gid] = [Number(entry[2]), Number(entry[3])];
    const state = join(root, 'var/lib/partyline');
    await rm(state, { recursive: true, force: true });
    await mkdir(state, { mode: 0o700 });
    await chown(state, uid, gid);
    // The pretend systemd's socket, inside the root so that the chrooted process reaches it.
    await mkdir(join(root, 'run'), { recursive: true });
    notify = await NotifyListener.create(join(root, 'run'));
    const notifyInRoot = notify.path.slice(root.length);
    // systemd's socket is writable by the service's user; so is this one.
    await chmod(dirname(notify.path), 0o755);
    await chmod(notify.path, 0o777);
    const env = [
      'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/var/lib/partyline', 'NODE_ENV=production', 'UV_THREADPOOL_SIZE=8',
      'STATE_DIRECTORY=/var/lib/partyline', `NOTIFY_SOCKET=${notifyInRoot}`, 'WATCHDOG_USEC=20000000',
      `PARTYLINE_NETWORK__NAME=${lab.network}`,
      `PARTYLINE_NETWORK__LOGIN_SERVER__ADDRESS=${net.address('ls')}:5061`,
      `PARTYLINE_NETWORK__LOGIN_SERVER__PUBLIC_KEY=${lab.loginKey}`,
      `PARTYLINE_NETWORK__BOOTSTRAP=${net.address('sn')}:4000`,
      'PARTYLINE_NETWORK__MDNS=false',
      'PARTYLINE_ACCOUNT__USER=desk', 'PARTYLINE_ACCOUNT__PASSWORD=correct-horse-battery',
    ];
    const started = Date.now();
    const child = net.spawn('phone', 'chroot', [`--userspec=${uid}:${gid}`, root, '/usr/bin/env', '-i', ...env, '/usr/bin/partyline', 'start', '--config', '/etc/partyline/config.yaml']);
    const { lines, stderr, stop } = collectLogs(child);
    try {
      const ready = await notify.waitFor((n) => n.fields.READY === '1', 180_000).catch((err: Error) => {
        throw new Error(`${err.message}\nlast log lines: ${lines.slice(-8).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${stderr().slice(-1500)}`);
      });
      const nodeStarted = lines.find((l) => l.msg === 'node started');
      console.log(`emulated phone: READY=1 (logged in) ${((ready.at - started) / 1000).toFixed(1)} s after exec; status "${ready.fields.STATUS}"`);
      expect(ready.fields.STATUS).toBe(`logged in as desk via supernode ${net.address('sn')}:4000`);
      expect(nodeStarted).toBeDefined();
      expect(lines.find((l) => l.msg === 'watchdog pings started')).toMatchObject({ periodMs: 10_000 });

      // ctl status from the image's own (emulated) CLI, as root on the device would.
      const ctlStarted = Date.now();
      const ctl = await net.exec('phone', 'chroot', [root, '/usr/bin/env', '-i', 'PATH=/usr/bin:/bin', '/usr/bin/partyline', 'ctl', '--socket', '/var/lib/partyline/control.sock', 'status', '--json'], { timeoutMs: 120_000 });
      expect(ctl.code, ctl.stderr).toBe(0);
      const status = JSON.parse(ctl.stdout) as { loggedIn: boolean; user: string; role: string; nat: { type: string; publicAddress: string | null }; phone?: { halFaults?: string[] } };
      console.log(`emulated ctl status: ${((Date.now() - ctlStarted) / 1000).toFixed(1)} s; nat ${status.nat.type}; hal faults ${JSON.stringify(status.phone?.halFaults ?? [])}`);
      expect(status).toMatchObject({ loggedIn: true, user: 'desk', role: 'ordinary' });

      // The device's own state, made by the firmware as the partyline user.
      const identity = JSON.parse(await readFile(join(state, 'identity.json'), 'utf8')) as { deviceId: string };
      expect(identity.deviceId).toBe(nodeStarted!.deviceId);

      const termAt = Date.now();
      const exited = stop('SIGTERM');
      await notify.waitFor((n) => n.fields.STOPPING === '1', 30_000);
      expect(await exited).toBe(0);
      console.log(`emulated phone: SIGTERM to exit ${((Date.now() - termAt) / 1000).toFixed(1)} s`);
      expect(lines.some((l) => l.msg === 'node stopped')).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 400_000);
});
