import { describe, expect, it } from 'vitest';
import { configSchema, SECRET_CONFIG_PATHS } from '../../src/config/schema.js';
import { describeSchema } from '../../src/config/describe.js';
import { validateProvisionedOverlay } from '../../src/config/provisioned.js';

describe('configSchema', () => {
  it('turns an empty config into a fully defaulted one', () => {
    const config = configSchema.parse({});
    expect(config.node).toEqual({ listen: '0.0.0.0', port: 0 });
    expect(config.network).toEqual({ name: 'partyline', loginServer: {}, bootstrap: [], mdns: true, keepAliveS: 60, hostCacheSize: 200 });
    expect(config.account).toEqual({});
    expect(config.supernode.policy).toBe('auto');
    expect(config.supernode.maxNodes).toBe(10000);
    expect(config.supernode.maxLinksPerAddress).toBe(16);
    expect(config.supernode.ports).toEqual([]);
    expect(config.supernode).toMatchObject({
      minUptimeS: 600, minBandwidthKbps: 1000, minFreeMemoryMb: 128, maxLoadPerCore: 0.7,
      bandwidthMaxAgeS: 86400, reachbackMaxAgeS: 3600, promoteAfterS: 300, demoteAfterS: 600,
    });
    expect(config.hal.keypad.driver).toBe('sim');
    expect(config.hal.hook.driver).toBe('sim');
    expect(config.hal.leds.driver).toBe('sim');
    expect(config.hal.audio).toEqual({ driver: 'sim', device: 'default', sampleRate: 16000 });
    expect(config.phone).toEqual({ extensions: {}, speedDials: {}, interDigitTimeoutMs: 4000, toneCountry: 'eu' });
    expect(config.provisioning.mqtt).toEqual({ topicPrefix: 'partyline' });
    expect(config.log).toEqual({ level: 'info', levels: {} });
  });

  it('rejects unknown keys at every depth', () => {
    for (const data of [{ nod: {} }, { node: { prot: 1 } }, { hal: { audio: { rate: 1 } } }, { provisioning: { mqtt: { user: 'x' } } }]) {
      const result = configSchema.safeParse(data);
      expect(result.success, JSON.stringify(data)).toBe(false);
      expect(result.error?.issues[0]?.code).toBe('unrecognized_keys');
    }
  });

  it('accepts "host:port" with IPv4, DNS names and [IPv6], and echoes what it rejects', () => {
    const good = ['10.0.0.1:5060', 'sn1.example.net:443', '[2001:db8::1]:5060'];
    expect(validateProvisionedOverlay({ network: { bootstrap: good, loginServer: { address: 'login.example:5061' } } })).toEqual([]);
    const bad = ['10.0.0.1', '10.0.0.1:0', 'a.example:65536', '2001:db8::1:5060', '10.0.0:5060', 'a.example:http'];
    expect(validateProvisionedOverlay({ network: { bootstrap: bad } })).toEqual(
      bad.map((text, i) => `network.bootstrap[${i}]: expected "host:port", got ${JSON.stringify(text)}`),
    );
    expect(validateProvisionedOverlay({ network: { loginServer: { address: 5061 } } })).toEqual([
      'network.loginServer.address: expected "host:port", got 5061',
    ]);
  });

  it('does not allow password and passwordFile together', () => {
    expect(validateProvisionedOverlay({ account: { user: 'alice', password: 'pw', passwordFile: '/etc/pw' } })).toEqual([
      'account.passwordFile: expected either account.password or account.passwordFile, not both, got "/etc/pw"',
    ]);
  });

  it('wants a user with a password, but a user alone is fine', () => {
    expect(validateProvisionedOverlay({ account: { passwordFile: '/etc/pw' } })).toEqual([
      'account.user: expected a user name to go with the password, got nothing',
    ]);
    expect(validateProvisionedOverlay({ account: { user: 'alice' } })).toEqual([]);
  });

  it('checks driver names, sample rates, ports and map keys', () => {
    expect(
      validateProvisionedOverlay({
        node: { port: 65536, listen: 'eth0' },
        hal: { keypad: { driver: 'usb' }, audio: { sampleRate: 44100 } },
        supernode: { ports: [443, 0] },
        phone: { extensions: { '10a': 'bob' }, speedDials: { '1': 'two words' } },
        log: { level: 'verbose' },
      }),
    ).toEqual([
      'node.listen: expected an IP address, got "eth0"',
      'node.port: expected an integer 0..65535, got 65536',
      'supernode.ports[1]: expected an integer 1..65535, got 0',
      'hal.keypad.driver: expected one of "sim" | "hid", got "usb"',
      'hal.audio.sampleRate: expected 16000 or 48000, got 44100',
      'phone.extensions.10a: expected a key of digits only, got "10a"',
      'phone.speedDials.1: expected a number or a user name (no spaces, ":", "/" or "@"), got "two words"',
      'log.level: expected one of "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent", got "verbose"',
    ]);
  });

  it('never echoes a secret in an error', () => {
    expect(validateProvisionedOverlay({ account: { user: 'alice', password: '' }, provisioning: { mqtt: { password: 42 } } })).toEqual([
      'account.password: expected a password, got ***',
      'provisioning.mqtt.password: expected a password, got ***',
    ]);
  });

  it('lists secrets that exist in the schema, including every password key', () => {
    const paths = describeSchema().map((k) => k.path);
    for (const secret of SECRET_CONFIG_PATHS) expect(paths).toContain(secret);
    for (const path of paths.filter((p) => /password$/i.test(p))) expect(SECRET_CONFIG_PATHS.has(path), path).toBe(true);
  });
});
