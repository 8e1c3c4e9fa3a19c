/**
 * The SD card image, booted: `image/build.sh image` makes
 * image/build/partyline-arm64.img; the test boots a copy of it (grown to
 * 2 GiB, as a larger card would be) in qemu-system-aarch64 (`virt` machine,
 * Cortex-A72, software emulation: no KVM here) with the kernel and initrd
 * from its own PLBOOT partition, virtio disk and user-mode network. A login
 * server and a supernode run on this machine, which the guest reaches at
 * 10.0.2.2; the account and the network are given on the kernel command line
 * (`systemd.setenv=`, so the image's read-only configuration is unchanged).
 *
 * Asserts, from the serial console (the journal is forwarded to it): the
 * first-boot unit grows the data partition and makes the device keys, the
 * root file system is remounted read-only, no unit fails to start,
 * partyline.service logs in through the supernode and says READY=1 (systemd
 * prints "Started"), the supernode counts it attached; then a power-button
 * press (QEMU `system_powerdown`, handled by systemd-logind) shuts the
 * machine down with the service stopping cleanly.
 *
 * What this cannot show: the Raspberry Pi's own boot (GPU firmware,
 * config.txt, the bcm27xx device tree), its SD controller, USB, GPIO and
 * sound — `virt` has none of them. The Pi's boot files are checked by
 * build.sh (cmdline.txt, config.txt) and in image/README.md.
 *
 *   npm run test:image          (the console is kept in image/build/boot-console.log)
 *   PARTYLINE_IMAGE_FILE=image/build/partyline-arm64.img npm run test:image   # skip the build
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, truncate } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControl } from '../../src/control/client.js';
import { LabNetwork, PASSWORD, portBlock } from '../helpers/network.js';
import { REPO_ROOT } from '../helpers/process.js';
import { runImageBuild } from './build.js';

const execFileP = promisify(execFile);
const OUT = process.env.PARTYLINE_IMAGE_OUT ?? join(REPO_ROOT, 'image', 'build');
const port = portBlock(450);
const QEMU = 'qemu-system-aarch64';

async function have(cmd: string): Promise<boolean> {
  return execFileP('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);
}
const runnable = process.getuid?.() === 0 || Boolean(process.env.PARTYLINE_IMAGE_FILE);


/** The serial console, line by line, with waits on what it prints. */
class Console {
  readonly lines: Array<{ at: number; text: string }> = [];
  #partial = '';
  #waiters: Array<{ match: RegExp; resolve: (line: string) => void }> = [];

  feed(chunk: string): void {
    this.#partial += chunk;
    const parts = this.#partial.split(/\r?\n/);
    this.#partial = parts.pop()!;
    for (const text of parts) {
      this.lines.push({ at: Date.now(), text });
      for (const w of [...this.#waiters]) {
        if (w.match.test(text)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(text);
        }
      }
    }
  }

  find(match: RegExp): { at: number; text: string } | undefined {
    return this.lines.find((l) => match.test(l.text));
  }

  /** The JSON log lines the journal forwarded from one unit's process. */
  logs(unit: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const { text } of this.lines) {
      const at = text.indexOf(`${unit}[`);
      const brace = text.indexOf('{', at);
      if (at < 0 || brace < 0) continue;
      try {
        out.push(JSON.parse(text.slice(brace)) as Record<string, unknown>);
      } catch {
        // a line cut by the console, or not JSON
      }
    }
    return out;
  }

  waitFor(match: RegExp, timeoutMs: number, what: string, exited: Promise<unknown>): Promise<string> {
    const seen = this.find(match);
    if (seen) return Promise.resolve(seen.text);
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => reject(new Error(`${what}: ${why}; last console lines:\n${this.lines.slice(-25).map((l) => l.text).join('\n')}`));
      const timer = setTimeout(() => fail(`not within ${timeoutMs / 1000} s`), timeoutMs);
      this.#waiters.push({ match, resolve: (line) => { clearTimeout(timer); resolve(line); } });
      void exited.then(() => { clearTimeout(timer); fail('qemu exited'); });
    });
  }
}

