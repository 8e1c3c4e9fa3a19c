import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/load.js';
import {
  provisionedOverlayPath,
  readProvisionedOverlay,
  removeProvisionedOverlay,
  validateProvisionedOverlay,
  writeProvisionedOverlay,
} from '../../src/config/provisioned.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'partyline-overlay-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const payload = {
  account: { user: 'alice', password: '0123' },
  phone: { extensions: { '0100': 'alice' } },
  network: { bootstrap: ['[2001:db8::1]:5060'] },
};

describe('provisioned overlay', () => {
  it('writes a validated payload with mode 0600 and reads it back unchanged', async () => {
    expect(await writeProvisionedOverlay(dir, payload)).toEqual(payload);
    const path = provisionedOverlayPath(dir);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readProvisionedOverlay(dir)).toEqual(payload);
    expect(await readdir(dir)).toEqual(['provisioned.yaml']);

    const { config } = await loadConfig({ env: { STATE_DIRECTORY: dir } });
    expect(config.account).toEqual({ user: 'alice', password: '0123' });
    expect(config.phone.extensions).toEqual({ '0100': 'alice' });
  });

  it('replaces the file by rename (new inode), leaving no temporary file behind', async () => {
    await writeProvisionedOverlay(dir, { log: { level: 'debug' } });
    const before = await stat(provisionedOverlayPath(dir));
    await writeProvisionedOverlay(dir, { log: { level: 'trace' } });
    const after = await stat(provisionedOverlayPath(dir));
    expect(after.ino).not.toBe(before.ino);
    expect(await readdir(dir)).toEqual(['provisioned.yaml']);
    expect(await readProvisionedOverlay(dir)).toEqual({ log: { level: 'trace' } });
  });

  it('rejects an invalid payload with every issue and leaves the previous overlay untouched', async () => {
    await writeProvisionedOverlay(dir, { log: { level: 'debug' } });
    const before = await readFile(provisionedOverlayPath(dir), 'utf8');
    const err: unknown = await writeProvisionedOverlay(dir, {
      node: { stateDir: '/elsewhere', port: -1 },
      network: { bootstrap: ['10.0.0.1'] },
      accout: {},
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      'node.stateDir: expected no node.stateDir in a provisioned overlay, got "/elsewhere"',
      'node.port: expected an integer 0..65535, got -1',
      'network.bootstrap[0]: expected "host:port", got "10.0.0.1"',
      'accout: expected one of the keys node | network | account | supernode | hal | phone | calls | provisioning | loginServer | log, got unknown key "accout" (did you mean "account"?)',
    ]);
    expect(await readFile(provisionedOverlayPath(dir), 'utf8')).toBe(before);
    expect(await readdir(dir)).toEqual(['provisioned.yaml']);
  });

  it('never creates a file for a rejected first payload', async () => {
    await expect(writeProvisionedOverlay(dir, 'not a map')).rejects.toMatchObject({ code: 'ERR_CONFIG', issues: ['expected a map of settings, got "not a map"'] });
    expect(await readdir(dir)).toEqual([]);
  });

  it('reads nothing when there is no overlay, and fails on a corrupted one', async () => {
    expect(await readProvisionedOverlay(dir)).toBeUndefined();
    await writeFile(provisionedOverlayPath(dir), 'log:\n  level: loud\n');
    await expect(readProvisionedOverlay(dir)).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      issues: [`${provisionedOverlayPath(dir)}:2:10: log.level: expected one of "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent", got "loud"`],
    });
  });

  it('removes the overlay, twice without harm', async () => {
    await writeProvisionedOverlay(dir, { log: { level: 'debug' } });
    await removeProvisionedOverlay(dir);
    await removeProvisionedOverlay(dir);
    expect(await readdir(dir)).toEqual([]);
    expect(await readProvisionedOverlay(dir)).toBeUndefined();
  });

  it('validateProvisionedOverlay accepts a partial config', () => {
    expect(validateProvisionedOverlay({})).toEqual([]);
    expect(validateProvisionedOverlay({ hal: { audio: { driver: 'alsa' } } })).toEqual([]);
  });
});
