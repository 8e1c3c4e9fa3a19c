import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { componentLogger, createRootLogger } from '../../src/system/logging.js';

function capture() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { destination, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>), raw: () => chunks.join('') };
}

describe('logging', () => {
  it('writes JSON lines with the component and honours per-component levels', () => {
    const out = capture();
    const root = createRootLogger({ level: 'info', levels: { overlay: 'debug', nat: 'warn' }, destination: out.destination });
    const overlay = componentLogger(root, 'overlay');
    const nat = componentLogger(root, 'nat');
    const call = componentLogger(root, 'call', { callId: 'c1' });
    overlay.debug({ peer: 'a' }, 'overlay detail');
    nat.info('nat info is below warn');
    nat.warn('nat degraded');
    call.debug('call debug is below info');
    call.info('call established');
    expect(out.lines().map((l) => [l.component, l.level, l.msg])).toEqual([
      ['overlay', 'debug', 'overlay detail'],
      ['nat', 'warn', 'nat degraded'],
      ['call', 'info', 'call established'],
    ]);
    expect(out.lines()[2]).toMatchObject({ callId: 'c1' });
  });

  it('never writes passwords or private keys, at any depth', () => {
    const out = capture();
    const root = createRootLogger({ level: 'trace', destination: out.destination });
    const log = componentLogger(root, 'login');
    log.info({ user: 'alice', password: 'hunter2-secret' }, 'login attempt');
    log.info({ account: { user: 'alice', password: 'hunter2-secret' } }, 'account');
    log.info({ config: { provisioning: { mqtt: { password: 'mqtt-secret' } } } }, 'config');
    log.info({ identity: { privateKey: 'cHJpdmF0ZS1rZXk=' } }, 'identity');
    expect(out.raw()).not.toContain('hunter2-secret');
    expect(out.raw()).not.toContain('cHJpdmF0ZS1rZXk=');
    expect(out.raw()).not.toContain('mqtt-secret');
    expect(out.raw()).toContain('"user":"alice"');
    expect(out.lines()[2]).toMatchObject({ config: { provisioning: { mqtt: { password: '[redacted]' } } } });
  });

  it('a loaded config with secrets, once redacted, logs none of them', async () => {
    const out = capture();
    const root = createRootLogger({ level: 'info', destination: out.destination });
    const { config } = await loadConfig({
      env: { PARTYLINE_ACCOUNT__USER: 'alice', PARTYLINE_ACCOUNT__PASSWORD: 'sw0rdfish-123', PARTYLINE_NODE__STATE_DIR: '/tmp/pl-log-test' },
      overlayFile: false,
    });
    const { redactConfig } = await import('../../src/config/redact.js');
    root.info({ config: redactConfig(config) }, 'configuration loaded');
    expect(out.raw()).not.toContain('sw0rdfish-123');
    expect(out.raw()).toContain('alice');
  });
});