function monitor(path: string, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(path, () => socket.end(`${command}\n`, () => resolve()));
    socket.once('error', reject);
  });
}

describe.skipIf(!runnable)('the SD card image booted in qemu-system-aarch64', () => {
  let image = process.env.PARTYLINE_IMAGE_FILE ? resolve(process.env.PARTYLINE_IMAGE_FILE) : '';
  let dir = '';
  let lab: LabNetwork;
  let qemu: ChildProcess | undefined;
  let cmdline = '';

  beforeAll(async () => {
    if (!(await have(QEMU))) {
      await execFileP('apt-get', ['install', '-y', '-q', 'qemu-system-arm'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 << 20 });
    }
    if (!image) {
      const ms = await runImageBuild('image');
      console.log(`image/build.sh image: ${(ms / 1000).toFixed(0)} s`);
      image = join(OUT, 'partyline-arm64.img');
    }
    dir = await mkdtemp(join(tmpdir(), 'partyline-boot-'));
    // The kernel and initrd the Pi's firmware would load, from the image's own boot partition.
    const { stdout: table } = await execFileP('sfdisk', ['--json', image]);
    const boot = (JSON.parse(table) as { partitiontable: { partitions: Array<{ start: number }> } }).partitiontable.partitions[0]!;
    const fat = `${image}@@${boot.start * 512}`;
    const { stdout: listing } = await execFileP('mdir', ['-b', '-i', fat, '::']);
    const named = (prefix: string): string => listing.split('\n').map((l) => l.trim().replace(/^::\//, '')).find((n) => n.startsWith(prefix))!;
    for (const [name, as] of [[named('vmlinuz-'), 'vmlinuz'], [named('initrd.img-'), 'initrd.img']] as const) {
      await execFileP('mcopy', ['-i', fat, `::${name}`, join(dir, as)]);
    }
    cmdline = (await execFileP('mcopy', ['-i', fat, '::cmdline.txt', '-'])).stdout.trim();
    await copyFile(image, join(dir, 'card.img'));
    await truncate(join(dir, 'card.img'), 2 * 1024 ** 3);

    lab = await LabNetwork.create({ loginPort: port(0), users: ['sn', 'desk'] });
    await lab.startLoginServer();
    await lab.start('sn', { port: port(1), supernode: true });
  }, 60 * 60_000);

  afterAll(async () => {
    if (qemu && qemu.exitCode === null) qemu.kill('SIGKILL');
    await lab?.stopAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('boots, grows its data partition, logs in, says READY=1, and powers off cleanly', async () => {
    const env = {
      PARTYLINE_NETWORK__NAME: lab.network,
      PARTYLINE_NETWORK__LOGIN_SERVER__ADDRESS: `10.0.2.2:${port(0)}`,
      PARTYLINE_NETWORK__LOGIN_SERVER__PUBLIC_KEY: lab.loginKey,
      PARTYLINE_NETWORK__BOOTSTRAP: `10.0.2.2:${port(1)}`,
      PARTYLINE_ACCOUNT__USER: 'desk',
      PARTYLINE_ACCOUNT__PASSWORD: PASSWORD,
    };
    // The image's own command line (root=LABEL=PLROOT rw …: fstab makes the root read-only), its console on the serial port.
    expect(cmdline).toMatch(/root=LABEL=PLROOT/);
    const append = [
      ...cmdline.split(/\s+/).filter((a) => !a.startsWith('console=')),
      'console=ttyAMA0', 'systemd.journald.forward_to_console=1',
      ...Object.entries(env).map(([k, v]) => `systemd.setenv=${k}=${v}`),
    ].join(' ');
    const mon = join(dir, 'monitor.sock');
    const con = new Console();
    const started = Date.now();
    qemu = spawn(QEMU, [
      '-M', 'virt', '-cpu', 'cortex-a72', '-smp', '2', '-m', '1024', '-display', 'none', '-no-reboot',
      '-kernel', join(dir, 'vmlinuz'), '-initrd', join(dir, 'initrd.img'), '-append', append,
      '-drive', `file=${join(dir, 'card.img')},if=none,format=raw,id=card`, '-device', 'virtio-blk-pci,drive=card',
      '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0',
      '-serial', 'stdio', '-monitor', `unix:${mon},server,nowait`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    // The whole console, kept for a look after a failure.
    await mkdir(OUT, { recursive: true });
    const kept = createWriteStream(join(OUT, 'boot-console.log'));
    qemu.stdout!.setEncoding('utf8').on('data', (c: string) => {
      con.feed(c);
      kept.write(c);
    });
    qemu.once('exit', () => kept.end());
    qemu.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((r) => qemu!.once('exit', (code) => r(code)));
    const s = (at: number): string => `${((at - started) / 1000).toFixed(0)} s`;

    await con.waitFor(/Linux version/, 120_000, 'the kernel starts', exited);
    await con.waitFor(/firstboot\[\d+\]: device [a-z0-9]+, port \d+/, 15 * 60_000, 'first boot makes the device keys', exited);
    await con.waitFor(/Started partyline\.service/, 15 * 60_000, 'partyline.service is started (READY=1)', exited);
    // The journal reaches the console a little after systemd's own line.
    await con.waitFor(/partyline\[\d+\]: .*"msg":"service ready"/, 60_000, 'the service logs that it is ready', exited);
    const ready = con.logs('partyline').find((l) => l.msg === 'service ready');
    const firstboot = con.find(/firstboot\[\d+\]: device [a-z0-9]+/)!;
    const userspace = con.find(/systemd\[1\]: .*(Detected architecture|systemd \d+ running)/) ?? con.find(/Welcome to/);
    console.log(`qemu-system boot: systemd at ${userspace ? s(userspace.at) : '?'}, device keys at ${s(firstboot.at)}, partyline.service READY at ${s(Date.now())} (${String(ready?.status)})`);
    expect(ready).toMatchObject({ status: `logged in as desk via supernode 10.0.2.2:${port(1)}` });
    expect(con.find(/firstboot\[\d+\]: hostname partyline-[0-9a-f]{8}/), 'hostname from the serial number').toBeDefined();
    // The data partition was grown to the card's end: the image's 128 MiB is now the rest of 2 GiB.
    expect(con.find(/EXT4-fs \(vd\w+3\): resizing filesystem|CHANGED: partition=3/), 'growpart and resize2fs on the data partition').toBeDefined();
    // The kernel mounts the root read-write (cmdline.txt says rw), systemd-remount-fs makes it read-only as fstab says.
    expect(con.find(/EXT4-fs \(vda2\): re-mounted [0-9a-f-]+ ro\b/), 'the root file system remounted read-only').toBeDefined();
    expect(con.find(/systemd-logind\.service.*(Failed|failed)/), 'systemd-logind starts (the power key needs it)').toBeUndefined();
    expect(con.lines.filter((l) => /systemd\[1\]: .*Failed to start/.test(l.text)).map((l) => l.text), 'no unit fails to start').toEqual([]);
    // The supernode on this machine has the guest attached (the only node that could be).
    const sn = (await callControl(lab.nodes.get('sn')!.control, 'status', {})) as { attachedNodes?: number };
    expect(sn.attachedNodes).toBe(1);

    const pressed = Date.now();
    await monitor(mon, 'system_powerdown');
    await con.waitFor(/Stopped partyline\.service|partyline\.service: Deactivated successfully/, 120_000, 'the service stops on power-off', exited);
    const stopped = con.logs('partyline').find((l) => l.msg === 'node stopped');
    expect(stopped, 'the node logged its clean stop').toBeDefined();
    expect(con.find(/partyline\.service: (Main process exited, code=killed|Failed|Watchdog timeout)/), 'no kill, failure or watchdog').toBeUndefined();
    expect(con.lines.filter((l) => /systemd\[1\]: .*Failed with result/.test(l.text)).map((l) => l.text), 'no unit fails, at start or at shutdown').toEqual([]);
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 180_000))]), `qemu powers off; stderr ${stderr.slice(-500)}`).toBe(0);
    console.log(`qemu-system power button to power-off: ${((Date.now() - pressed) / 1000).toFixed(1)} s`);
  }, 40 * 60_000);
});
