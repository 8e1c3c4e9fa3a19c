import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { redactConfig, redactUrl } from '../../src/config/redact.js';

describe('redactConfig', () => {
  it('hides passwords in a copy and leaves the original alone', () => {
    const config = configSchema.parse({
      account: { user: 'alice', password: 'hunter2' },
      provisioning: { mqtt: { url: 'mqtts://phone:topsecret@broker.example:8883', username: 'phone', password: 'mqttpw' } },
    });
    const redacted = redactConfig(config);
    expect(redacted.account).toEqual({ user: 'alice', password: '***' });
    expect(redacted.provisioning.mqtt.password).toBe('***');
    expect(redacted.provisioning.mqtt.url).toBe('mqtts://phone:***@broker.example:8883');
    const text = JSON.stringify(redacted);
    for (const secret of ['hunter2', 'mqttpw', 'topsecret']) expect(text).not.toContain(secret);
    expect(config.account.password).toBe('hunter2');
  });

  it('leaves unset secrets unset and handles partial payloads', () => {
    expect(redactConfig({ account: { user: 'bob' } })).toEqual({ account: { user: 'bob' } });
    expect(redactConfig({ provisioning: { mqtt: { password: 'x' } } })).toEqual({ provisioning: { mqtt: { password: '***' } } });
  });

  it('redactUrl keeps URLs without a password as they are', () => {
    expect(redactUrl('mqtt://broker:1883')).toBe('mqtt://broker:1883');
    expect(redactUrl('not a url')).toBe('not a url');
  });
});
