/**
 * The provisioned overlay: a partial configuration written by MQTT
 * provisioning to `<stateDir>/provisioned.yaml`, layered above the
 * configuration file and below environment variables. It may hold
 * passwords, so it is written atomically with mode 0600, and only after it
 * validates — a rejected payload leaves the previous overlay untouched.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isPlainObject } from './introspect.js';
import { formatReceived } from './issues.js';
import { configSchema } from './schema.js';
import type { ConfigInput } from './schema.js';
import { summarise, validateLayers } from './validate.js';
import { parseYamlSource } from './yaml-source.js';
import type { YamlSource } from './yaml-source.js';

export const PROVISIONED_OVERLAY_FILE = 'provisioned.yaml';
export const PROVISIONED_OVERLAY_MODE = 0o600;

/** Keys the overlay may not set (the overlay itself lives in the state directory). */
const FORBIDDEN_OVERLAY_KEYS = [['node', 'stateDir']] as const;

export function provisionedOverlayPath(stateDir: string): string {
  return join(stateDir, PROVISIONED_OVERLAY_FILE);
}

/**
 * Problems with a provisioning payload, as `path: expected X, got Y`
 * lines (empty when valid). The payload is checked on its own: every key is
 * optional, unknown keys and bad values are errors.
 */
export function validateProvisionedOverlay(partial: unknown): string[] {
  if (!isPlainObject(partial)) return [`expected a map of settings, got ${formatReceived(partial)}`];
  const issues: string[] = [];
  for (const [section, key] of FORBIDDEN_OVERLAY_KEYS) {
    const sectionValue = partial[section];
    if (isPlainObject(sectionValue) && sectionValue[key] !== undefined) {
      issues.push(`${section}.${key}: expected no ${section}.${key} in a provisioned overlay, got ${formatReceived(sectionValue[key])}`);
    }
  }
  return [...issues, ...validateLayers([{ kind: 'data', name: '', data: partial }]).issues];
}

/**
 * Validate `partial` and, when valid, write it atomically (mode 0600) as the
 * overlay in `stateDir`. Throws ConfigError (with every issue) and writes
 * nothing when invalid. Returns what was written.
 */
export async function writeProvisionedOverlay(stateDir: string, partial: unknown): Promise<ConfigInput> {
  const issues = validateProvisionedOverlay(partial);
  if (issues.length > 0) throw new ConfigError(summarise('provisioned configuration rejected', issues), issues);
  const data = JSON.parse(JSON.stringify(partial)) as ConfigInput;
  const text = `# Written by partyline provisioning; replaced on the next provisioning.\n${stringify(data)}`;
  await writeFileAtomic(provisionedOverlayPath(stateDir), text, { mode: PROVISIONED_OVERLAY_MODE });
  return data;
}

/**
 * Parse overlay text as a layer: syntax problems and forbidden keys become
 * issues (the forbidden keys are dropped from the data).
 */
export function parseProvisionedOverlay(text: string, name: string): YamlSource {
  const source = parseYamlSource(text, name, configSchema);
  for (const [section, key] of FORBIDDEN_OVERLAY_KEYS) {
    const sectionValue = source.data[section];
    if (isPlainObject(sectionValue) && sectionValue[key] !== undefined) {
      const pos = source.locate([section, key], 'key');
      const where = pos ? `${name}:${pos.line}:${pos.col}` : name;
      source.issues.push(`${where}: ${section}.${key}: expected no ${section}.${key} in a provisioned overlay, got ${formatReceived(sectionValue[key])}`);
      delete sectionValue[key];
    }
  }
  return source;
}

/**
 * Read the overlay of `stateDir`. Undefined when there is none; ConfigError
 * when it does not parse or validate.
 */
export async function readProvisionedOverlay(stateDir: string): Promise<ConfigInput | undefined> {
  const path = provisionedOverlayPath(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${path}`, [`${path}: cannot read: ${errorMessage(err)}`], { cause: err });
  }
  const source = parseProvisionedOverlay(text, path);
  const issues = [...source.issues, ...validateLayers([{ kind: 'overlay', source }]).issues];
  if (issues.length > 0) throw new ConfigError(summarise(`invalid provisioned overlay ${path}`, issues), issues);
  return source.data as ConfigInput;
}

/** Delete the overlay (back to file and environment only). Harmless when there is none. */
export async function removeProvisionedOverlay(stateDir: string): Promise<void> {
  await rm(provisionedOverlayPath(stateDir), { force: true });
}
