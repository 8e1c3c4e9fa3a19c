import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRunOptions } from '../../src/cli/login-server-command.js';
import { STOP_DEADLINE_MS } from '../../src/system/service-lifecycle.js';
import { REPO_ROOT } from '../helpers/process.js';

const run = promisify(execFile);
const UNITS = ['partyline.service', 'partyline-login.service'];
/** The image's first-boot unit (image/files/). */
const FIRSTBOOT = 'partyline-firstboot.service';
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(join(d, 'sysinit.target')));
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));

/** `Key=value` settings of one section, in order (repeated keys kept). */
function settings(text: string, section: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = header[1]!;
    else if (current === section) {
      const eq = line.indexOf('=');
      out.push([line.slice(0, eq), line.slice(eq + 1)]);
    }
  }
  return out;
}

function one(list: Array<[string, string]>, key: string): string | undefined {
  return list.filter(([k]) => k === key).at(-1)?.[1];
}

describe('systemd units', () => {
  let root = '';
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('pass systemd-analyze verify without a single warning (and the image\'s first-boot unit too)', async () => {
    // CI installs systemd (.ci/run); a developer machine without it cannot run this check.
    if (!ANALYZE || !SYSTEM_UNITS) {
      expect(process.env.CI, 'systemd-analyze and the system units are needed in CI').toBeFalsy();
      return;
    }
    // A scratch root: systemd's own units, ours in /etc, and an executable /usr/bin/partyline
    // (verify checks that ExecStart= names one; the image puts the real one there).
    root = await mkdtemp(join(tmpdir(), 'pl-units-'));
    await cp(SYSTEM_UNITS, join(root, 'usr/lib/systemd/system'), { recursive: true });
    await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'usr/bin/partyline'), '#!/bin/sh\n');
    await chmod(join(root, 'usr/bin/partyline'), 0o755);
    await cp(join(REPO_ROOT, 'image', 'files', 'firstboot'), join(root, 'usr/lib/partyline/firstboot'));
    for (const unit of UNITS) await cp(join(REPO_ROOT, 'systemd', unit), join(root, 'etc/systemd/system', unit));
    await cp(join(REPO_ROOT, 'image', 'files', FIRSTBOOT), join(root, 'etc/systemd/system', FIRSTBOOT));
    const result = await run(ANALYZE, ['verify', `--root=${root}`, ...[...UNITS, FIRSTBOOT].map((u) => `/etc/systemd/system/${u}`)]).then(
      ({ stdout, stderr }) => ({ code: 0, out: stdout + stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, out: err.stdout + err.stderr }),
    );
    // verify exits 0 on an unknown key or a bad value ("ignoring"): any output at all is a failure.
    expect(result).toEqual({ code: 0, out: '' });
  });

  it('partyline.service: notify, watchdog, restart, its user and groups, state and config directories, hardening', async () => {
    const text = await readFile(join(REPO_ROOT, 'systemd', 'partyline.service'), 'utf8');
    const s = settings(text, 'Service');
    expect(one(s, 'Type')).toBe('notify');
    expect(one(s, 'NotifyAccess')).toBe('main');
    expect(one(s, 'ExecStart')).toBe('/usr/bin/partyline start --config /etc/partyline/config.yaml');
    expect(one(s, 'WatchdogSec')).toBe('20s');
    expect(one(s, 'Restart')).toBe('on-failure');
    expect(one(s, 'User')).toBe('partyline');
    expect(one(s, 'SupplementaryGroups')?.split(' ')).toEqual(expect.arrayContaining(['audio', 'input', 'gpio']));
    expect(one(s, 'StateDirectory')).toBe('partyline');
    expect(one(s, 'ConfigurationDirectory')).toBe('partyline');
    // The process's own stop deadline comes before systemd's SIGKILL.
    expect(Number(/^(\d+)s$/.exec(one(s, 'TimeoutStopSec') ?? '')?.[1]) * 1000).toBeGreaterThan(STOP_DEADLINE_MS);
    for (const [key, value] of [['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['NoNewPrivileges', 'yes'], ['PrivateTmp', 'yes'], ['DevicePolicy', 'closed'], ['AmbientCapabilities', 'CAP_NET_BIND_SERVICE'], ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE']]) {
      expect(one(s, key!), key).toBe(value);
    }
    expect(one(s, 'RestrictAddressFamilies')?.split(' ').sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
    expect(s.filter(([k]) => k === 'DeviceAllow').map(([, v]) => v.split(' ')[0])).toEqual(expect.arrayContaining(['char-alsa', 'char-hidraw', 'char-gpiochip']));
    expect(s.filter(([k]) => k === 'Environment').map(([, v]) => v)).toContain('UV_THREADPOOL_SIZE=8');
    expect(one(s, 'MemoryDenyWriteExecute')).toBeUndefined(); // V8 needs W+X pages
    expect(one(settings(text, 'Install'), 'WantedBy')).toBe('multi-user.target');
  });

  it('partyline-login.service: notify and watchdog, and its default options are ones the CLI accepts', async () => {
    const text = await readFile(join(REPO_ROOT, 'systemd', 'partyline-login.service'), 'utf8');
    const s = settings(text, 'Service');
    expect(one(s, 'Type')).toBe('notify');
    expect(one(s, 'WatchdogSec')).toBe('20s');
    expect(one(s, 'Restart')).toBe('on-failure');
    expect(one(s, 'User')).toBe('partyline-login');
    expect(one(s, 'StateDirectory')).toBe('partyline-login');
    const env = Object.fromEntries(s.filter(([k]) => k === 'Environment').map(([, v]) => v.split('=', 2) as [string, string]));
    const exec = one(s, 'ExecStart')!.replace(/\$\{(\w+)\}/g, (_m, name: string) => env[name] ?? `<unset ${name}>`).split(' ');
    expect(exec.slice(0, 5)).toEqual(['/usr/bin/partyline', 'login-server', 'run', '--data', '/var/lib/partyline-login']);
    const option = (name: string) => exec[exec.indexOf(name) + 1]!;
    expect(parseRunOptions({ listen: option('--listen'), network: option('--network'), credentialHours: option('--credential-hours'), logLevel: 'info' })).toMatchObject({ host: '0.0.0.0', port: 5061, network: 'partyline' });
  });
});
