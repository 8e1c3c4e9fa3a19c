import { describe, expect, it } from 'vitest';
import { configJsonSchema, describeSchema, formatSchema } from '../../src/config/describe.js';

const NAMED_KEYS = [
  'node.stateDir', 'node.listen', 'node.port', 'node.control', 'node.name',
  'network.name', 'network.loginServer.address', 'network.loginServer.publicKey', 'network.bootstrap', 'network.mdns', 'network.keepAliveS',
  'account.user', 'account.password', 'account.passwordFile',
  'supernode.policy', 'supernode.maxNodes', 'supernode.maxLinksPerAddress', 'supernode.ports',
  'supernode.minUptimeS', 'supernode.minBandwidthKbps', 'supernode.minFreeMemoryMb', 'supernode.maxLoadPerCore',
  'supernode.bandwidthMaxAgeS', 'supernode.reachbackMaxAgeS', 'supernode.promoteAfterS', 'supernode.demoteAfterS',
  'hal.keypad.driver', 'hal.hook.driver', 'hal.leds.driver', 'hal.audio.driver', 'hal.audio.input', 'hal.audio.output', 'hal.audio.device', 'hal.audio.sampleRate',
  'phone.extensions', 'phone.speedDials', 'phone.interDigitTimeoutMs', 'phone.toneCountry',
  'calls.ringTimeoutS', 'calls.bitrate', 'calls.dtx', 'calls.srtpProfile', 'calls.autoAnswer', 'supernode.soundTest.user', 'supernode.soundTest.delayMs',
  'provisioning.mqtt.url', 'provisioning.mqtt.username', 'provisioning.mqtt.password', 'provisioning.mqtt.topicPrefix',
  'log.level', 'log.levels',
];

describe('describeSchema', () => {
  const keys = describeSchema();
  const byPath = new Map(keys.map((k) => [k.path, k]));

  it('lists every key named in the design, each with a description', () => {
    for (const path of NAMED_KEYS) {
      expect(byPath.has(path), path).toBe(true);
    }
    for (const key of keys) expect(key.description.length, key.path).toBeGreaterThan(10);
  });

  it('gives types, defaults, secrecy and the environment variable', () => {
    expect(byPath.get('node.port')).toMatchObject({ type: 'integer 0..65535', default: 0, secret: false, env: 'PARTYLINE_NODE__PORT' });
    expect(byPath.get('network.bootstrap')).toMatchObject({ type: 'list of host:port', default: [] });
    expect(byPath.get('network.keepAliveS')).toMatchObject({ default: 60, env: 'PARTYLINE_NETWORK__KEEP_ALIVE_S' });
    expect(byPath.get('supernode.policy')).toMatchObject({ type: '"auto" | "never" | "always"', default: 'auto' });
    expect(byPath.get('hal.keypad.driver')).toMatchObject({ type: '"sim" | "hid"', default: 'sim' });
    expect(byPath.get('hal.audio.sampleRate')).toMatchObject({ type: '16000 | 48000', default: 16000 });
    expect(byPath.get('phone.extensions')).toMatchObject({ type: 'map of digits to user', default: {} });
    expect(byPath.get('account.password')).toMatchObject({ secret: true, default: undefined });
    expect(byPath.get('provisioning.mqtt.password')?.secret).toBe(true);
  });

  it('formats a listing naming every key', () => {
    const text = formatSchema(keys);
    for (const key of keys) expect(text).toContain(`${key.path}: ${key.type}`);
    expect(text).toContain('node.port: integer 0..65535; default 0');
    expect(text).toContain('account.password: string; optional; secret');
  });

  it('exports a JSON Schema that forbids unknown keys', () => {
    const schema = configJsonSchema();
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties as object)).toEqual(['node', 'network', 'account', 'supernode', 'hal', 'phone', 'calls', 'provisioning', 'loginServer', 'log']);
  });
});
