import { mkdtemp, readFile, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { issueCredential, verifyCredential } from '../../src/crypto/credential.js';
import type { Credential } from '../../src/crypto/credential.js';
import { deviceIdFromKey, generateIdentity, generateSigningKeyPair, loadOrCreateIdentity } from '../../src/crypto/identity.js';

const HOUR = 3_600_000;
const server = generateSigningKeyPair();
const device = generateIdentity();
const now = 1_800_000_000_000;

function credential(overrides: Partial<Credential> = {}): Credential {
  return {
    ...issueCredential(
      {
        user: 'alice',
        deviceId: device.deviceId,
        deviceKey: device.signing.publicKey.toString('base64'),
        noiseKey: device.noise.publicKey.toString('base64'),
        network: 'office',
        issued: now,
        expires: now + 8 * HOUR,
      },
      server,
    ),
    ...overrides,
  };
}

const verify = (value: unknown, extra: Partial<Parameters<typeof verifyCredential>[1]> = {}): Credential =>
  verifyCredential(value, { loginServerKey: server.publicKey, now: now + HOUR, network: 'office', ...extra });

describe('credentials', () => {
  it('verifies a credential issued by the login server', () => {
    const c = verify(credential(), { noiseKey: device.noise.publicKey });
    expect(c.user).toBe('alice');
    expect(c.deviceId).toBe(deviceIdFromKey(device.signing.publicKey));
  });

  it.each([
    ['expired', () => verify(credential(), { now: now + 9 * HOUR }), 'ERR_CREDENTIAL_EXPIRED'],
    ['issued in the future', () => verify(credential(), { now: now - HOUR }), 'ERR_CREDENTIAL_NOT_YET_VALID'],
    ['signed by another key', () => verify(credential(), { loginServerKey: generateSigningKeyPair().publicKey }), 'ERR_CREDENTIAL_SIGNATURE'],
    ['with the user changed', () => verify(credential({ user: 'mallory' })), 'ERR_CREDENTIAL_SIGNATURE'],
    ['with the expiry extended', () => verify(credential({ expires: now + 1000 * HOUR })), 'ERR_CREDENTIAL_SIGNATURE'],
    ['for another network', () => verify(credential(), { network: 'home' }), 'ERR_CREDENTIAL_NETWORK'],
    ['on a link with another noise key', () => verify(credential(), { noiseKey: generateIdentity().noise.publicKey }), 'ERR_CREDENTIAL_KEY_BINDING'],
    ['not an object', () => verify('credential'), 'ERR_CREDENTIAL_MALFORMED'],
    ['with an unknown field', () => verify({ ...credential(), admin: true }), 'ERR_CREDENTIAL_MALFORMED'],
    ['with a short key', () => verify(credential({ deviceKey: 'AAAA' })), 'ERR_CREDENTIAL_MALFORMED'],
  ])('rejects a credential %s', (_name, run, code) => {
    expect(run).toThrow(expect.objectContaining({ code }));
  });

  it('rejects a credential whose device id does not match its key even when signed', () => {
    const other = generateIdentity();
    const forged = issueCredential(
      { user: 'alice', deviceId: other.deviceId, deviceKey: device.signing.publicKey.toString('base64'), noiseKey: device.noise.publicKey.toString('base64'), network: 'office', issued: now, expires: now + HOUR * 8 },
      server,
    );
    expect(() => verify(forged)).toThrow(expect.objectContaining({ code: 'ERR_CREDENTIAL_KEY_BINDING' }));
  });
});

describe('device identity', () => {
  it('is created once with mode 0600 and reused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-id-'));
    const first = await loadOrCreateIdentity(dir);
    expect(first.created).toBe(true);
    expect((await stat(join(dir, 'identity.json'))).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateIdentity(dir);
    expect(second.created).toBe(false);
    expect(second.identity.deviceId).toBe(first.identity.deviceId);
    expect(second.identity.noise.privateKey.equals(first.identity.noise.privateKey)).toBe(true);
  });

  it('refuses a damaged identity file and leaves it in place', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-id-'));
    await writeFile(join(dir, 'identity.json'), '{"version":1,"signing":{}}', { mode: 0o600 });
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'ERR_IDENTITY_FILE' });
    expect(await readFile(join(dir, 'identity.json'), 'utf8')).toBe('{"version":1,"signing":{}}');
  });

  it('refuses an identity file readable by others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-id-'));
    await loadOrCreateIdentity(dir);
    await chmod(join(dir, 'identity.json'), 0o644);
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'ERR_IDENTITY_MODE' });
  });
});
