/**
 * What provisioning keeps in the state directory, beside the provisioned
 * overlay (`provisioned.yaml`, src/config/provisioned.ts):
 *
 *   provisioning.json            {version: 1, applied, handled, verifying}: the versions decided on,
 *                                and the one being verified when the process stopped (mode 0600)
 *   provisioned.last-good.yaml   the overlay in effect before the apply in progress: what a
 *                                rollback restores (absent, with lastGoodOverlay false: no overlay)
 *
 * Every file is written atomically (STYLE.md 10).
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PartylineError, errorMessage } from '../errors.js';
import { provisionedOverlayPath, removeProvisionedOverlay, writeProvisionedOverlay } from '../config/provisioned.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isConfigVersion } from './topics.js';
import type { ConfigVersion } from './topics.js';

export const PROVISIONING_STATE_FILE = 'provisioning.json';
export const LAST_GOOD_OVERLAY_FILE = 'provisioned.last-good.yaml';
const MODE = 0o600;

export interface SavedProvisioning {
  version: 1;
  /** Version in effect and confirmed. */
  applied: ConfigVersion | null;
  /** Last version decided on (applied, rejected, rolled back). */
  handled: ConfigVersion | null;
  /** A version written but not yet confirmed (the process stopped while verifying it). */
  verifying: ConfigVersion | null;
  /** Whether a rollback restores an overlay (provisioned.last-good.yaml) or removes it. */
  lastGoodOverlay: boolean;
}

const EMPTY: SavedProvisioning = { version: 1, applied: null, handled: null, verifying: null, lastGoodOverlay: false };

const versionOrNull = (v: unknown): ConfigVersion | null => (isConfigVersion(v) ? v : null);

export class ProvisioningStore {
  readonly stateDir: string;

  constructor(stateDir: string) {
    this.stateDir = stateDir;
  }

  get statePath(): string {
    return join(this.stateDir, PROVISIONING_STATE_FILE);
  }

  get lastGoodPath(): string {
    return join(this.stateDir, LAST_GOOD_OVERLAY_FILE);
  }

  /** The saved state; an absent file is a phone never provisioned. Throws PartylineError for an unreadable or malformed one. */
  async load(): Promise<SavedProvisioning> {
    let text: string;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...EMPTY };
      throw new PartylineError('ERR_PROVISIONING_STATE', `cannot read ${this.statePath}: ${errorMessage(err)}`, { cause: err });
    }
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new PartylineError('ERR_PROVISIONING_STATE', `${this.statePath}: expected JSON, got text that is not JSON`, { cause: err });
    }
    if (value?.version !== 1) throw new PartylineError('ERR_PROVISIONING_STATE', `${this.statePath}: expected {"version": 1, ...}, got version ${JSON.stringify(value?.version)}`);
    return {
      version: 1,
      applied: versionOrNull(value.applied),
      handled: versionOrNull(value.handled),
      verifying: versionOrNull(value.verifying),
      lastGoodOverlay: value.lastGoodOverlay === true,
    };
  }

  async save(state: SavedProvisioning): Promise<void> {
    await writeFileAtomic(this.statePath, `${JSON.stringify(state)}\n`, { mode: MODE });
  }

  /** Keep the overlay in effect now as what a rollback restores. Returns whether there was one. */
  async keepLastGood(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(provisionedOverlayPath(this.stateDir), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await rm(this.lastGoodPath, { force: true });
      return false;
    }
    await writeFileAtomic(this.lastGoodPath, text, { mode: MODE });
    return true;
  }

  /** Validate and write the new overlay (atomically, 0600). Throws ConfigError when invalid, writing nothing. */
  async writeOverlay(partial: unknown): Promise<void> {
    await writeProvisionedOverlay(this.stateDir, partial);
  }

  /** Put the last known good overlay back (or remove the overlay when there was none). */
  async restoreLastGood(hadOverlay: boolean): Promise<void> {
    if (!hadOverlay) {
      await removeProvisionedOverlay(this.stateDir);
      return;
    }
    const text = await readFile(this.lastGoodPath, 'utf8');
    await writeFileAtomic(provisionedOverlayPath(this.stateDir), text, { mode: MODE });
  }
}
