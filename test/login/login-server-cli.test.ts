import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyCredential } from '../../src/crypto/credential.js';
import { generateIdentity } from '../../src/crypto/identity.js';
import { AccountStore } from '../../src/login/account-store.js';
import { dialLoginServer, loginWithPassword } from '../../src/login/client.js';
import { memoryLogger } from '../helpers/log.js';
import { spawnCli } from '../helpers/process.js';
import type { Spawned } from '../helpers/process.js';

// Runs the built CLI (dist/): `npm test` builds first; locally run `npx tsc -p tsconfig.build.json`.

const PASSWORD = 'a long enough secret';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'partyline-login-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function run(args: string[], stdin?: string): Spawned {
  const spawned = spawnCli(args);
  cleanups.push(() => spawned.stop('SIGKILL'));
  if (stdin !== undefined) spawned.child.stdin!.end(stdin);
  return spawned;
}

/** The exit code, once the process has exited on its own. */
function exited(spawned: Spawned): Promise<number | null> {
  const { child } = spawned;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Plain (non-JSON) stdout lines. */
function stdoutText(spawned: Spawned): string[] {
  return spawned.lines.map((l) => String(l.msg));
}

describe('partyline login-server', () => {
  it('prints the same public key every time, creating it the first time', async () => {
    const dir = tempDir();
    const first = run(['login-server', 'key', '--data', dir]);
    expect(await exited(first)).toBe(0);
    const second = run(['login-server', 'key', '--data', dir]);
    expect(await exited(second)).toBe(0);
    const [key] = stdoutText(first);
    expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(key!, 'base64')).toHaveLength(32);
    expect(stdoutText(second)).toEqual([key]);
    expect(first.stderr()).toContain('login-key.json');
    expect(second.stderr()).toBe('');
  });

  it('runs the server: a user added with `partyline user add` logs in, and SIGTERM stops it with exit code 0', async () => {
    const dir = tempDir();
    const add = run(['user', 'add', 'alice', '--data', dir, '--password-stdin'], `${PASSWORD}\n`);
    expect(await exited(add)).toBe(0);
    const keyRun = run(['login-server', 'key', '--data', dir]);
    expect(await exited(keyRun)).toBe(0);
    const [key] = stdoutText(keyRun);

    const server = run(['login-server', '--data', dir, '--listen', '127.0.0.1:0', '--network', 'lab', '--credential-hours', '2']);
    const started = await server.waitFor((l) => l.msg === 'login server started');
    expect(started).toMatchObject({ level: 'info', component: 'login-server', publicKey: key, network: 'lab' });
    const port = started.port as number;
    expect(port).toBeGreaterThan(0);

    const identity = generateIdentity();
    const loginServerKey = Buffer.from(key!, 'base64');
    const link = await dialLoginServer({ host: '127.0.0.1', port, identity, network: 'lab', loginServerKey, log: memoryLogger().log });
    cleanups.push(() => link.close());
    const credential = await loginWithPassword({ link, user: 'alice', password: PASSWORD, loginServerKey, network: 'lab', identity });
    expect(verifyCredential(credential, { loginServerKey, network: 'lab', now: Date.now(), noiseKey: identity.noise.publicKey })).toMatchObject({ user: 'alice', deviceId: identity.deviceId });
    expect(credential.expires - credential.issued).toBe(2 * 3_600_000);
    await expect(loginWithPassword({ link, user: 'alice', password: 'not the password', loginServerKey, network: 'lab', identity }))
      .rejects.toMatchObject({ code: 'ERR_LOGIN_BAD_PASSWORD' });
    await server.waitFor((l) => l.msg === 'login refused');
    expect(await server.waitFor((l) => l.msg === 'login')).toMatchObject({ user: 'alice', deviceId: identity.deviceId });

    expect(await server.stop('SIGTERM')).toBe(0);
    expect(server.lines.some((l) => l.msg === 'login server stopped')).toBe(true);
    expect(JSON.stringify(server.lines)).not.toContain(PASSWORD);
    expect(JSON.stringify(server.lines)).not.toContain('not the password');

    // The login was recorded in the store.
    const store = AccountStore.open(dir, { create: false });
    try {
      expect(store.getUser('alice')).toMatchObject({ lastLoginAt: credential.issued, lastDeviceId: identity.deviceId });
    } finally {
      store.close();
    }
  });

  it('reports bad options on stderr with exit code 1', async () => {
    const dir = tempDir();
    const bad = run(['login-server', '--data', dir, '--listen', 'nowhere', '--credential-hours', 'forever']);
    expect(await exited(bad)).toBe(1);
    expect(bad.stderr()).toContain('--listen: expected "host:port"');
    expect(bad.stderr()).toContain('--credential-hours: expected a number');
  });

  it('explains itself in --help', async () => {
    const help = run(['login-server', '--help']);
    expect(await exited(help)).toBe(0);
    const text = stdoutText(help).join('\n');
    expect(text).toContain('run [options]');
    expect(text).toContain('key [options]');
    expect(text).toContain('network.loginServer.publicKey');
  });
});
