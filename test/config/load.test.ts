import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { checkConfigFile, loadConfig, validateConfigText } from '../../src/config/load.js';
import { readPasswordFromConfig } from '../../src/config/password-file.js';
import { defaultStateDir } from '../../src/config/paths.js';

let dir: string;
/** An environment whose default state directory is the test's own. */
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'partyline-config-'));
  env = { STATE_DIRECTORY: dir };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function loadError(options: Parameters<typeof loadConfig>[0]): Promise<ConfigError> {
  const err: unknown = await loadConfig(options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('loadConfig', () => {
  it('gives a valid, fully defaulted config with no file, overlay or variables', async () => {
    const { config, sources } = await loadConfig({ env });
    expect(config.node).toEqual({ listen: '0.0.0.0', port: 0, stateDir: dir, control: join(dir, 'control.sock') });
    expect(config.network.bootstrap).toEqual([]);
    expect(config.log.level).toBe('info');
    expect(sources).toEqual([{ layer: 'defaults', name: 'defaults', paths: [] }]);
  });

  it('reports three mistakes at once, each with file, line, path, expectation and value', async () => {
    const file = await write(
      'config.yaml',
      ['network:', '  bootstrap:', '    - sn1.example.net:5060', '    - 10.0.0.1', 'node:', '  port: 70000', 'supernode:', '  policy: sometimes', ''].join('\n'),
    );
    const err = await loadError({ file, env });
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.issues).toEqual([
      `${file}:6:9: node.port: expected an integer 0..65535, got 70000`,
      `${file}:4:7: network.bootstrap[1]: expected "host:port", got "10.0.0.1"`,
      `${file}:8:11: supernode.policy: expected one of "auto" | "never" | "always", got "sometimes"`,
    ]);
    expect(err.message).toBe(`invalid configuration: 3 problems\n${err.issues.map((i) => `  ${i}`).join('\n')}`);
  });

  it('validateConfigText names the source as given', () => {
    expect(validateConfigText('network:\n  bootstrap: [a.example:1, 10.0.0.1]\n', 'config.yaml')).toEqual([
      'config.yaml:2:28: network.bootstrap[1]: expected "host:port", got "10.0.0.1"',
    ]);
    expect(validateConfigText('# nothing\n', 'config.yaml')).toEqual([]);
  });

  it('reports YAML syntax errors with line and column', () => {
    expect(validateConfigText('node:\n  port: 5060\n  listen: [0.0.0.0\nlog:\n  level: info\n', 'bad.yaml')).toEqual([
      'bad.yaml:4:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(validateConfigText('log:\n  level: info\n  level: debug\n', 'dup.yaml')).toEqual(['dup.yaml:3:3: YAML syntax error: Map keys must be unique']);
    expect(validateConfigText('- node\n', 'list.yaml')).toEqual(['list.yaml:1:1: expected a map of settings at the top level, got a list']);
  });

  it('rejects unknown keys, even with an empty value, and suggests the right one', () => {
    expect(validateConfigText('node:\n  prot: 5060\nnetwrok:\n', 'typo.yaml')).toEqual([
      'typo.yaml:2:3: node.prot: expected one of the keys name | stateDir | listen | port | control, got unknown key "prot" (did you mean "port"?)',
      'typo.yaml:3:1: netwrok: expected one of the keys node | network | account | supernode | hal | phone | calls | provisioning | loginServer | log, got unknown key "netwrok" (did you mean "network"?)',
    ]);
  });

  it('treats an empty value as not set', () => {
    expect(validateConfigText('account:\n  # user: alice\nnode:\n  name:\n', 'empty.yaml')).toEqual([]);
  });

  it('keeps plain scalars as written where the schema expects text', async () => {
    const file = await write('c.yaml', 'account:\n  user: 1001\n  password: 0123\nphone:\n  extensions:\n    0200: 1001\n  speedDials:\n    1: 0200\n');
    const { config } = await loadConfig({ file, env });
    expect(config.account).toEqual({ user: '1001', password: '0123' });
    expect(config.phone.extensions).toEqual({ '0200': '1001' });
    expect(config.phone.speedDials).toEqual({ '1': '0200' });
  });

  it('layers file < overlay < environment for the same key', async () => {
    const file = await write('config.yaml', `node:\n  stateDir: ${dir}\nlog:\n  level: warn\n`);
    await write('provisioned.yaml', 'log:\n  level: debug\n');
    const noStateEnv = {};

    const all = await loadConfig({ file, env: { PARTYLINE_LOG__LEVEL: 'trace' } });
    expect(all.config.log.level).toBe('trace');
    expect(all.sources.map((s) => [s.layer, s.name, s.paths])).toEqual([
      ['defaults', 'defaults', []],
      ['file', file, ['node.stateDir', 'log.level']],
      ['overlay', join(dir, 'provisioned.yaml'), ['log.level']],
      ['env', 'environment', ['log.level']],
    ]);
    expect(all.sources[3]?.variables).toEqual(['PARTYLINE_LOG__LEVEL']);

    expect((await loadConfig({ file, env: noStateEnv })).config.log.level).toBe('debug');
    expect((await loadConfig({ file, env: noStateEnv, overlayFile: false })).config.log.level).toBe('warn');
    expect((await loadConfig({ env: { STATE_DIRECTORY: join(dir, 'elsewhere') } })).config.log.level).toBe('info');
  });

  it('finds the overlay in a state directory set by an environment variable', async () => {
    await write('provisioned.yaml', 'account:\n  user: bob\n');
    const { config } = await loadConfig({ env: { PARTYLINE_NODE__STATE_DIR: dir } });
    expect(config.account.user).toBe('bob');
    expect(config.node.stateDir).toBe(dir);
  });

  it('merges objects deeply but replaces lists and maps', async () => {
    const file = await write(
      'config.yaml',
      'network:\n  name: office\n  mdns: false\n  bootstrap: [a.example:1, b.example:2]\nphone:\n  extensions: {100: alice, 101: bob}\n',
    );
    await write('provisioned.yaml', 'network:\n  keepAliveS: 30\nphone:\n  extensions: {102: carol}\n');
    const { config } = await loadConfig({ file, env: { ...env, PARTYLINE_NETWORK__BOOTSTRAP: 'c.example:3' } });
    expect(config.network).toMatchObject({ name: 'office', mdns: false, keepAliveS: 30, bootstrap: ['c.example:3'] });
    expect(config.phone.extensions).toEqual({ '102': 'carol' });
  });

  it('attributes problems to the overlay and to variables', async () => {
    const file = await write('config.yaml', 'node:\n  port: 5060\n');
    const overlay = await write('provisioned.yaml', 'node:\n  stateDir: /elsewhere\nnetwork:\n  keepAliveS: 0\n');
    const err = await loadError({ file, env: { ...env, PARTYLINE_NETWORK__MDNS: 'maybe', PARTYLINE_NODE__PROT: '1' } });
    expect(err.issues).toEqual([
      `${overlay}:2:3: node.stateDir: expected no node.stateDir in a provisioned overlay, got "/elsewhere"`,
      'PARTYLINE_NODE__PROT: node.prot: expected one of the keys name | stateDir | listen | port | control, got unknown key "prot" (did you mean "port"?)',
      'PARTYLINE_NETWORK__MDNS: network.mdns: expected true or false, got "maybe"',
      `${overlay}:4:15: network.keepAliveS: expected an integer 1..3600, got 0`,
    ]);
  });

  it('reports a missing --config file', async () => {
    const err = await loadError({ file: join(dir, 'missing.yaml'), env });
    expect(err.issues).toEqual([`${join(dir, 'missing.yaml')}: cannot read: no such file`]);
    expect(await checkConfigFile(join(dir, 'missing.yaml'))).toEqual(err.issues);
  });

  it('takes the file from PARTYLINE_CONFIG', async () => {
    const file = await write('config.yaml', 'node:\n  port: 5070\n');
    const { config } = await loadConfig({ env: { ...env, PARTYLINE_CONFIG: file } });
    expect(config.node.port).toBe(5070);
  });

  it("leaves the image build's PARTYLINE_IMAGE_* variables alone, and still refuses other unknown names", async () => {
    const { config } = await loadConfig({ env: { ...env, PARTYLINE_IMAGE_LOGIN: '10.0.0.1:5061', PARTYLINE_IMAGE_OUT: '/tmp/x', PARTYLINE_NODE__PORT: '5071' } });
    expect(config.node.port).toBe(5071);
    await expect(loadConfig({ env: { ...env, PARTYLINE_IMAGES: 'x' } })).rejects.toThrow(/PARTYLINE_IMAGES/);
  });
});

describe('environment variables', () => {
  it('coerce numbers, booleans, lists and maps by schema type, keys case-insensitive', async () => {
    const { config } = await loadConfig({
      env: {
        ...env,
        PARTYLINE_NODE__PORT: '5060',
        PARTYLINE_NETWORK__MDNS: 'off',
        PARTYLINE_HAL__HOOK__ACTIVE_LOW: 'TRUE',
        PARTYLINE_NETWORK__BOOTSTRAP: 'a.example:1, b.example:2,',
        PARTYLINE_SUPERNODE__PORTS: '443,80',
        PARTYLINE_network__keepAliveS: '30',
        PARTYLINE_NETWORK__LOGIN_SERVER__ADDRESS: 'login.example:5061',
        PARTYLINE_HAL__AUDIO__SAMPLE_RATE: '48000',
        PARTYLINE_LOG__LEVELS: 'overlay=debug, nat=trace',
        PARTYLINE_ACCOUNT__USER: 'alice',
        PARTYLINE_ACCOUNT__PASSWORD: ' pass word ',
        PARTYLINE_NODE__NAME: '',
      },
    });
    expect(config.node.port).toBe(5060);
    expect(config.node.name).toBeUndefined();
    expect(config.network.mdns).toBe(false);
    expect(config.hal.hook.activeLow).toBe(true);
    expect(config.network.bootstrap).toEqual(['a.example:1', 'b.example:2']);
    expect(config.supernode.ports).toEqual([443, 80]);
    expect(config.network.keepAliveS).toBe(30);
    expect(config.network.loginServer.address).toBe('login.example:5061');
    expect(config.hal.audio.sampleRate).toBe(48000);
    expect(config.log.levels).toEqual({ overlay: 'debug', nat: 'trace' });
    expect(config.account).toEqual({ user: 'alice', password: ' pass word ' });
  });

  it('an empty list variable empties the list', async () => {
    const file = await write('config.yaml', 'network:\n  bootstrap: [a.example:1]\n');
    const { config } = await loadConfig({ file, env: { ...env, PARTYLINE_NETWORK__BOOTSTRAP: '' } });
    expect(config.network.bootstrap).toEqual([]);
  });

  it('report values that do not coerce, and names that go nowhere', async () => {
    const err = await loadError({
      env: {
        ...env,
        PARTYLINE_NODE__PORT: 'fifty',
        PARTYLINE_SUPERNODE__PORTS: '443,x',
        PARTYLINE_LOG__LEVELS: 'overlay',
        PARTYLINE_LOG__LEVELS__OVERLAY: 'debug',
        PARTYLINE_NODE: 'x',
        PARTYLINE_NODE____PORT: '1',
      },
    });
    expect(err.issues).toEqual([
      'PARTYLINE_LOG__LEVELS: log.levels: expected "key=value,key=value", got "overlay"',
      'PARTYLINE_LOG__LEVELS__OVERLAY: log.levels: expected no key below log.levels (a map, set whole as key=value,key=value), got "OVERLAY"',
      'PARTYLINE_NODE: node: expected a single setting such as PARTYLINE_NODE__NAME, got "x"',
      'PARTYLINE_NODE____PORT: expected PARTYLINE_SECTION__KEY with "__" between non-empty segments, got "PARTYLINE_NODE____PORT"',
      'PARTYLINE_NODE__PORT: node.port: expected an integer 0..65535, got "fifty"',
      'PARTYLINE_SUPERNODE__PORTS: supernode.ports[1]: expected an integer 1..65535, got "x"',
    ]);
  });
});

describe('paths', () => {
  it('default state dir: systemd, root, XDG, home', () => {
    expect(defaultStateDir({ STATE_DIRECTORY: '/var/lib/partyline:/var/lib/other' }, false)).toBe('/var/lib/partyline');
    expect(defaultStateDir({}, true)).toBe('/var/lib/partyline');
    expect(defaultStateDir({ XDG_STATE_HOME: '/home/u/.state', HOME: '/home/u' }, false)).toBe('/home/u/.state/partyline');
    expect(defaultStateDir({ HOME: '/home/u' }, false)).toBe('/home/u/.local/state/partyline');
  });

  it('resolves stateDir and control: relative to cwd, ~ to home, control inside stateDir', async () => {
    const rel = await loadConfig({ env: { PARTYLINE_NODE__STATE_DIR: 'state' }, cwd: dir, overlayFile: false });
    expect(rel.config.node).toMatchObject({ stateDir: join(dir, 'state'), control: join(dir, 'state', 'control.sock') });
    const home = await loadConfig({ env: { HOME: dir, PARTYLINE_NODE__STATE_DIR: '~/pl', PARTYLINE_NODE__CONTROL: '/run/pl.sock' }, overlayFile: false });
    expect(home.config.node).toMatchObject({ stateDir: join(dir, 'pl'), control: '/run/pl.sock' });
  });
});

describe('readPasswordFromConfig', () => {
  it('returns the password, the first line of the password file, or nothing', async () => {
    const passwordFile = await write('password', 's3cret\n');
    expect(await readPasswordFromConfig({ account: { user: 'a', password: 'pw' } })).toBe('pw');
    expect(await readPasswordFromConfig({ account: { user: 'a', passwordFile } })).toBe('s3cret');
    expect(await readPasswordFromConfig({ account: {} })).toBeUndefined();
  });

  it('fails with ConfigError when the file is missing or empty', async () => {
    const empty = await write('empty', '\n');
    await expect(readPasswordFromConfig({ account: { user: 'a', passwordFile: empty } })).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    await expect(readPasswordFromConfig({ account: { user: 'a', passwordFile: join(dir, 'none') } })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      issues: [expect.stringMatching(/^account\.passwordFile: cannot read ".*none": ENOENT/)],
    });
  });
});
