import { issueCredential } from '../../../src/crypto/credential.js';
import type { Credential } from '../../../src/crypto/credential.js';
import { generateIdentity, generateSigningKeyPair } from '../../../src/crypto/identity.js';
import type { Identity } from '../../../src/crypto/identity.js';
import { signLocationRecord } from '../../../src/overlay/index/record.js';
import type { LocationRecord, UnsignedLocationRecord } from '../../../src/overlay/index/record.js';

export const HOUR = 3_600_000;
export const T0 = 1_800_000_000_000;
export const NETWORK = 'office';
export const loginServer = generateSigningKeyPair();

export interface Device {
  identity: Identity;
  credential: Credential;
}

/** A device of `user` with a credential valid from `issued` for `hours`. */
export function makeDevice(user: string, options: { issued?: number; hours?: number; network?: string; identity?: Identity } = {}): Device {
  const identity = options.identity ?? generateIdentity();
  const issued = options.issued ?? T0;
  const credential = issueCredential(
    {
      user,
      deviceId: identity.deviceId,
      deviceKey: identity.signing.publicKey.toString('base64'),
      noiseKey: identity.noise.publicKey.toString('base64'),
      network: options.network ?? NETWORK,
      issued,
      expires: issued + (options.hours ?? 8) * HOUR,
    },
    loginServer,
  );
  return { identity, credential };
}

/** A record signed by `device`, issued at `issued` (default T0 + 1 min) with `seq` = issued. */
export function makeRecord(user: string, device: Device, fields: Partial<UnsignedLocationRecord> & { issued?: number } = {}): LocationRecord {
  const issued = fields.issued ?? T0 + 60_000;
  return signLocationRecord(
    {
      user,
      device: fields.device ?? { deviceId: device.identity.deviceId, supernode: '192.0.2.10:4000', addresses: ['10.1.2.3:5060', '198.51.100.7:40123'], since: issued - 1_000 },
      seq: fields.seq ?? issued,
      issued,
    },
    device.credential,
    device.identity.signing,
  );
}
