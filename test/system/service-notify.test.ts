import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabNetwork, portBlock, writeYaml } from '../helpers/network.js';
import { spawnCli } from '../helpers/process.js';
import type { Spawned } from '../helpers/process.js';
import { NotifyListener } from './notify-listener.js';
import type { Notification } from './notify-listener.js';

/**
 * The real `partyline` process under a pretend systemd: the test binds the
 * $NOTIFY_SOCKET, sets $WATCHDOG_USEC, and reads what the process sends.
 */
const port = portBlock(50);
const WATCHDOG_USEC = 2_000_000; // pings every 1 s
const STALL = join(import.meta.dirname, 'fixtures', 'stall-on-sigusr2.mjs');

function gaps(list: Notification[]): number[] {
  return list.slice(1).map((n, i) => n.at - list[i]!.at);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('systemd notify protocol, real processes', () => {
  let lab: LabNetwork | undefined;
  let phone: Spawned | undefined;
  const listeners: NotifyListener[] = [];
  afterAll(async () => {
    await phone?.stop('SIGKILL');
    await lab?.stopAll();
    for (const l of listeners) await l.close();
  });

  it('a phone: READY=1 only once logged in, WATCHDOG=1 every half period until the loop stalls, STOPPING=1 on SIGTERM', async () => {
    lab = await LabNetwork.create({ users: ['alice', 'sn'], loginPort: port(0) });
    const notify = await NotifyListener.create();
    listeners.push(notify);

    // The phone starts first: its supernode and the login server are not up yet.
    const dir = join(lab.root, 'alice');
    const configPath = join(lab.root, 'alice.yaml');
    await writeYaml(configPath, {
      node: { stateDir: dir, listen: '127.0.0.1', port: port(2), control: join(dir, 'c.sock') },
      network: { name: lab.network, loginServer: { address: `127.0.0.1:${port(0)}`, publicKey: lab.loginKey }, bootstrap: [`127.0.0.1:${port(1)}`], mdns: false, keepAliveS: 5 },
      account: { user: 'alice', password: 'correct-horse-battery' },
      supernode: { policy: 'never' },
      log: { level: 'info' },
    });
    phone = spawnCli(['start', '--config', configPath], {
      NOTIFY_SOCKET: notify.path,
      WATCHDOG_USEC: String(WATCHDOG_USEC),
      NODE_OPTIONS: `--import=${STALL}`,
    });
    await phone.waitFor((l) => l.msg === 'node started');
    await sleep(3000);
    expect(notify.with('READY')).toEqual([]);
    expect(notify.with('WATCHDOG').length).toBeGreaterThanOrEqual(3);
    expect(notify.with('STATUS').at(-1)?.fields.STATUS).toMatch(/^logging in/);
    expect(phone.lines.some((l) => l.msg === 'attached to supernode')).toBe(false);

    // Now the network comes up; the phone logs in and only then says READY=1.
    await lab.startLoginServer();
    await lab.start('sn', { port: port(1), supernode: true });
    const ready = await notify.waitFor((n) => n.fields.READY === '1', 30_000);
    expect(ready.fields.STATUS).toBe(`logged in as alice via supernode 127.0.0.1:${port(1)}`);
    // The datagram can overtake the log line on stdout: wait for the line, then compare their order.
    await phone.waitFor((l) => l.msg === 'service ready');
    const attached = phone.lines.findIndex((l) => l.msg === 'attached to supernode');
    const readyLine = phone.lines.findIndex((l) => l.msg === 'service ready');
    expect(attached).toBeGreaterThanOrEqual(0);
    expect(readyLine).toBeGreaterThan(attached);
    expect(notify.with('READY')).toHaveLength(1);

    // Cadence: every ~1 s, and never a gap systemd (WatchdogSec = 2 s) would punish.
    const before = gaps(notify.with('WATCHDOG'));
    const sorted = [...before].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    expect(median).toBeGreaterThan(800);
    expect(median).toBeLessThan(1300);
    expect(Math.max(...before)).toBeLessThan(WATCHDOG_USEC / 1000);

    // A blocked event loop sends nothing: systemd would kill it after 2 s.
    const stalledAt = Date.now();
    const count = notify.with('WATCHDOG').length;
    phone.child.kill('SIGUSR2');
    await sleep(2500);
    expect(notify.with('WATCHDOG').filter((n) => n.at > stalledAt + 300)).toEqual([]);
    await phone.waitFor((l) => l.msg === 'event loop stalled: watchdog ping late', 5000);
    // Here it recovers (nobody killed it) and pings again.
    await notify.waitFor((n) => n.fields.WATCHDOG === '1' && n.at > stalledAt + 2500, 5000);
    expect(notify.with('WATCHDOG').length).toBeGreaterThan(count);
    expect(Math.max(...gaps(notify.with('WATCHDOG')))).toBeGreaterThanOrEqual(2500);

    // SIGTERM: STOPPING=1 at once, then a clean exit.
    const termAt = Date.now();
    const code = phone.stop('SIGTERM');
    const stopping = await notify.waitFor((n) => n.fields.STOPPING === '1', 5000);
    expect(stopping.at - termAt).toBeLessThan(1000);
    expect(await code).toBe(0);
    const exitMs = Date.now() - termAt;
    expect(phone.lines.some((l) => l.msg === 'node stopped')).toBe(true);
    console.log(`phone: SIGTERM to exit ${exitMs} ms`);
    phone = undefined;
  }, 90_000);

  it('the login server: READY=1 once it listens, STOPPING=1 on SIGTERM', async () => {
    const notify = await NotifyListener.create();
    listeners.push(notify);
    const loginLab = await LabNetwork.create({ users: [], loginPort: port(3) });
    const server = spawnCli(['login-server', '--data', loginLab.loginDir, '--listen', `127.0.0.1:${port(3)}`, '--network', 'lab'], { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '1000000' });
    try {
      const ready = await notify.waitFor((n) => n.fields.READY === '1');
      expect(ready.fields.STATUS).toBe(`login server serving on port ${port(3)}`);
      await server.waitFor((l) => l.msg === 'service ready');
      expect(server.lines.findIndex((l) => l.msg === 'login server started')).toBeLessThan(server.lines.findIndex((l) => l.msg === 'service ready'));
      await notify.waitFor((n) => n.fields.WATCHDOG === '1' && n.at > ready.at);
      const code = server.stop('SIGTERM');
      await notify.waitFor((n) => n.fields.STOPPING === '1');
      expect(await code).toBe(0);
    } finally {
      await server.stop('SIGKILL');
    }
  }, 30_000);
});
