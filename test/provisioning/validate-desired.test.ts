import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { provisionedOverlayPath } from '../../src/config/provisioned.js';
import { ProvisioningStore } from '../../src/provisioning/state-store.js';
import { checkDesired, scrub, secretsIn } from '../../src/provisioning/validate-desired.js';

let dir: string;
const env = {};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pl-prov-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checking a desired configuration', () => {
  it('accepts a partial overlay and gives the configuration the phone would run with', async () => {
    const file = join(dir, 'phone.yaml');
    await writeFile(file, `node:\n  stateDir: ${dir}\n  name: desk\nphone:\n  toneCountry: us\n`);
    const { errors, loaded } = await checkDesired({ account: { user: 'alice', password: 'pw-123456' } }, { file, stateDir: dir, env });
    expect(errors).toEqual([]);
    expect(loaded?.config).toMatchObject({ node: { name: 'desk' }, account: { user: 'alice' }, phone: { toneCountry: 'us' } });
    // The candidate file used for the merged check is gone.
    expect(await readdir(dir)).toEqual(['phone.yaml']);
  });

  it('rejects an overlay that is valid alone but clashes with the phone\'s file, naming the file', async () => {
    const file = join(dir, 'phone.yaml');
    await writeFile(file, `node:\n  stateDir: ${dir}\naccount:\n  user: alice\n  passwordFile: /etc/partyline/password\n`);
    const { errors } = await checkDesired({ account: { password: 'pw-123456' } }, { file, stateDir: dir, env });
    expect(errors).toEqual([`${file}:5:17: account.passwordFile: expected either account.password or account.passwordFile, not both, got "/etc/partyline/password"`]);
  });

  it('accepts an overlay that leans on the file: a new password for the file\'s user', async () => {
    const file = join(dir, 'phone.yaml');
    await writeFile(file, `node:\n  stateDir: ${dir}\naccount:\n  user: alice\n`);
    const { errors, loaded } = await checkDesired({ account: { password: 'pw-123456' } }, { file, stateDir: dir, env });
    expect(errors).toEqual([]);
    expect(loaded?.config.account).toEqual({ user: 'alice', password: 'pw-123456' });
  });

  it('lists every problem and never echoes a secret', async () => {
    const { errors } = await checkDesired(
      { account: { user: 'two words', password: 'hunter2-secret' }, provisioning: { mqtt: { url: 'mqtt//phone:url-secret@broker' } }, calls: { bitrate: 1 } },
      { file: undefined, stateDir: dir, env },
    );
    expect(errors).toHaveLength(3);
    expect(errors.join('\n')).not.toContain('hunter2-secret');
    expect(errors.join('\n')).not.toContain('url-secret');
    expect(errors.join('\n')).toMatch(/provisioning\.mqtt\.url: expected an mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\/ URL, got "mqtt\/\/phone:\*\*\*@broker"/);
  });

  it('finds the secrets of a payload and scrubs them from any text', () => {
    const secrets = secretsIn({ account: { password: 'a-pass' }, provisioning: { mqtt: { url: 'mqtts://u:p%40ss@h:8883', password: 'm-pass' } } });
    expect(secrets).toEqual(expect.arrayContaining(['a-pass', 'm-pass', 'p%40ss', 'p@ss']));
    expect(scrub('login failed for a-pass and p@ss', secrets)).toBe('login failed for *** and ***');
  });
});

describe('provisioning state store', () => {
  it('keeps the overlay in effect as last known good and puts it back', async () => {
    const store = new ProvisioningStore(dir);
    expect(await store.load()).toEqual({ version: 1, applied: null, handled: null, verifying: null, lastGoodOverlay: false });
    await store.writeOverlay({ account: { user: 'alice', password: 'pw-123456' } });
    expect(await store.keepLastGood()).toBe(true);
    await store.writeOverlay({ account: { user: 'bob', password: 'other-pw' } });
    await store.restoreLastGood(true);
    expect(await readFile(provisionedOverlayPath(dir), 'utf8')).toContain('user: alice');
    // No overlay before: a rollback removes it.
    await rm(provisionedOverlayPath(dir));
    expect(await store.keepLastGood()).toBe(false);
    await store.writeOverlay({ log: { level: 'debug' } });
    await store.restoreLastGood(false);
    await expect(readFile(provisionedOverlayPath(dir), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('saves versions and refuses a malformed state file with a clear error', async () => {
    const store = new ProvisioningStore(dir);
    await store.save({ version: 1, applied: 'v2', handled: 3, verifying: null, lastGoodOverlay: true });
    expect(await store.load()).toEqual({ version: 1, applied: 'v2', handled: 3, verifying: null, lastGoodOverlay: true });
    await writeFile(store.statePath, '{"version": 9}');
    await expect(store.load()).rejects.toMatchObject({ code: 'ERR_PROVISIONING_STATE', message: expect.stringMatching(/expected \{"version": 1, ...\}, got version 9/) as string });
    await writeFile(store.statePath, 'garbage');
    await expect(store.load()).rejects.toMatchObject({ code: 'ERR_PROVISIONING_STATE' });
  });
});
