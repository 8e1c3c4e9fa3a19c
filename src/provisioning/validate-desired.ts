/**
 * Checking a desired configuration before anything is written: merged with
 * the phone's configuration file and environment exactly as the loader will
 * merge it (unknown keys, bad values, forbidden keys, and rules across keys:
 * an overlay giving a password where the file gives a passwordFile is
 * rejected; one giving only a password for the file's user is fine). Every
 * problem is listed; secrets are never echoed.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.js';
import type { LoadedConfig } from '../config/load.js';
import { validateProvisionedOverlay } from '../config/provisioned.js';
import { getAt, isPlainObject } from '../config/introspect.js';
import { SECRET_CONFIG_PATHS } from '../config/schema.js';
import { REDACTED } from '../config/redact.js';
import { ConfigError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export interface DesiredCheckContext {
  /** The phone's configuration file (`--config`), if any. */
  file: string | undefined;
  stateDir: string;
  env?: NodeJS.ProcessEnv;
}

/** The secret strings a payload carries (passwords, a broker URL's password): never to be echoed. */
export function secretsIn(partial: unknown): string[] {
  if (!isPlainObject(partial)) return [];
  const found: string[] = [];
  for (const dotted of SECRET_CONFIG_PATHS) {
    const value = getAt(partial, dotted.split('.'));
    if (typeof value === 'string' && value.length > 0) found.push(value);
  }
  const url = getAt(partial, ['provisioning', 'mqtt', 'url']);
  if (typeof url === 'string') {
    // user:password@ after "//" (or at the start), also in a malformed URL the schema will reject.
    const match = /(?:^|\/\/)[^:/@\s]*:([^@/\s]+)@/.exec(url);
    if (match?.[1]) found.push(match[1], decodeURIComponent(match[1]));
  }
  return found;
}

/** Replace every occurrence of the secrets in a text by ***. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join(REDACTED);
  return out;
}

/**
 * Problems with `partial` as the phone's overlay (empty: it may be applied).
 * When valid, also returns the configuration the phone would run with.
 */
export async function checkDesired(partial: unknown, ctx: DesiredCheckContext): Promise<{ errors: string[]; loaded?: LoadedConfig }> {
  const secrets = secretsIn(partial);
  if (!isPlainObject(partial)) return { errors: validateProvisionedOverlay(partial) };
  // Checked merged, as the loader will merge it (through a candidate file the loader reads as the overlay), not
  // alone: a rule across keys may be met by the file (account.password here, account.user there).
  const candidate = join(ctx.stateDir, `.provisioned.candidate.${randomBytes(4).toString('hex')}.yaml`);
  try {
    await writeFileAtomic(candidate, stringify(partial), { mode: 0o600 });
    const loaded = await loadConfig({ ...(ctx.file !== undefined ? { file: ctx.file } : {}), ...(ctx.env ? { env: ctx.env } : {}), overlayFile: candidate });
    return { errors: [], loaded };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // The candidate's line numbers mean nothing to the operator: name the payload instead.
    const prefix = new RegExp(`^${candidate.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d+:\\d+)?: `);
    return { errors: err.issues.map((issue) => scrub(issue.replace(prefix, ''), secrets)) };
  } finally {
    await rm(candidate, { force: true });
  }
}
